// The Fourier attribution prior as one op (engine/ops.h): fused kernels forward and backward (kernels/cpu/prior.cpp,
// kernels/cuda/prior.cu), and the same function composed from ops, used as its reference and, under create_graph,
// for its backward so that gradients of gradients exist. Test: build/tests/lowpass_tests -ts=spectral (-ts=cuda).
#include <algorithm>
#include <memory>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "kernels/cpu/prior.h"

namespace lowpass {

namespace {

using Grads = std::vector<Tensor>;

void check_args(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& weights) {
  LP_CHECK(attr.defined() && attr.dim() == 3, "fourier prior: attributions must be (B, C, L), got ",
           attr.defined() ? attr.describe() : std::string("nothing"));
  const int64_t B = attr.size(0), L = attr.size(2);
  LP_CHECK(static_cast<int64_t>(weights.size()) == L / 2, "fourier prior: ", weights.size(),
           " frequency weights for length ", L, " (expected L/2 = ", L / 2, ")");
  for (size_t i = 0; i < rows.size(); ++i) {
    LP_CHECK(rows[i] >= 0 && rows[i] < B, "fourier prior: row ", rows[i], " outside the batch of ", B);
    LP_CHECK(i == 0 || rows[i] > rows[i - 1], "fourier prior: rows must be strictly increasing");
  }
}

// Bin weights over all F = L/2 + 1 bins: 0 at DC, weights[f − 1] for f = 1..L/2.
std::vector<double> bin_weights(const std::vector<double>& weights) {
  std::vector<double> wf(weights.size() + 1, 0.0);
  std::copy(weights.begin(), weights.end(), wf.begin() + 1);
  return wf;
}

}  // namespace

Tensor fourier_prior_scores_composed(const Tensor& attr, const std::vector<int64_t>& rows,
                                     const std::vector<double>& weights, double sigma) {
  check_args(attr, rows, weights);
  const int64_t P = static_cast<int64_t>(rows.size()), L = attr.size(2), kept = L / 2;
  if (P == 0) return Tensor::zeros(attr.ctx(), {0}, attr.dtype(), attr.device());
  if (kept == 0) return Tensor::ones(attr.ctx(), {P}, attr.dtype(), attr.device());
  Tensor a = sum(abs(attr), {1});  // (B, L)
  if (P != attr.size(0)) a = index_select(a, 0, rows);
  Tensor s = smooth_gaussian(a, sigma);
  Tensor mags = rfft_magnitude(s);      // (P, F)
  Tensor total = sum(mags, {1}, true);  // (P, 1), DC included
  Tensor is_zero;
  {
    NoGradGuard ng;
    is_zero = eq_scalar(total.detach(), 0.0);
  }
  Tensor norm = slice(div(mags, add(total, is_zero)), 1, 1, kept);  // (P, L/2)
  Tensor w = Tensor::from_vector(attr.ctx(), {kept}, weights);
  if (w.dtype() != attr.dtype()) w = w.to(attr.dtype());
  if (w.device() != attr.device()) w = w.to(attr.device());
  return add_scalar(neg(sum(mul(norm, w), {1})), 1.0);
}

Tensor fourier_prior_scores(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& weights,
                            double sigma) {
  check_args(attr, rows, weights);
  const int64_t P = static_cast<int64_t>(rows.size()), L = attr.size(2);
  if (P == 0 || L / 2 == 0) return fourier_prior_scores_composed(attr, rows, weights, sigma);  // constants
  const std::vector<double> taps = gaussian_kernel(sigma), wf = bin_weights(weights);
  Tensor out = Tensor::empty(attr.ctx(), {P}, attr.dtype(), attr.device());
  auto saved = std::make_shared<PriorSaved>();
  saved->for_backward = needs_record({&attr});
  const Tensor a = attr.detach();
  LP_ON_DEVICE(a, cpu::fourier_prior_fwd(a, rows, wf, taps, out, *saved),
               cuda::fourier_prior_fwd(a, rows, wf, taps, out, *saved));
  return record("fourier_prior", out, {attr},
                [attr, a, rows, weights, sigma, taps, wf, saved](const Tensor& g, const Tensor&, const std::vector<bool>&) {
                  if (grad_enabled()) {  // create_graph: the composed chain's vector-Jacobian product, differentiable
                    Tensor y = fourier_prior_scores_composed(attr, rows, weights, sigma);
                    return Grads{grad({y}, {attr}, {g}, true)[0]};
                  }
                  Tensor da = empty_like(a);
                  LP_ON_DEVICE(a, cpu::fourier_prior_bwd(a, rows, wf, taps, g, *saved, da),
                               cuda::fourier_prior_bwd(a, rows, wf, taps, g, *saved, da));
                  return Grads{da};
                });
}

}  // namespace lowpass
