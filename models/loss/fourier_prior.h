// The Fourier attribution prior (REFERENCE §1.2): a = smooth_σ(Σ_bases |attr|); m = |rfft(a)|;
// loss = mean over status==1 rows of 1 − Σ_{k≥1} w_k m_k / Σ_{j≥0} m_j (DC in the normaliser, a 0 sum → 1),
// w_k = 1 for k ≤ K, 1/(1+(k−K)^s) beyond (0 with a hard cut-off). Test: lowpass_tests -ts=loss
#pragma once
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "engine/ops.h"

namespace lowpass {

// Weights of the kept bins k = 1..n_kept (index i ↔ k = i+1): 1 up to K, then 1/(1+x^s), x = 1, 2, …
// (so w_{K+1} = 0.5); with softness nullopt, 0 beyond K.
std::vector<double> fourier_weights(int64_t n_kept, int64_t freq_limit, std::optional<double> softness);

// The default K for attributions of length L: the paper's cut-off in cycles per base, kept at any length
// (binary K 150 at L 1000, profile K 200 at L 1346; round(K·L/L_ref), at least 1). A fixed K above L/2 would
// give every frequency weight 1, and the prior would then penalise only the DC share. Inline, as
// check_freq_limit: the config parser (and its fuzz target) uses them without the prior's ops.
inline int64_t default_freq_limit(const std::string& model_type, int64_t length) {
  const bool binary = model_type == "binary";
  const int64_t k_ref = binary ? 150 : 200, l_ref = binary ? 1000 : 1346;
  return std::max<int64_t>(1, (k_ref * std::max<int64_t>(length, 0) + l_ref / 2) / l_ref);
}

// Throws when K leaves no frequency above it (K >= L/2: every weight 1), naming `what` (e.g. "c.json:
// 'prior.freq_limit'").
inline void check_freq_limit(int64_t freq_limit, int64_t length, const std::string& what) {
  LP_CHECK(freq_limit >= 0, what, " must be >= 0, got ", freq_limit);
  LP_CHECK(freq_limit < length / 2, what, " is ", freq_limit, " but attributions of length ", length, " have only ",
           length / 2, " frequencies above DC: every one would get weight 1 and the prior would penalise only the DC "
           "share. Use a K below ", length / 2, " (leave it unset for the paper's cut-off at this length: ",
           default_freq_limit("binary", length), " for the binary model, ", default_freq_limit("profile", length),
           " for the profile model)");
}

// Rows of (B, …) where status == 1 (the prior's eligible examples).
std::vector<int64_t> eligible_rows(const std::vector<int>& status);

// The rows 0..B-1 not in `rows` (ascending), e.g. a batch's unscored rows.
std::vector<int64_t> other_rows(const std::vector<int64_t>& rows, int64_t B);

// attr (B, 4, L) grad × input; status (B). Scalar mean over status==1 rows; a constant 0 when none.
Tensor fourier_prior_loss(const Tensor& attr, const std::vector<int>& status, int64_t freq_limit = 150,
                          std::optional<double> softness = 0.2, double smooth_sigma = 3.0);

// The same prior as Σ_b w_b · score_b over every row, with w (B) = status / P made on the host: no row selection,
// so the shapes do not depend on the batch's labels (the form a CUDA graph can hold). Equal to fourier_prior_loss
// up to the order of the sum when w = status / P.
Tensor fourier_prior_loss_weighted(const Tensor& attr, const Tensor& w, int64_t freq_limit = 150,
                                   std::optional<double> softness = 0.2, double smooth_sigma = 3.0);

// Σ_bases |attr| restricted to eligible rows: (P, L); undefined when no row is eligible.
Tensor abs_attribution_rows(const Tensor& attr, const std::vector<int>& status);

}  // namespace lowpass
