// The Fourier attribution prior on grad × input attributions, its gradient reaching the parameters through
// double backprop (REFERENCE §1.1–1.4): the engine's fused op fourier_prior_scores over the eligible rows. Test: build/tests/lowpass_tests -ts=loss
#include "models/loss/fourier_prior.h"

#include <algorithm>
#include <cmath>

namespace lowpass {

std::vector<double> fourier_weights(int64_t n_kept, int64_t freq_limit, std::optional<double> softness) {
  LP_CHECK(freq_limit >= 0, "prior.freq_limit: must be >= 0, got ", freq_limit);
  std::vector<double> w(static_cast<size_t>(std::max<int64_t>(n_kept, 0)), 1.0);
  for (int64_t i = freq_limit; i < n_kept; ++i) {
    const double x = static_cast<double>(i - freq_limit + 1);
    w[static_cast<size_t>(i)] = softness ? 1.0 / (1.0 + std::pow(x, *softness)) : 0.0;
  }
  return w;
}

std::vector<int64_t> eligible_rows(const std::vector<int>& status) {
  std::vector<int64_t> rows;
  for (size_t i = 0; i < status.size(); ++i)
    if (status[i] == 1) rows.push_back(static_cast<int64_t>(i));
  return rows;
}

std::vector<int64_t> other_rows(const std::vector<int64_t>& rows, int64_t B) {
  std::vector<bool> in(static_cast<size_t>(std::max<int64_t>(B, 0)), false);
  for (int64_t b : rows) {
    LP_CHECK(b >= 0 && b < B, "row ", b, " outside a batch of ", B);
    in[static_cast<size_t>(b)] = true;
  }
  std::vector<int64_t> others;
  for (int64_t b = 0; b < B; ++b)
    if (!in[static_cast<size_t>(b)]) others.push_back(b);
  return others;
}

namespace {
void check_attr(const Tensor& attr) {
  LP_CHECK(attr.defined() && attr.dim() == 3, "prior: attributions must be (B, 4, L), got ",
           attr.defined() ? shape_str(attr.shape()) : std::string("nothing"));
}
// The eligible rows, after checking attr (B, 4, L) against status (B).
std::vector<int64_t> checked_rows(const Tensor& attr, const std::vector<int>& status) {
  check_attr(attr);
  LP_CHECK(static_cast<int64_t>(status.size()) == attr.size(0), "prior: ", status.size(),
           " status values for a batch of ", attr.size(0));
  return eligible_rows(status);
}
}  // namespace

Tensor abs_attribution_rows(const Tensor& attr, const std::vector<int>& status) {
  auto rows = checked_rows(attr, status);
  if (rows.empty()) return Tensor();
  Tensor a = sum(abs(attr), {1});  // (B, L)
  if (static_cast<int64_t>(rows.size()) != attr.size(0)) a = index_select(a, 0, rows);  // (P, L)
  return a;
}

Tensor fourier_prior_loss(const Tensor& attr, const std::vector<int>& status, int64_t freq_limit,
                          std::optional<double> softness, double smooth_sigma) {
  auto rows = checked_rows(attr, status);
  if (rows.empty()) return Tensor::zeros(attr.ctx(), {}, attr.dtype(), attr.device());
  const int64_t kept = attr.size(2) / 2;  // bins 1..L/2 (DC dropped after normalising)
  // One fused op (engine/ops/prior.cpp; fourier_prior_scores_composed there is the same chain composed from ops).
  return mean_all(fourier_prior_scores(attr, rows, fourier_weights(kept, freq_limit, softness), smooth_sigma));
}

Tensor fourier_prior_loss_weighted(const Tensor& attr, const Tensor& w, int64_t freq_limit,
                                   std::optional<double> softness, double smooth_sigma) {
  check_attr(attr);
  const int64_t B = attr.size(0);
  LP_CHECK(w.defined() && w.shape() == Shape{B}, "prior: row weights must be (", B, ")");
  if (B == 0) return Tensor::zeros(attr.ctx(), {}, attr.dtype(), attr.device());
  std::vector<int64_t> rows(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) rows[static_cast<size_t>(b)] = b;
  const int64_t kept = attr.size(2) / 2;
  return sum_all(mul(fourier_prior_scores(attr, rows, fourier_weights(kept, freq_limit, softness), smooth_sigma), w));
}

}  // namespace lowpass
