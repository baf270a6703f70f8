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

// The same multipliers for a ReLU model (no max-pool: the profile model) with each input run once: xu (U, 4, L) the
// distinct inputs, r (P, 4, L) the references, owner[j] the row of xu that reference j pairs with, control_u (U, ...)
// or undefined. The batch is [xu; r] (U + P rows instead of 2P) and the backward carries only each pair's input-half
// gradient, which is all the result uses (max-pool's rule needs the reference half too). CPU only. The outputs equal
// deeplift_multipliers(model, xu[owner], r, control_u[owner], ...) bit for bit (rows are independent).
DeepLiftOutput deeplift_multipliers_shared(Model& model, const Tensor& xu, const Tensor& r,
                                           const std::vector<int64_t>& owner, const Tensor& control_u,
                                           const Target& target, double eps = 1e-10);

}  // namespace lowpass::attr
