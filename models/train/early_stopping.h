// Early stopping as the reference's training scripts apply it (REFERENCE §2.3): stop when no consecutive-epoch
// improvement w[i] − w[i+1] in the last patience + 1 validation values exceeds min_delta (max over the window < min_delta).
// Test: build/tests/lowpass_tests -tc="early stopping*"
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace lowpass {

// `window`: the last validation values, oldest first (the trainer keeps at most patience + 1); `epoch`: epochs done,
// 1-based. The reference keeps a newest-first list of the last hist_len + 1 = 4 losses and checks it only from the
// epoch after it filled, i.e. from epoch hist_len + 2 = 5; train.min_epochs (5) is that epoch for the default
// patience 3 (with another patience p the reference's first check is at epoch p + 2: set min_epochs to match).
// A NaN in the window makes numpy's max NaN, and NaN < min_delta is false: no stop, as in the reference.
inline bool early_stop(const std::vector<double>& window, int64_t epoch, int64_t patience, double min_delta,
                       int64_t min_epochs) {
  if (epoch < min_epochs || static_cast<int64_t>(window.size()) != patience + 1) return false;
  double best_delta = -INFINITY;  // the largest consecutive-epoch improvement in the window
  for (size_t i = 0; i + 1 < window.size(); ++i) {
    const double d = window[i] - window[i + 1];
    if (std::isnan(d)) return false;
    best_delta = std::max(best_delta, d);
  }
  return best_delta < min_delta;
}

}  // namespace lowpass
