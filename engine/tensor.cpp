// Tensor storage, factories, copies and host access.
#include "engine/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <locale>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/cuda/runtime.h"

namespace lowpass {

const char* dtype_name(DType t) { return t == DType::F32 ? "float32" : "float64"; }

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os.imbue(std::locale::classic());  // "(2, 1000)" whatever global locale an embedding program has set
  os << "(";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ")";
  return os.str();
}

std::string index_str(const Shape& shape, int64_t flat, int64_t first_row) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] > 0 ? flat % shape[d] : 0;
    flat = shape[d] > 0 ? flat / shape[d] : 0;
  }
  if (!idx.empty()) idx[0] += first_row;
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os << "[";
  for (size_t d = 0; d < idx.size(); ++d) os << (d ? ", " : "") << idx[d];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

namespace {
// Host block cache: blocks of >= 256 KiB are kept on free, bucketed by a size class (≤ 12.5 % rounding), and
// handed back to the next request of the same class, so the training step's large activations do not cost
// mmap/munmap plus a page fault per 4 KiB every step. Capped at LOWPASS_HOST_CACHE_MB (default 4096; 0 = off);
// past the cap blocks are freed. Thread-safe; one per process, like malloc's own arenas.
class HostCache {
 public:
  static HostCache& get() {  // never destroyed: Storage may outlive any static (blocks go back to the OS at exit)
    static HostCache* c = new HostCache;
    return *c;
  }
  static size_t size_class(size_t n) {
    if (n < kMin) return (n + 63) / 64 * 64;
    size_t p = size_t{1} << (63 - __builtin_clzll(n));  // highest power of two <= n
    size_t step = p / 8;
    return (n + step - 1) / step * step;
  }
  void* take(size_t cls) {
    if (cls < kMin || cap_ == 0) return nullptr;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = free_.find(cls);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= cls;
    return p;
  }
  void give(void* p, size_t cls) {
    if (cls >= kMin && cap_ > 0) {
      std::lock_guard<std::mutex> lk(mu_);
      if (cached_ + cls <= cap_) {
        free_[cls].push_back(p);
        cached_ += cls;
        return;
      }
    }
    std::free(p);
  }
 private:
  static constexpr size_t kMin = size_t{256} << 10;
  HostCache() {
    const char* e = std::getenv("LOWPASS_HOST_CACHE_MB");
    cap_ = (e ? static_cast<size_t>(std::strtoull(e, nullptr, 10)) : kDefaultMb) << 20;
  }
#if defined(__SANITIZE_ADDRESS__)
  static constexpr size_t kDefaultMb = 0;  // ASan must see every free (use-after-free detection)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  static constexpr size_t kDefaultMb = 0;
#else
  static constexpr size_t kDefaultMb = 4096;
#endif
#else
  static constexpr size_t kDefaultMb = 4096;
#endif
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0, cap_ = 0;
};

void host_free(void* p, size_t bytes, Device) {
  HostCache::get().give(p, HostCache::size_class(bytes == 0 ? 64 : bytes));
}
void device_free(void* p, size_t bytes, Device d) { cuda::free(p, bytes, d.index); }
}  // namespace

Storage::~Storage() {
  if (data && deleter) deleter(data, bytes, device);
}

std::shared_ptr<Storage> Storage::allocate(size_t bytes, Device dev) {
  auto s = std::make_shared<Storage>();
  s->bytes = bytes;
  s->device = dev;
  size_t n = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
  if (dev.is_cpu()) {
    n = HostCache::size_class(n);
    s->data = HostCache::get().take(n);
    if (!s->data) s->data = std::aligned_alloc(64, n);
    if (!s->data) throw OutOfMemory(detail::concat("out of host memory allocating ", bytes, " bytes"));
    s->deleter = host_free;
  } else {
    s->data = cuda::alloc(n, dev.index);
    s->deleter = device_free;
  }
  return s;
}

int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  if (d < 0) d += n;
  LP_CHECK(d >= 0 && d < n, "dimension ", d, " out of range for ", describe());
  return impl_->shape[d];
}

std::string Tensor::describe() const {
  if (!impl_) return "undefined tensor";
  std::ostringstream os;
  os << dtype_name(dtype()) << " " << shape_str(shape()) << (is_cpu() ? " cpu" : " cuda");
  return os.str();
}

Tensor Tensor::empty(Context& ctx, const Shape& shape, DType dtype, Device dev) {
  for (int64_t d : shape) LP_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), dev);
  impl->shape = shape;
  impl->dtype = dtype;
  impl->ctx = &ctx;
  impl->ctx_id = ctx.id();
  return Tensor(impl);
}

Tensor Tensor::zeros(Context& ctx, const Shape& shape, DType dtype, Device dev) {
  Tensor t = empty(ctx, shape, dtype, dev);
  t.fill_(0.0);
  return t;
}

Tensor Tensor::full(Context& ctx, const Shape& shape, double value, DType dtype, Device dev) {
  Tensor t = empty(ctx, shape, dtype, dev);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(Context& ctx, const Shape& shape, const std::vector<float>& v) {
  LP_CHECK(static_cast<int64_t>(v.size()) == shape_numel(shape), "from_vector: ", v.size(),
           " values for shape ", shape_str(shape));
  Tensor t = empty(ctx, shape, DType::F32);
  if (!v.empty()) std::memcpy(t.raw(), v.data(), v.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_vector(Context& ctx, const Shape& shape, const std::vector<double>& v) {
  LP_CHECK(static_cast<int64_t>(v.size()) == shape_numel(shape), "from_vector: ", v.size(),
           " values for shape ", shape_str(shape));
  Tensor t = empty(ctx, shape, DType::F64);
  if (!v.empty()) std::memcpy(t.raw(), v.data(), v.size() * sizeof(double));
  return t;
}

Tensor Tensor::uniform(Context& ctx, const Shape& shape, double lo, double hi, DType dtype) {
  Tensor t = empty(ctx, shape, dtype);
  dispatch_dtype(dtype, [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(ctx.rng().uniform(lo, hi));
  });
  return t;
}

Tensor Tensor::randn(Context& ctx, const Shape& shape, double std, DType dtype) {
  Tensor t = empty(ctx, shape, dtype);
  dispatch_dtype(dtype, [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(std * ctx.rng().normal());
  });
  return t;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor h = is_cpu() ? *this : to(Device{});
  std::vector<T> out(static_cast<size_t>(numel()));
  dispatch_dtype(dtype(), [&]<typename S>() {
    const S* p = h.data<S>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(p[i]);
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;

double Tensor::item() const {
  LP_CHECK(numel() == 1, "item() on a tensor with ", numel(), " elements: ", describe());
  return to_vector<double>()[0];
}

Tensor& Tensor::set_requires_grad(bool r) {
  LP_CHECK(is_leaf(), "set_requires_grad on a non-leaf tensor");
  impl_->requires_grad = r;
  return *this;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  impl->ctx = impl_->ctx;
  impl->ctx_id = impl_->ctx_id;
  return Tensor(impl);
}

Tensor Tensor::clone() const {
  Tensor t = empty(ctx(), shape(), dtype(), device());
  t.copy_(*this);
  return t;
}

void Tensor::context_gone() const {
  throw Error(detail::concat("a ", dtype_name(dtype()), " ", shape_str(shape()),
                             " tensor was used after the Context it was made with was destroyed (a Context must "
                             "outlive its tensors)"));
}

Tensor Tensor::to(DType t) const { return cast(*this, t); }

Tensor Tensor::to(Device d) const {
  Tensor t = empty(ctx(), shape(), dtype(), d);
  size_t bytes = static_cast<size_t>(numel()) * dtype_size(dtype());
  if (bytes == 0) return t;
  if (is_cpu() && d.is_cpu()) std::memcpy(t.raw(), raw(), bytes);
  else if (is_cpu()) cuda::copy_h2d(t.raw(), raw(), bytes, d.index);
  else if (d.is_cpu()) cuda::copy_d2h(t.raw(), raw(), bytes, device().index);
  else cuda::copy_d2d(t.raw(), raw(), bytes, d.index, device().index);
  return t;
}

Tensor on_device(const Tensor& t, Device d) { return !t.defined() || t.device() == d ? t : t.to(d); }

void Tensor::copy_(const Tensor& src) {
  LP_CHECK(src.shape() == shape(), "copy_: shape ", shape_str(src.shape()), " into ", shape_str(shape()));
  Tensor s = src.dtype() == dtype() ? src : src.detach().to(dtype());
  size_t bytes = static_cast<size_t>(numel()) * dtype_size(dtype());
  if (bytes == 0) return;
  if (is_cpu() && s.is_cpu()) std::memmove(raw(), s.raw(), bytes);
  else if (s.is_cpu()) cuda::copy_h2d(raw(), s.raw(), bytes, device().index);
  else if (is_cpu()) cuda::copy_d2h(raw(), s.raw(), bytes, s.device().index);
  else cuda::copy_d2d(raw(), s.raw(), bytes, device().index, s.device().index);
}

void Tensor::fill_(double v) {
  if (!is_cpu()) {
    if (v == 0.0) cuda::memset_zero(raw(), static_cast<size_t>(numel()) * dtype_size(dtype()), device().index);
    else cuda::fill(raw(), numel(), v, dtype() == DType::F64, device().index);
    return;
  }
  const int64_t n = numel();  // once: the loop's stores may alias the shape, so numel() was recomputed per element
  dispatch_dtype(dtype(), [&]<typename T>() { std::fill_n(data<T>(), n, static_cast<T>(v)); });
}

Tensor empty_like(const Tensor& like, const Shape& shape) {
  return Tensor::empty(like.ctx(), shape, like.dtype(), like.device());
}
Tensor empty_like(const Tensor& like) { return empty_like(like, like.shape()); }
Tensor zeros_like(const Tensor& like) {
  return Tensor::zeros(like.ctx(), like.shape(), like.dtype(), like.device());
}

}  // namespace lowpass
