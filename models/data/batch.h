// One training/evaluation batch, already on the model's device.
// Legend: B batch, L input length, T tasks, S strands, O output (profile) length.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace lowpass {

struct Batch {
  Tensor x;        // (B, 4, L) one-hot (float32; N bases are all-zero columns)
  Tensor y;        // binary: (B, T) in {1, 0, -1}; profile: (B, T, S, O) counts
  Tensor control;  // profile with controls: (B, T or 1, S, O) counts; undefined otherwise
  std::vector<int> status;  // (B) 1 = eligible for the attribution prior (positives/peaks), 0 = not
  // Per-example weights that replace the losses' host-side counting, so that nothing in a training step depends on
  // the batch's labels on the host (CUDA-graph steps, models/train/graph_step.h; add_loss_weights in
  // models/loss/objective.h makes them). Undefined in ordinary batches. When defined:
  Tensor task_pos_w, task_neg_w;  // binary: (B, T) each label's weight in the class-averaged loss (0 for others)
  Tensor prior_w;                 // (B) each example's weight in the prior's mean: status / P (all 0 when P = 0)
  // With prior_w: the batch's rows were ordered so that rows [0, A) hold every scored row (then unscored ones, weight
  // 0), and the prior's attributions are taken on those A rows only (GraphStep, PriorConfig::scored_rows_only).
  // -1: every row's attributions.
  int64_t attribution_prefix = -1;
  int64_t size() const { return x.defined() ? x.size(0) : 0; }
};

}  // namespace lowpass
