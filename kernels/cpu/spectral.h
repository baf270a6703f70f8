// Kernels behind the spectral ops: zero-padded correlation along the last axis (Gaussian smoothing),
// the real DFT X_k = Σ_n x_n e^{-2πikn/L} (k = 0..L/2) and its adjoint, |X_k|. Test: tests/test_spectral.cpp.
// Legend: R rows (product of the leading dims), L length, F = L/2 + 1 frequency bins.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace lowpass {
namespace cpu {
// out (R, L)[n] = Σ_{j=0}^{2r} taps[j] · x[n + j − r], x taken as 0 outside [0, L).
void correlate_last(const Tensor& x, Tensor& out, const std::vector<double>& taps);
// One row of it: dst[n] = Σ_j taps[j] · src[n + j − r] over j in ascending order (r = taps / 2; src taken as 0 outside
// [0, L)), one pass per tap over the positions it reaches (vectorised). Also the fused prior's smoothing (prior.cpp).
template <typename T>
void correlate_row(const T* src, T* dst, int64_t L, const std::vector<T>& taps) {
  const int64_t K = static_cast<int64_t>(taps.size()), r = K / 2;
  std::fill(dst, dst + L, T(0));
  for (int64_t j = 0; j < K; ++j) {
    const int64_t sh = j - r;  // dst[n] += taps[j] · src[n + sh]
    const int64_t n0 = std::max<int64_t>(0, -sh), n1 = std::min<int64_t>(L, L - sh);
    const T t = taps[static_cast<size_t>(j)];
#pragma omp simd
    for (int64_t n = n0; n < n1; ++n) dst[n] += t * src[n + sh];
  }
}
// re, im (R, F) = real and imaginary parts of the one-sided DFT of x (R, L). FFT in double precision:
// mixed radix (kissfft, Eigen) for 7-smooth L, Bluestein (chirp-z over a 5-smooth length) otherwise.
void rfft(const Tensor& x, Tensor& re, Tensor& im);
// out (R, L)[n] = Σ_k gre[k] cos(2πkn/L) − Σ_k gim[k] sin(2πkn/L); gre or gim may be undefined (= 0).
void rfft_adjoint(const Tensor& gre, const Tensor& gim, Tensor& out, int64_t L);
// out = sqrt(re² + im²), element-wise.
void complex_abs(const Tensor& re, const Tensor& im, Tensor& out);
}  // namespace cpu

namespace cuda {
void correlate_last(const Tensor& x, Tensor& out, const std::vector<double>& taps);
void rfft(const Tensor& x, Tensor& re, Tensor& im);
void rfft_adjoint(const Tensor& gre, const Tensor& gim, Tensor& out, int64_t L);
void complex_abs(const Tensor& re, const Tensor& im, Tensor& out);
}  // namespace cuda
}  // namespace lowpass
