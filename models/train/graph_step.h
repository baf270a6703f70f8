// GraphStep: one training step in a fixed form, so that on a GPU the whole step (forward, grad × input with
// create_graph, the Fourier prior, the double backward, the non-finite check and the optimiser update) is captured
// once as a CUDA graph and replayed for every later batch of the same shape (docs/cuda.md, "CUDA graphs"):
//  - the batch is copied into tensors that keep their addresses (the graph's inputs);
//  - the losses are weighted per example on the host (Batch::task_pos_w, task_neg_w, prior_w), so no shape and no
//    kernel argument depends on the batch's labels: the prior runs over every row with weight status / P, or, where
//    the attributions can be taken apart (attributions_apart), over a prefix of A rows after the batch is reordered
//    scored rows first (A fixed per batch shape; Batch::attribution_prefix);
//  - the optimiser takes a live step (engine/optim.h): its step-dependent scalars are written to the device before
//    each run, and the update skips itself on the device when the loss or a gradient is not finite;
//  - losses and the skip flag are read back once, after the step.
// Without capture (on the CPU, or on a GPU with capture off) the same fixed-form step runs eagerly; the CPU tests
// check it against the ordinary step. The first step of a shape runs eagerly (it allocates the parameter arenas'
// state, cuFFT plans and cached uploads), the second is captured, later ones replay. One graph is kept: the first
// shape seen twice (the full batch size). Batches of other shapes (the short last batch of an epoch) run the same
// fixed form eagerly on their own fixed tensors, so they neither drop the graph nor double its memory. A capture
// that fails (an op that reads back) is reported once and the run goes on eagerly. Dropout (a fresh mask per step)
// is refused.
// Test: build/tests/lowpass_tests -tc="*graph step*" (CPU) and -ts=cuda (GPU).
#pragma once
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "engine/optim.h"
#include "kernels/cuda/runtime.h"
#include "models/arch/model.h"
#include "models/loss/objective.h"

namespace lowpass {

struct GraphStepResult {
  double task = 0, prior = 0, total = 0;  // the step's losses
  bool finite = true;     // false: the loss or a gradient was not finite and nothing was updated
  bool replayed = false;  // the step ran as a replay of a captured graph
};

class GraphStep {
 public:
  // capture: record and replay CUDA graphs (the model must live on a GPU); false: the fixed form, eagerly.
  // log: where the one-line capture report (and a failed capture's reason) goes; nullptr = silent.
  GraphStep(Model& model, Optimizer& optim, const PriorConfig& prior, double counts_loss_weight, bool capture,
            std::FILE* log = nullptr);
  ~GraphStep();
  GraphStep(const GraphStep&) = delete;
  GraphStep& operator=(const GraphStep&) = delete;

  // One training step on `batch` (host tensors, as a BatchSource makes them). On a finite step the parameters are
  // updated and the optimiser's step counts advance; otherwise nothing changes but the batch-norm buffers (the
  // caller restores them, as the ordinary step does).
  GraphStepResult run(const Batch& batch);

  int64_t captures() const { return captures_; }
  int64_t replays() const { return replays_; }
  int64_t graph_nodes() const { return graph_ ? graph_->nodes() : 0; }
  int64_t graph_pool_bytes() const { return graph_ ? graph_->pool_bytes() : 0; }

 private:
  struct Held {
    Tensor task, prior, total;  // detached: the graph's keep their addresses and a replay rewrites them
  };
  struct Stage {
    Batch staged;        // the fixed tensors of one batch shape, on the model's device
    int64_t eager = 0;   // eager runs of this shape
  };
  Stage& stage_for(const Batch& hb, const std::string& key);
  Held body(const Batch& staged);

  Model& model_;
  Optimizer& optim_;
  PriorConfig prior_;
  double counts_loss_weight_;
  bool capture_;
  std::FILE* log_;
  std::map<std::string, Stage> stages_;  // by the batch's shapes; at most a few
  bool warned_prefix_ = false;  // a batch outgrew its prefix (said once)
  std::map<std::string, int64_t> prefix_rows_;  // by the batch's shapes: A, the rows whose attributions the prior takes
  std::string graph_key_;                  // the shape the graph was captured for
  std::unique_ptr<cuda::Graph> graph_;
  Held held_;                              // the graph's outputs
  int64_t captures_ = 0, replays_ = 0;
};

}  // namespace lowpass
