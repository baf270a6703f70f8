// DeepLIFT's per-element rules (kernels/cpu/nn.h: deeplift_rescale, deeplift_pool_seed), shared by the CPU kernels
// and their CUDA twins (kernels/cuda/nn.cu) so that the two compute one formula, in double. Element i of the first
// half (the inputs') pairs with element i + n of the second (the references').
// Test: build/tests/lowpass_tests -ts=nn (the formulas), -ts=cuda (the twins against the CPU).
#pragma once
#include <cmath>

#if defined(__CUDACC__)
#define LP_DL_HD __host__ __device__
#else
#define LP_DL_HD
#endif

namespace lowpass {

// Whether the rescale rule falls back to the gradient: |Δin| < eps.
LP_DL_HD inline bool deeplift_small(double din, double eps) { return (din < 0 ? -din : din) < eps; }

// The max-pool seed pair: y = the input's pooled value, y0 = the reference's, gx/gr their upstream gradients;
// gx·(max(y, y0) − y0) and gr·(y − max(y, y0)).
LP_DL_HD inline void deeplift_pool_pair(double y, double y0, double gx, double gr, double& Gx, double& Gr) {
  const double m = y > y0 ? y : y0;
  Gx = gx * (m - y0);
  Gr = gr * (y - m);
}

}  // namespace lowpass
