// The training loop (REFERENCE §2.2–2.5, §3.4): balanced batches with reverse-complement doubling,
// Adam/SGD on L_task + λ·L_prior, eval-mode validation, early stopping, best state, checkpoints,
// metrics.jsonl, bit-identical --resume. Test: build/tests/lowpass_tests -ts=train
#pragma once
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "models/train/config.h"

namespace lowpass {

struct TrainOptions {
  std::string out_dir;        // the model directory (created)
  std::string init_weights;   // optional safetensors state_dict to start from
  bool resume = false;        // continue from out_dir/checkpoints/last.safetensors
  std::FILE* log = nullptr;   // one-line epoch summaries (nullptr = stderr); progress obeys train.progress
  bool quiet = false;         // no epoch summaries and no progress bar
  // Crash safety (docs/reliability.md): when *stop_signal becomes non-zero (a SIGINT/SIGTERM handler sets it)
  // the current step finishes, last.safetensors is written and train_model returns (stop_reason "signal").
  const volatile std::sig_atomic_t* stop_signal = nullptr;
  // Numerics guard: a non-finite loss or gradient throws Error naming the step, the loss terms and the last
  // good checkpoint; with skip_nonfinite the batch is skipped instead (no update) and counted.
  bool skip_nonfinite = false;
};

struct TrainResult {
  int64_t epochs = 0;          // epochs completed
  int64_t steps = 0;           // optimiser steps taken in total
  int64_t best_epoch = 0;      // 1-based epoch of best.safetensors (0 = none)
  double best_value = 0;       // its validation loss (the early-stopping key)
  std::string stop_reason;     // "epochs" | "early_stopping" | "max_steps" | "signal"
  nlohmann::json test;         // test metrics of the best weights (empty without data.test)
  int64_t skipped_batches = 0; // batches skipped for non-finite numbers (skip_nonfinite), whole run
  std::string last_checkpoint; // the last checkpoint written or resumed from ("" = none)
};

// Train as configured, writing the model directory:
//   config.json (resolved), model.safetensors (last), best.safetensors (lowest validation loss; the
//   last weights when there is no validation set), checkpoints/epoch_<n>.safetensors and
//   checkpoints/last.safetensors (weights, optimiser, RNG, sampler position), metrics.jsonl (one
//   object per epoch), test_metrics.json (when data.test is set).
// Errors (missing files, bad shapes, NaN losses with the step) throw lowpass::Error.
TrainResult train_model(const TrainConfig& cfg, const TrainOptions& opt);

}  // namespace lowpass
