// DeepLIFT's per-element rules (kernels/cpu/nn.h: deeplift_rescale, deeplift_pool_seed), shared by the CPU kernels
// and their CUDA twins (kernels/cuda/nn.cu) so that the two compute one formula, in double. Element i of the first
// half (the inputs') pairs with element i + n of the second (the references').
// Test: build/tests/lowpass_tests -ts=nn (the formulas), -ts=cuda (the twins against the CPU).
#pragma once

#include "kernels/cpu/host_device.h"

namespace lowpass {

// The rescale rule for one pair: Δin = inx − inr; where |Δin| < eps, the regular gradients (regx, regr); elsewhere
// each half's numerator over Δin, times Δout = outx − outr for a ReLU (relu true; a max-pool passes its routed sum
// U as both nx and nr).
LP_HD inline void deeplift_rescale_pair(double inx, double inr, double nx, double nr, bool relu, double outx,
                                       double outr, double regx, double regr, double eps, double& rx, double& rr) {
  const double din = inx - inr;
  if ((din < 0 ? -din : din) < eps) {
    rx = regx, rr = regr;
  } else if (relu) {
    const double dout = outx - outr;
    rx = nx * dout / din, rr = nr * dout / din;
  } else {
    rx = nx / din, rr = nr / din;
  }
}

// The max-pool seed pair: y = the input's pooled value, y0 = the reference's, gx/gr their upstream gradients;
// gx·(max(y, y0) − y0) and gr·(y − max(y, y0)).
LP_HD inline void deeplift_pool_pair(double y, double y0, double gx, double gr, double& Gx, double& Gr) {
  const double m = y > y0 ? y : y0;
  Gx = gx * (m - y0);
  Gr = gr * (y - m);
}

}  // namespace lowpass
