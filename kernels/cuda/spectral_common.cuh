// Shared by the spectral kernels (spectral.cu) and the fused Fourier prior (prior.cu): smoothing taps passed to
// a kernel by value, and the cuFFT complex type of float/double. Test: build/tests/lowpass_tests -ts=cuda.
#pragma once
#include <cufft.h>

#include <vector>

namespace lowpass::cuda {

constexpr int kMaxTaps = 255;

template <typename T>
struct Taps {
  int n = 0;
  T v[kMaxTaps];
};

// The taps as kernel parameters; the caller has checked 1 <= taps.size() <= kMaxTaps.
template <typename T>
Taps<T> to_taps(const std::vector<double>& taps) {
  Taps<T> t;
  t.n = static_cast<int>(taps.size());
  for (int j = 0; j < t.n; ++j) t.v[j] = static_cast<T>(taps[static_cast<size_t>(j)]);
  return t;
}

template <typename T> struct Cx;
template <> struct Cx<float> { using type = cufftComplex; };
template <> struct Cx<double> { using type = cufftDoubleComplex; };

}  // namespace lowpass::cuda
