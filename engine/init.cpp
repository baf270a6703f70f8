// PyTorch default initialisation: kaiming_uniform(a=√5) weights, U(±1/√fan_in) biases, BatchNorm constants.
// Bounds computed with the same double-precision expressions as torch.nn.init. Test: lowpass_tests -ts=init
#include "engine/init.h"

#include <cmath>
#include <vector>

namespace lowpass {

int64_t fan_in_of(const Shape& s) {
  LP_CHECK(s.size() >= 2, "init: fan_in needs a weight with at least 2 dimensions, got ", shape_str(s));
  int64_t f = s[1];
  for (size_t i = 2; i < s.size(); ++i) f *= s[i];
  return f;
}

void uniform_(Tensor& t, double lo, double hi, Rng& rng) {
  LP_CHECK(t.defined(), "init: uniform_ on an undefined tensor");
  Tensor h = t.is_cpu() ? t : Tensor::empty(t.ctx(), t.shape(), t.dtype());
  dispatch_dtype(h.dtype(), [&]<typename T>() {
    T* p = h.data<T>();
    for (int64_t i = 0; i < h.numel(); ++i) p[i] = static_cast<T>(rng.uniform(lo, hi));
    return 0;
  });
  if (!t.is_cpu()) t.copy_(h);
}

double kaiming_uniform_(Tensor& w, double a, Rng& rng) {
  const int64_t fan = fan_in_of(w.shape());
  LP_CHECK(fan > 0, "init: kaiming_uniform_ on a weight with fan_in 0, shape ", shape_str(w.shape()));
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double std_ = gain / std::sqrt(static_cast<double>(fan));
  const double bound = std::sqrt(3.0) * std_;
  uniform_(w, -bound, bound, rng);
  return bound;
}

namespace {
void init_weight_bias(Context& ctx, Tensor& weight, Tensor& bias, const char* what) {
  LP_CHECK(weight.defined(), "init: ", what, " weight is undefined");
  kaiming_uniform_(weight, std::sqrt(5.0), ctx.rng());
  if (bias.defined()) {
    const int64_t fan = fan_in_of(weight.shape());
    LP_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "init: ", what, " bias ", shape_str(bias.shape()),
             " does not match weight ", shape_str(weight.shape()));
    const double bound = fan > 0 ? 1.0 / std::sqrt(static_cast<double>(fan)) : 0.0;
    uniform_(bias, -bound, bound, ctx.rng());
  }
}
void fill_any(Tensor& t, double v) {  // fill_ on any device
  if (!t.defined()) return;
  if (t.is_cpu() || v == 0.0) {
    t.fill_(v);
    return;
  }
  t.copy_(Tensor::full(t.ctx(), t.shape(), v, t.dtype()));
}
}  // namespace

void init_conv1d(Context& ctx, Tensor& weight, Tensor& bias) {
  LP_CHECK(weight.defined() && weight.dim() == 3, "init: conv1d weight must be (C_out, C_in/groups, K)");
  init_weight_bias(ctx, weight, bias, "conv1d");
}

void init_linear(Context& ctx, Tensor& weight, Tensor& bias) {
  LP_CHECK(weight.defined() && weight.dim() == 2, "init: linear weight must be (out, in)");
  init_weight_bias(ctx, weight, bias, "linear");
}

void init_batchnorm(Tensor& weight, Tensor& bias, Tensor& running_mean, Tensor& running_var,
                    Tensor& num_batches_tracked) {
  fill_any(weight, 1.0);
  fill_any(bias, 0.0);
  fill_any(running_mean, 0.0);
  fill_any(running_var, 1.0);
  fill_any(num_batches_tracked, 0.0);
}

}  // namespace lowpass
