// PyTorch's default parameter initialisation, identical in distribution, drawn from the Context's Rng.
// Conv1d/Linear: weight and bias ~ U(−1/√fan_in, 1/√fan_in), fan_in = C_in/groups·K (kaiming_uniform a=√5);
// BatchNorm: weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0. Test: lowpass_tests -ts=init
#pragma once
#include "engine/tensor.h"

namespace lowpass {

// fan_in of a weight (out, in, k...) as torch.nn.init._calculate_fan_in_and_fan_out: in · prod(k...).
// Error for fewer than 2 dimensions.
int64_t fan_in_of(const Shape& weight_shape);

// In-place draws (any device: values are drawn on the host in element order, then copied).
void uniform_(Tensor& t, double lo, double hi, Rng& rng);
// torch.nn.init.kaiming_uniform_(w, a, mode='fan_in', nonlinearity='leaky_relu'):
// bound = √3 · √(2 / (1 + a²)) / √fan_in. Returns the bound used.
double kaiming_uniform_(Tensor& weight, double a, Rng& rng);

// nn.Conv1d.reset_parameters / nn.Linear.reset_parameters: weight (C_out, C_in/groups, K) or
// (out, in), then bias (may be undefined) ~ U(−1/√fan_in, 1/√fan_in). Draws weight first, then bias.
void init_conv1d(Context& ctx, Tensor& weight, Tensor& bias);
void init_linear(Context& ctx, Tensor& weight, Tensor& bias);
// nn.BatchNorm1d.reset_parameters; any argument may be undefined (affine=False, no running stats).
void init_batchnorm(Tensor& weight, Tensor& bias, Tensor& running_mean, Tensor& running_var,
                    Tensor& num_batches_tracked);

}  // namespace lowpass
