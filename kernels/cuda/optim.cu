// CUDA optimiser updates (twins of kernels/cpu/optim.cpp), one element-wise pass per parameter tensor with
// the CPU's rounding (same fma placement). Adam: m ← lerp(m, g, 1−β1); v ← β2·v + (1−β2)·g²;
// p ← p − step·m / (√v/√bc2 + ε). Test: build/tests/lowpass_tests -ts=cuda.
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/optim.h"
#include "kernels/cuda/cuda_state.h"

namespace lowpass::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
struct AdamK {
  T wd, w, b2, one_m_b2, bc2, eps, neg_step;
  bool small, decay, maximize, amsgrad;
  const double* live;  // {step_size, bc2_sqrt, skip} in device memory, or null (AdamScalars::live)
};

template <typename T>
__global__ void adam_update_kernel(T* __restrict__ p, const T* __restrict__ gr, T* __restrict__ m, T* __restrict__ v,
                                   T* __restrict__ mx, int64_t n, AdamK<T> k) {
  if (k.live) {  // read when the kernel runs: a replayed CUDA graph sees each step's values
    if (!(k.live[2] == 0.0)) return;
    k.neg_step = static_cast<T>(-k.live[0]);
    k.bc2 = static_cast<T>(k.live[1]);
  }
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T g = k.maximize ? -gr[i] : gr[i];
    if (k.decay) g = fma(p[i], k.wd, g);
    T d = g - m[i];
    T mi = k.small ? fma(k.w, d, m[i]) : fma(k.w - T(1), d, g);
    m[i] = mi;
    T vi = v[i] * k.b2;
    vi = fma(k.one_m_b2 * g, g, vi);
    v[i] = vi;
    if (k.amsgrad) {
      if (vi > mx[i] || vi != vi) mx[i] = vi;
      vi = mx[i];
    }
    T denom = sqrt(vi) / k.bc2 + k.eps;
    p[i] = p[i] + (k.neg_step * mi) / denom;
  }
}

template <typename T>
struct SgdK {
  T wd, mom, damp, neg_lr;
  bool decay, maximize, nesterov, first, has_buf;
  const double* live;  // {lr, first, skip} in device memory, or null (SgdScalars::live)
};

template <typename T>
__global__ void sgd_update_kernel(T* __restrict__ p, const T* __restrict__ gr, T* __restrict__ buf, int64_t n,
                                  SgdK<T> k) {
  if (k.live) {
    if (!(k.live[2] == 0.0)) return;
    k.neg_lr = static_cast<T>(-k.live[0]);
    k.first = k.live[1] != 0.0;
  }
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T g = k.maximize ? -gr[i] : gr[i];
    if (k.decay) g = fma(p[i], k.wd, g);
    if (k.has_buf) {
      T b = k.first ? g : fma(g, k.damp, buf[i] * k.mom);
      buf[i] = b;
      g = k.nesterov ? fma(b, k.mom, g) : b;
    }
    p[i] = fma(g, k.neg_lr, p[i]);
  }
}

}  // namespace

void adam_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                 const AdamScalars& s) {
  int64_t n = param.numel();
  if (n == 0) return;
  const CudaState& st = state_of(param);
  dispatch_dtype(param.dtype(), [&]<typename T>() {
    AdamK<T> k;
    k.wd = static_cast<T>(s.weight_decay);
    k.w = static_cast<T>(1.0 - s.beta1);
    k.small = (k.w < T(0) ? -k.w : k.w) < T(0.5);
    k.b2 = static_cast<T>(s.beta2);
    k.one_m_b2 = static_cast<T>(1.0 - s.beta2);
    k.bc2 = static_cast<T>(s.bc2_sqrt);
    k.eps = static_cast<T>(s.eps);
    k.neg_step = static_cast<T>(-s.step_size);
    k.decay = s.weight_decay != 0;
    k.maximize = s.maximize;
    k.amsgrad = s.amsgrad;
    k.live = s.live;
    adam_update_kernel<T><<<grid_1d(st, n, kThreads), kThreads, 0, st.stream>>>(
        param.data<T>(), grad.data<T>(), exp_avg.data<T>(), exp_avg_sq.data<T>(),
        s.amsgrad ? max_exp_avg_sq.data<T>() : nullptr, n, k);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdScalars& s) {
  int64_t n = param.numel();
  if (n == 0) return;
  const CudaState& st = state_of(param);
  dispatch_dtype(param.dtype(), [&]<typename T>() {
    SgdK<T> k;
    k.wd = static_cast<T>(s.weight_decay);
    k.mom = static_cast<T>(s.momentum);
    k.damp = static_cast<T>(1.0 - s.dampening);
    k.neg_lr = static_cast<T>(-s.lr);
    k.decay = s.weight_decay != 0;
    k.maximize = s.maximize;
    k.nesterov = s.nesterov;
    k.first = s.first;
    k.has_buf = s.momentum != 0;
    k.live = s.live;
    sgd_update_kernel<T><<<grid_1d(st, n, kThreads), kThreads, 0, st.stream>>>(
        param.data<T>(), grad.data<T>(), k.has_buf ? momentum_buf.data<T>() : nullptr, n, k);
    LP_CUDA_LAUNCH_CHECK();
  });
}

namespace {
// Up to kSegs (source, destination, length) triples travel in the kernel's parameters (24 B each, well inside
// the 4 KB limit); blockIdx.y picks the segment, blocks stride over its elements.
constexpr int kSegs = 96;
struct Segs {
  const char* src[kSegs];
  char* dst[kSegs];
  int64_t words[kSegs];  // length in 4-byte words (every dtype is a multiple of 4 bytes)
};

__global__ void copy_many_kernel(Segs s) {
  const int k = blockIdx.y;
  const auto* __restrict__ a = reinterpret_cast<const uint32_t*>(s.src[k]);
  auto* __restrict__ b = reinterpret_cast<uint32_t*>(s.dst[k]);
  const int64_t n = s.words[k];
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    b[i] = a[i];
}
}  // namespace

void copy_many(const std::vector<Tensor>& src, const std::vector<Tensor>& dst) {
  LP_ASSERT(src.size() == dst.size(), "copy_many: ", src.size(), " sources, ", dst.size(), " destinations");
  if (src.empty()) return;
  const CudaState& st = state_of(dst.front());
  for (size_t b = 0; b < src.size(); b += kSegs) {
    Segs s{};
    int64_t longest = 0;
    const size_t e = std::min(src.size(), b + kSegs);
    for (size_t i = b; i < e; ++i) {
      const Tensor &a = src[i], &d = dst[i];
      LP_ASSERT(a.numel() == d.numel() && a.dtype() == d.dtype() && !a.is_cpu() && !d.is_cpu(), "copy_many: ",
                a.describe(), " into ", d.describe());
      s.src[i - b] = static_cast<const char*>(a.raw());
      s.dst[i - b] = static_cast<char*>(d.raw());
      s.words[i - b] = a.numel() * static_cast<int64_t>(dtype_size(a.dtype())) / 4;
      longest = std::max(longest, s.words[i - b]);
    }
    if (longest == 0) continue;
    const unsigned gx = std::max(1u, std::min(grid_1d(st, longest, kThreads), 64u));
    copy_many_kernel<<<dim3(gx, static_cast<unsigned>(e - b)), kThreads, 0, st.stream>>>(s);
    LP_CUDA_LAUNCH_CHECK();
  }
}

}  // namespace lowpass::cuda
