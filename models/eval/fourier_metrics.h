// High-frequency share of attributions (REFERENCE §4.5a): a = Σ_bases |attr| (no smoothing),
// m_k = |DFT(a)_k| for k = 1 … L/2−1 (first L/2 bins, DC dropped and left out of the normaliser),
// share = Σ_{k ≥ K+1} m_k / Σ_{k ≥ 1} m_k. Lower = smoother. Test: build/tests/lowpass_tests -ts=train
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace lowpass {

// Share for one track a (L). Returns 0 when every non-DC magnitude is 0.
double high_freq_share(const std::vector<double>& a, int64_t freq_limit);
// Per-example shares of attributions (B, 4, L) (any dtype; |·| summed over the 4 bases first).
std::vector<double> high_freq_shares(const Tensor& attributions, int64_t freq_limit);

}  // namespace lowpass
