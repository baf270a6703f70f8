// The training objective: task loss + λ · attribution-prior loss, computed through double backprop.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "models/arch/model.h"
#include "models/data/batch.h"

namespace lowpass {

struct PriorConfig {
  std::string type = "fourier";  // fourier | smoothness | sparsity | none
  double weight = 1.0;           // λ (binary default 1, profile default 50)
  int64_t freq_limit = 150;      // K (binary 150, profile 200)
  std::optional<double> softness = 0.2;  // s; nullopt = hard cut-off
  double smooth_sigma = 3.0;
  double l2_weight = 0.0;        // the reference's L2 weight-penalty baseline (λ₂ Σ θ²)
  // Which forward the attributions come from, for models with batch norm (binary):
  //  "train" (the reference): the training forward itself (batch statistics). With BN right before
  //          the output layer, Σ_b logits is independent of x, so these attributions are 0 up to
  //          round-off (see docs/models.md).
  //  "eval": a separate forward with running statistics (no running-stat update), taken before the
  //          training forward; the task loss still uses the training forward.
  std::string attribution_mode = "train";
  // When the prior scores only some rows (binary: the positives; profile: the peaks) and the model's rows do not
  // interact (no training-mode batch norm), compute the attributions, and so the prior's double backward, on those
  // rows only: the forward runs as two halves (scored rows, other rows) and the outputs are put back in batch
  // order. Same losses and gradients up to round-off (with dropout, the same in distribution: the two forwards draw
  // their masks part by part), about a quarter less arithmetic per prior step at half the rows scored. false: every row's attributions (the reference's arithmetic; tests and bench A/B use it).
  bool scored_rows_only = true;
};

struct Losses {
  Tensor task;   // scalar
  Tensor prior;  // scalar (0 when no prior or no eligible example)
  Tensor total;  // task + weight * prior (+ l2)
  Tensor attributions;  // (R, 4, L) grad × input used by the prior (undefined when no prior or no row is scored)
  // The batch rows of `attributions`, in order; empty: all B rows (R = B). Non-empty when the attributions were
  // computed for the scored rows only (PriorConfig::scored_rows_only).
  std::vector<int64_t> attribution_rows;
  ModelOutput outputs;  // the training forward's outputs (for metrics)
  Tensor task_profile, task_counts;  // profile model: the two parts of `task` (undefined for binary)
  // {task, prior, total} read back together: one copy (one device synchronisation) instead of three.
  std::vector<double> scalars() const;
};

// grad × input with the reference's seeds (REFERENCE §1.1): binary d(Σ_{b,t} logits)/dx; profile
// Jᵀ(ℓ − mean_O ℓ) with the seed detached. x must be a leaf that requires grad. create_graph keeps the
// result differentiable (for the prior's gradient).
Tensor input_attributions(const ModelOutput& out, const Tensor& x, bool create_graph);

// The status vector the prior uses: batch.status when given (size B), else binary: any task label 1;
// profile: every example.
std::vector<int> prior_status(const Batch& batch, const std::string& model_type);

// Sets the batch's task_pos_w/task_neg_w (binary) and prior_w (Batch, models/data/batch.h) from its host labels
// and status, in dtype `dt` on the host: compute_losses then counts nothing on the host.
void add_loss_weights(Batch& batch, const std::string& model_type, DType dt);

// Whether compute_losses may take the prior's attributions on the scored rows apart from the others
// (PriorConfig::scored_rows_only): a prior is on and the attributions' forward treats rows independently (no
// training-mode batch norm, or eval-mode attributions).
bool attributions_apart(const Model& model, const PriorConfig& prior, bool training);

// counts_loss_weight: profile only (default 20).
Losses compute_losses(Model& model, const Batch& batch, const PriorConfig& prior, bool training,
                      double counts_loss_weight = 20.0);

}  // namespace lowpass
