// Coefficients of batch norm's fused second-derivative rule (kernels/cpu/nn.h, batch_norm_bwd2), shared by the CPU
// kernel and its CUDA twin (kernels/cuda/nn.cu) so that the two compute one formula. From the five channel sums
// su = Σu, sg = Σg, sux = Σu·xc, sgx = Σg·xc, sug = Σu·g (xc = x − mean) over n values:
//   dg = a1·u + b1·xc + c1,  dx = a2·u + g2·g + b2·xc + c2,  dgamma = s·n·(a − m·k),
// with s = invstd, ū = su/n, ḡ = sg/n, k = s·sux/n, m = s·sgx/n, a = sug/n − ū·ḡ, γ = gamma (1 when undefined).
// Test: build/tests/lowpass_tests -ts=nn (finite differences), -ts=cuda (the twin against the CPU).
#pragma once

#include "kernels/cpu/host_device.h"

namespace lowpass {

struct Bn2Coef {
  double a1, b1, c1, a2, g2, b2, c2, dgamma;
};

LP_HD inline Bn2Coef bn2_coef(double su, double sg, double sux, double sgx, double sug, double n, double s,
                              double gm) {
  const double ub = su / n, gb = sg / n, k = s * sux / n, m = s * sgx / n, a = sug / n - ub * gb;
  const double gs = gm * s, gs2 = gs * s;
  return {gs, -gs2 * k, -gs * ub, -gs2 * m, -gs2 * k, gs2 * s * (3 * m * k - a), gs2 * (m * ub + k * gb),
          s * n * (a - m * k)};
}

}  // namespace lowpass
