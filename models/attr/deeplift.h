// DeepLIFT (rescale rule) multipliers by walking the engine's tape: the model runs once on the
// batch [x; r] (P inputs then their P references), and the backward pass replaces the gradient of
// each nonlinearity by its DeepLIFT multiplier: ReLU Δout/Δin (gradient where |Δin| < eps); max-pool
// captum's rule (route g·(max(y,y₀) − y₀) by the input's argmax and g·(y − max(y,y₀)) by the
// reference's, divide by Δin); linear ops (conv, dense, eval-mode batch norm, pooling averages,
// reshapes, crops, concatenations) keep their gradient. Then Σ m·(x − r) = f(x) − f(r) exactly.
// Legend: P pairs, L length. Test: build/tests/lowpass_tests -ts=attr
#pragma once
#include <vector>

#include "models/attr/target.h"

namespace lowpass::attr {

struct DeepLiftOutput {
  Tensor multipliers;        // (P, 4, L): m with Σ m·(x − r) = f_x(x) − f_x(r) per pair
  std::vector<double> f_x;   // (P) target at the input
  std::vector<double> f_r;   // (P) target at the reference (seed taken at the input)
};

// x, r (P, 4, L) on the model's device (the rules' kernels have CPU and CUDA twins); control (P, ...) or undefined
// (used for both halves). The model runs in eval mode. Throws Error on an op with no DeepLIFT rule (a nonlinearity
// other than ReLU/max-pool).
DeepLiftOutput deeplift_multipliers(Model& model, const Tensor& x, const Tensor& r, const Tensor& control,
                                    const Target& target, double eps = 1e-10);

}  // namespace lowpass::attr
