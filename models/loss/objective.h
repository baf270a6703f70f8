// The training objective: task loss + λ · attribution-prior loss, computed through double backprop.
#pragma once
#include <optional>
#include <string>

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
};

struct Losses {
  Tensor task;   // scalar
  Tensor prior;  // scalar (0 when no prior or no eligible example)
  Tensor total;  // task + weight * prior (+ l2)
  Tensor attributions;  // (B, 4, L) grad × input used by the prior (undefined when no prior)
};

// counts_loss_weight: profile only (default 20).
Losses compute_losses(Model& model, const Batch& batch, const PriorConfig& prior, bool training,
                      double counts_loss_weight = 20.0);

}  // namespace lowpass
