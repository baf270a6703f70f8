// BatchSource: the interface through which the trainer consumes any dataset (genome files, arrays).
// An epoch is start_epoch(e, rng) followed by exactly batches_per_epoch() calls of next(ctx).
// Test: build/tests/lowpass_tests -ts=genome
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/context.h"
#include "models/data/batch.h"

namespace lowpass {

// What the model must accept; the trainer checks it against the model's config.
struct SourceGeometry {
  bool profile = false;       // false: binary labels y (B, T); true: profiles y (B, T, S, O)
  int64_t input_length = 0;   // L of x (B, 4, L)
  int64_t tasks = 0;          // T
  int64_t strands = 0;        // S (profile only)
  int64_t output_length = 0;  // O (profile only)
  int64_t control_tasks = 0;  // 0: no control; T: matched controls; 1: one shared control (profile only)
};

// Contract (for the trainer and every dataset):
// - start_epoch(epoch, rng) begins an epoch: it draws everything random for the epoch (shuffles,
//   negatives, jitter, RC choices) from `rng`, on the calling thread only, so a seeded trainer RNG
//   makes the whole run reproducible whatever the number of prefetch threads. It may start
//   background threads that prepare the epoch's batches ahead of time.
// - next(ctx) returns the next batch of the current epoch, in a fixed order, with tensors on
//   ctx.device() (x float32 (B, 4, L); y float32; control float32 or undefined; status per row).
//   Calling it more than batches_per_epoch() times, or before start_epoch, throws lowpass::Error.
//   Errors met while preparing a batch in the background are rethrown here.
// - batches_per_epoch() is fixed after construction (it does not depend on the epoch).
// - The last batch of an epoch may be smaller than the others.
// - Reverse-complement doubling, when configured, is already applied: rows [B/2, B) are the reverse
//   complements of rows [0, B/2) with the same labels (profiles flipped along position and strand).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t batches_per_epoch() const = 0;
  virtual void start_epoch(int64_t epoch, Rng& rng) = 0;
  virtual Batch next(Context& ctx) = 0;
  virtual SourceGeometry geometry() const = 0;
  // One line for logs: what is sampled (e.g. "profile train: 1203 peaks, 1:1 GC-matched negatives").
  virtual std::string describe() const = 0;
  // Profile data: the counts-loss weight ChromBPNet derives from it, the median total count (all tasks and strands of
  // the output window) of the positives / 10 (train.counts_loss_weight "auto"); -1 where the source cannot say.
  virtual double suggested_counts_weight() { return -1; }
};

// That rule on the positives' total counts: their median / 10 (-1 for none). Shared by the sources that know them.
inline double counts_weight_from_totals(std::vector<double> totals) {
  if (totals.empty()) return -1;
  std::nth_element(totals.begin(), totals.begin() + static_cast<std::ptrdiff_t>(totals.size() / 2), totals.end());
  return totals[totals.size() / 2] / 10.0;
}

}  // namespace lowpass
