// The reference's baseline priors (REFERENCE §1.5), on a = Σ_bases |grad × input| of status==1 rows:
// smoothness (TV): mean_P Σ_i |a_{i+1} − a_i|; sparsity (Gini): −mean_P Σ_{i,j}|a_i − a_j| / (L Σ_i a_i);
// L2 weight penalty: Σ_θ θ². Test: build/tests/lowpass_tests -ts=loss
#pragma once
#include <vector>

#include "engine/ops.h"

namespace lowpass {

// attr (B, 4, L), status (B). Scalars; a constant 0 when no row has status 1.
Tensor smoothness_prior_loss(const Tensor& attr, const std::vector<int>& status);
// Σ_{i,j}|a_i − a_j| is computed in O(L log L) as 2 Σ_k (2k − L + 1) a_(k) over the ascending order.
Tensor sparsity_prior_loss(const Tensor& attr, const std::vector<int>& status);
// Σ over the given tensors of Σ θ² (the reference's l2_reg_loss_weight term, before weighting).
Tensor l2_penalty(const std::vector<Tensor>& params);

}  // namespace lowpass
