// CUDA optimiser updates (twins of kernels/cpu/optim.cpp), one element-wise pass per parameter tensor with
// the CPU's rounding (same fma placement). Adam: m ← lerp(m, g, 1−β1); v ← β2·v + (1−β2)·g²;
// p ← p − step·m / (√v/√bc2 + ε). Test: build-cuda/tests/lowpass_tests -ts=cuda.
#include "kernels/cpu/optim.h"
#include "kernels/cuda/cuda_state.h"

namespace lowpass::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
struct AdamK {
  T wd, w, b2, one_m_b2, bc2, eps, neg_step;
  bool small, decay, maximize, amsgrad;
};

template <typename T>
__global__ void adam_update_kernel(T* __restrict__ p, const T* __restrict__ gr, T* __restrict__ m, T* __restrict__ v,
                                   T* __restrict__ mx, int64_t n, AdamK<T> k) {
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
};

template <typename T>
__global__ void sgd_update_kernel(T* __restrict__ p, const T* __restrict__ gr, T* __restrict__ buf, int64_t n,
                                  SgdK<T> k) {
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
    sgd_update_kernel<T><<<grid_1d(st, n, kThreads), kThreads, 0, st.stream>>>(
        param.data<T>(), grad.data<T>(), k.has_buf ? momentum_buf.data<T>() : nullptr, n, k);
    LP_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace lowpass::cuda
