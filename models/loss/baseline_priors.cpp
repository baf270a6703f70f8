// Baseline attribution priors: total variation, Gini sparsity, L2 weight penalty (REFERENCE §1.5).
// Test: build/tests/lowpass_tests -ts=loss
#include "models/loss/baseline_priors.h"

#include <algorithm>
#include <numeric>

#include "models/loss/fourier_prior.h"

namespace lowpass {

Tensor smoothness_prior_loss(const Tensor& attr, const std::vector<int>& status) {
  Tensor a = abs_attribution_rows(attr, status);  // (P, L)
  if (!a.defined() || a.size(1) < 2) return Tensor::zeros(attr.ctx(), {}, attr.dtype(), attr.device());
  const int64_t L = a.size(1);
  Tensor d = sub(slice(a, 1, 1, L - 1), slice(a, 1, 0, L - 1));  // (P, L−1)
  return mean_all(sum(abs(d), {1}));
}

Tensor sparsity_prior_loss(const Tensor& attr, const std::vector<int>& status) {
  Tensor a = abs_attribution_rows(attr, status);  // (P, L)
  if (!a.defined()) return Tensor::zeros(attr.ctx(), {}, attr.dtype(), attr.device());
  const int64_t P = a.size(0), L = a.size(1);
  // Ascending order of each row (a constant permutation), as one flat gather.
  auto v = a.to_vector<double>();
  std::vector<int64_t> perm(static_cast<size_t>(P * L));
  for (int64_t p = 0; p < P; ++p) {
    auto first = perm.begin() + p * L;
    std::iota(first, first + L, p * L);
    std::stable_sort(first, first + L, [&](int64_t i, int64_t j) { return v[i] < v[j]; });
  }
  Tensor sorted = reshape(index_select(reshape(a, {P * L}), 0, perm), {P, L});
  std::vector<double> coef(static_cast<size_t>(L));
  for (int64_t k = 0; k < L; ++k) coef[static_cast<size_t>(k)] = 2.0 * static_cast<double>(2 * k - L + 1);
  Tensor c = Tensor::from_vector(a.ctx(), {L}, coef);
  if (c.dtype() != a.dtype()) c = c.to(a.dtype());
  c = on_device(c, a.device());
  Tensor pair_sum = sum(mul(sorted, c), {1});  // (P) Σ_{i,j} |a_i − a_j|
  Tensor total = sum(a, {1});                  // (P)
  Tensor is_zero;
  {
    NoGradGuard ng;
    is_zero = eq_scalar(total.detach(), 0.0);  // an all-zero row gives 0, not NaN
  }
  Tensor gini = div(pair_sum, mul_scalar(add(total, is_zero), static_cast<double>(L)));
  return neg(mean_all(gini));
}

Tensor l2_penalty(const std::vector<Tensor>& params) {
  Tensor s;
  for (const auto& p : params) {
    Tensor t = sum_all(square(p));
    s = s.defined() ? add(s, t) : t;
  }
  return s;
}

}  // namespace lowpass
