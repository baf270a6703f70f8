// Evaluation of a model on an array dataset in eval mode (batch norm running statistics): mean task,
// prior and total loss over batches, auROC per task (binary), and grad×input attributions.
// Test: build/tests/lowpass_tests -ts=train
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/arch/model.h"
#include "models/data/array_dataset.h"
#include "models/loss/objective.h"

namespace lowpass {

struct EvalResult {
  double task = 0, prior = 0, total = 0;  // example-weighted means over batches
  double auroc = 0;                       // binary: mean over tasks with both classes (NaN if none)
  std::vector<double> auroc_per_task;
  int64_t examples = 0;                   // rows evaluated (reverse complements included)
  nlohmann::json profile_metrics;         // profile with full metrics: nll, uniform_nll, jsd, count_pearson, ...
  nlohmann::json to_json(const std::string& prefix) const;  // {"<prefix>task_loss": …, …}
};

// Every example once (plus reverse complements when revcomp), batches of batch_size, eval mode.
// The prior is computed as in training (attributions from the eval-mode forward). NaN → Error naming `what`.
EvalResult evaluate(Model& model, const ArrayDataset& ds, const PriorConfig& prior, bool revcomp,
                    int64_t batch_size, double counts_loss_weight, Context& ctx, const std::string& what);

// The same over any BatchSource (npz, genome files): one epoch started with Rng(seed), so sampled
// negatives/jitter are the same at every call. With full_profile_metrics, profile models also get the
// multinomial NLL (and that of a uniform profile, the baseline), JSD and count correlations
// (models/eval/profile_metrics.h) in `profile_metrics`.
EvalResult evaluate_source(Model& model, BatchSource& src, const PriorConfig& prior, double counts_loss_weight,
                           Context& ctx, const std::string& what, bool full_profile_metrics = false,
                           uint64_t seed = 0);

// grad × input attributions (B, 4, L) of rows `idx` in eval mode, with the reference's seeds
// (binary: Σ_t logits; profile: mean-centred profile logits, detached). float64 host copy.
Tensor eval_attributions(Model& model, const ArrayDataset& ds, const std::vector<int64_t>& idx, Context& ctx,
                         int64_t batch_size = 64);

// auROC of scores against labels in {0, 1} (other labels ignored); ties count one half. NaN when a
// class is missing.
double auroc(const std::vector<double>& labels, const std::vector<double>& scores);

}  // namespace lowpass
