// CUDA spectral kernels (twins of kernels/cpu/spectral.cpp): zero-padded correlation along L (Gaussian
// smoothing), one-sided DFT X_k = Σ_n x_n e^{-2πikn/L} via batched R2C/D2Z cuFFT, its adjoint via C2R/Z2D
// (middle bins halved, DC/Nyquist imaginary parts zero), |X_k|. Test: build/tests/lowpass_tests -ts=cuda.
// Legend: R rows, L length, F = L/2 + 1 bins.
#include <type_traits>

#include "kernels/cpu/spectral.h"
#include "kernels/cuda/cuda_state.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/spectral_common.cuh"

namespace lowpass::cuda {
namespace {

constexpr int kThreads = 256;

// out[row, n] = Σ_j taps[j]·x[row, n + j - r] in ascending j (the CPU's order), 0 outside [0, L).
template <typename T>
__global__ void correlate_last_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t total, int64_t L,
                                      const Taps<T> taps) {
  const int r = taps.n / 2;
  LP_GRID_STRIDE(e, total) {
    int64_t n = e % L;
    const T* row = x + (e - n);
    T s = 0;
    for (int j = 0; j < taps.n; ++j) {
      int64_t src = n + j - r;
      if (src >= 0 && src < L) s += taps.v[j] * row[src];
    }
    out[e] = s;
  }
}

template <typename T>
__global__ void split_complex_kernel(const typename Cx<T>::type* __restrict__ z, T* __restrict__ re,
                                     T* __restrict__ im, int64_t total) {
  LP_GRID_STRIDE(e, total) {
    re[e] = z[e].x;
    im[e] = z[e].y;
  }
}

// Z_k = (gre_k, gim_k)·(1 at DC and Nyquist, else 1/2): C2R's Hermitian sum X_0 + 2Σ Re(Z_k e^{iθ}) + Nyquist
// then equals Σ_k gre_k cos θ - gim_k sin θ over the one-sided bins, each once.
template <typename T>
__global__ void pack_adjoint_kernel(const T* __restrict__ gre, const T* __restrict__ gim,
                                    typename Cx<T>::type* __restrict__ z, int64_t total, int64_t F, bool even) {
  LP_GRID_STRIDE(e, total) {
    int64_t k = e % F;
    bool edge = k == 0 || (even && k == F - 1);
    T h = edge ? T(1) : T(0.5);
    z[e].x = gre ? gre[e] * h : T(0);
    z[e].y = (gim && !edge) ? gim[e] * h : T(0);
  }
}

template <typename T>
__global__ void complex_abs_kernel(const T* __restrict__ re, const T* __restrict__ im, T* __restrict__ out,
                                   int64_t total) {
  LP_GRID_STRIDE(e, total) out[e] = sqrt(re[e] * re[e] + im[e] * im[e]);
}

}  // namespace

void correlate_last(const Tensor& x, Tensor& out, const std::vector<double>& taps) {
  const int64_t L = x.dim() ? x.size(-1) : 1, total = x.numel();
  if (total == 0) return;
  LP_CHECK(!taps.empty() && static_cast<int64_t>(taps.size()) <= kMaxTaps, "CUDA smoothing: ", taps.size(),
           " taps (1 to ", kMaxTaps, " supported)");
  const CudaState& st = state_of(x);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    correlate_last_kernel<T><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(x.data<T>(), out.data<T>(),
                                                                                      total, L, to_taps<T>(taps));
    LP_CUDA_LAUNCH_CHECK();
  });
}

void rfft(const Tensor& x, Tensor& re, Tensor& im) {
  const int64_t L = x.size(-1), R = L ? x.numel() / L : 0, F = L / 2 + 1;
  if (R == 0 || L == 0) return;
  CudaState& st = state_of(x);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    using C = typename Cx<T>::type;
    DeviceBuffer<C> z(static_cast<size_t>(R * F), x.device().index);  // (R, F) interleaved
    if constexpr (std::is_same_v<T, float>) {
      const FftPlan plan = st.fft_plan(CUFFT_R2C, L, R);  // holds its work area past the exec
      LP_CUFFT_CHECK(cufftExecR2C(plan.handle, const_cast<float*>(x.data<float>()), z.get()));
    } else {
      const FftPlan plan = st.fft_plan(CUFFT_D2Z, L, R);  // holds its work area past the exec
      LP_CUFFT_CHECK(cufftExecD2Z(plan.handle, const_cast<double*>(x.data<double>()), z.get()));
    }
    split_complex_kernel<T><<<grid_1d(st, R * F, kThreads), kThreads, 0, st.stream>>>(z.get(), re.data<T>(),
                                                                                     im.data<T>(), R * F);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void rfft_adjoint(const Tensor& gre, const Tensor& gim, Tensor& out, int64_t L) {
  const Tensor& any = gre.defined() ? gre : gim;
  LP_ASSERT(any.defined(), "rfft_adjoint: both gradients undefined");
  const int64_t F = L / 2 + 1, R = L ? out.numel() / L : 0;
  if (R == 0 || L == 0) return;
  CudaState& st = state_of(out);
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    using C = typename Cx<T>::type;
    DeviceBuffer<C> z(static_cast<size_t>(R * F), out.device().index);
    pack_adjoint_kernel<T><<<grid_1d(st, R * F, kThreads), kThreads, 0, st.stream>>>(
        gre.defined() ? gre.data<T>() : nullptr, gim.defined() ? gim.data<T>() : nullptr, z.get(), R * F, F,
        L % 2 == 0);
    LP_CUDA_LAUNCH_CHECK();
    if constexpr (std::is_same_v<T, float>) {
      const FftPlan plan = st.fft_plan(CUFFT_C2R, L, R);  // holds its work area past the exec
      LP_CUFFT_CHECK(cufftExecC2R(plan.handle, z.get(), out.data<float>()));
    } else {
      const FftPlan plan = st.fft_plan(CUFFT_Z2D, L, R);  // holds its work area past the exec
      LP_CUFFT_CHECK(cufftExecZ2D(plan.handle, z.get(), out.data<double>()));
    }
  });
}

void complex_abs(const Tensor& re, const Tensor& im, Tensor& out) {
  const int64_t total = re.numel();
  if (total == 0) return;
  const CudaState& st = state_of(re);
  dispatch_dtype(re.dtype(), [&]<typename T>() {
    complex_abs_kernel<T><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(re.data<T>(), im.data<T>(),
                                                                                   out.data<T>(), total);
    LP_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace lowpass::cuda
