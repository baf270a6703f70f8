// Tensor: contiguous N-d array (float32/float64), shared reference-counted storage, device tag,
// autodiff metadata. Layout for sequence data is (N, C, L) as in PyTorch/cuDNN. Sizes are int64_t.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/error.h"

namespace lowpass {

enum class DType : uint8_t { F32 = 0, F64 = 1 };
inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 8; }
const char* dtype_name(DType t);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
// "[i, j, k]": the index of element `flat` of a row-major array of `shape`, its first index shifted by `first_row`
// (for messages about rows [first_row, …) of a larger array).
std::string index_str(const Shape& shape, int64_t flat, int64_t first_row = 0);
int64_t shape_numel(const Shape& s);

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }

// Raw memory block on one device. Freed by its deleter (host free or CUDA caching allocator).
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  void (*deleter)(void* ptr, size_t bytes, Device dev) = nullptr;
  ~Storage();
  static std::shared_ptr<Storage> allocate(size_t bytes, Device dev);
};

struct Node;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::F32;
  Context* ctx = nullptr;
  uint64_t ctx_id = 0;  // ctx->id() when the tensor was made (0: not recorded, not checked); see Tensor::ctx()
  bool requires_grad = false;        // leaf flag, or "some input required grad" for op outputs
  std::shared_ptr<Node> grad_fn;     // set for outputs of recorded ops
  std::shared_ptr<TensorImpl> grad;  // accumulated by backward() on leaves
  // Fixed gradient buffer (a view of an optimiser's gradient arena, engine/arena.h): when set, backward() writes
  // the leaf's gradient into it instead of handing over a fresh tensor, so gradients keep their addresses.
  std::shared_ptr<TensorImpl> grad_slot;
  std::string name;                  // optional, for messages
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (never differentiable) ----
  static Tensor empty(Context& ctx, const Shape& shape, DType dtype = DType::F32, Device dev = {});
  static Tensor zeros(Context& ctx, const Shape& shape, DType dtype = DType::F32, Device dev = {});
  static Tensor full(Context& ctx, const Shape& shape, double value, DType dtype = DType::F32, Device dev = {});
  static Tensor ones(Context& ctx, const Shape& shape, DType dtype = DType::F32, Device dev = {}) {
    return full(ctx, shape, 1.0, dtype, dev);
  }
  // Host data copied in (CPU tensor).
  static Tensor from_vector(Context& ctx, const Shape& shape, const std::vector<float>& v);
  static Tensor from_vector(Context& ctx, const Shape& shape, const std::vector<double>& v);
  // Random tensors from ctx.rng(): U(lo, hi) and N(0, 1)·std.
  static Tensor uniform(Context& ctx, const Shape& shape, double lo, double hi, DType dtype = DType::F32);
  static Tensor randn(Context& ctx, const Shape& shape, double std = 1.0, DType dtype = DType::F32);

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl_->shape); }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device; }
  bool is_cpu() const { return device().is_cpu(); }
  // The Context the tensor was made with; Error when that Context has been destroyed (Context::id).
  Context& ctx() const {
    if (impl_->ctx_id != 0 && !context_alive(impl_->ctx_id)) context_gone();
    return *impl_->ctx;
  }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  std::string describe() const;  // "float32 (2, 4, 10) cpu"

  // ---- data access (checked dtype) ----
  void* raw() const {
    LP_ASSERT(impl_->storage->data, "the values of ", describe(), " were read from an autograd edge, which holds"
              " none (a backward rule that reads its output must say so: record(..., uses_output))");
    return static_cast<char*>(impl_->storage->data) + impl_->offset * dtype_size(dtype());
  }
  template <typename T> T* data() const {
    LP_ASSERT(dtype() == dtype_of<T>(), "data<T>() on ", describe());
    return static_cast<T*>(raw());
  }
  template <typename T> std::vector<T> to_vector() const;  // host copy, converting dtype
  double item() const;                                       // numel() == 1

  // ---- autodiff ----
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  Tensor& set_requires_grad(bool r);  // leaves only
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  Tensor grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl_->grad = g.impl_; }
  void zero_grad() { impl_->grad.reset(); }

  // ---- copies ----
  Tensor detach() const;                  // shares storage, no graph
  Tensor clone() const;                   // deep copy, no graph
  Tensor to(DType t) const;               // differentiable cast (ops::cast)
  Tensor to(Device d) const;              // deep copy to another device (no graph)
  void copy_(const Tensor& src);          // in-place copy of values (same shape), no graph
  void fill_(double v);                   // in-place fill, no graph

  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  [[noreturn]] void context_gone() const;
  std::shared_ptr<TensorImpl> impl_;
};

// Make an output tensor of an op: same ctx/device as `like`.
Tensor empty_like(const Tensor& like, const Shape& shape);
Tensor empty_like(const Tensor& like);
// t itself when it is undefined or already on d, else a copy on d (host-built batches meeting a GPU model).
Tensor on_device(const Tensor& t, Device d);
Tensor zeros_like(const Tensor& like);

// Dispatch on dtype: LP_DISPATCH(t.dtype(), [&]<typename T>() { ... });
template <typename F>
decltype(auto) dispatch_dtype(DType t, F&& f) {
  if (t == DType::F32) return f.template operator()<float>();
  return f.template operator()<double>();
}

}  // namespace lowpass
