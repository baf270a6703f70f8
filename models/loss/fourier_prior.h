// The Fourier attribution prior (REFERENCE §1.2): a = smooth_σ(Σ_bases |attr|); m = |rfft(a)|;
// loss = mean over status==1 rows of 1 − Σ_{k≥1} w_k m_k / Σ_{j≥0} m_j (DC in the normaliser, a 0 sum → 1),
// w_k = 1 for k ≤ K, 1/(1+(k−K)^s) beyond (0 with a hard cut-off). Test: lowpass_tests -ts=loss
#pragma once
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
// give every frequency weight 1, and the prior would then penalise only the DC share.
int64_t default_freq_limit(const std::string& model_type, int64_t length);

// Throws when K leaves no frequency above it (K >= L/2: every weight 1), naming `what` (e.g. "c.json:
// 'prior.freq_limit'").
void check_freq_limit(int64_t freq_limit, int64_t length, const std::string& what);

// Rows of (B, …) where status == 1 (the prior's eligible examples).
std::vector<int64_t> eligible_rows(const std::vector<int>& status);

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
