// Profile task loss (REFERENCE §3.3): multinomial NLL of the counts under softmax_O(logits), with the
// combinatorial terms, averaged over T·S and batch, + w · mean (log_counts − log(n+1))², n = Σ_O y.
// NLL = −[lgamma(n+1) − Σ_o lgamma(y_o+1) + Σ_o y_o log p_o]. Test: build/tests/lowpass_tests -ts=loss
#pragma once
#include <algorithm>
#include <cmath>

#include "engine/ops.h"

namespace lowpass {

struct ProfileTaskLoss {
  Tensor profile;  // scalar: mean multinomial NLL
  Tensor counts;   // scalar: mean squared error of log counts
  Tensor total;    // profile + counts_loss_weight · counts
};

// profile_logits (B, T, S, O), log_counts (B, T, S), y (B, T, S, O) counts.
ProfileTaskLoss profile_task_loss(const Tensor& profile_logits, const Tensor& log_counts, const Tensor& y,
                                  double counts_loss_weight = 20.0);

// The total count a predicted log count stands for: the counts head is trained on log(n + 1), so n = exp − 1 (0 for a
// prediction below 0). Expected counts per base = softmax_O(profile logits) · this (predict's tracks, report, variants).
inline double predicted_total(double log_counts) { return std::max(0.0, std::expm1(log_counts)); }

}  // namespace lowpass
