// Array datasets held in memory, read from / written to .npz: x (N, 4, L) one-hot, y, control, status.
// Binary: y (N, T) in {1, 0, -1}; profile: y (N, T, S, O) counts, control (N, T|1, S, O) optional.
// Test: build/tests/lowpass_tests -ts=train
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "models/data/batch.h"
#include "models/data/balanced_sampler.h"
#include "models/data/batch_source.h"

namespace lowpass {

// A host array kept beside the dataset (e.g. the simulator's true motif positions).
struct ExtraArray {
  Shape shape;
  std::vector<int64_t> values;
};

struct ArrayDataset {
  std::string source;          // file name, for messages
  std::string type;            // "binary" or "profile"
  int64_t n = 0, length = 0;   // N examples of length L
  std::vector<float> x;        // (N, 4, L)
  Shape y_shape;               // (N, T) or (N, T, S, O)
  std::vector<float> y;
  Shape control_shape;         // (N, T|1, S, O) or empty
  std::vector<float> control;
  std::vector<int> status;     // (N): 1 = prior-eligible (binary: any task positive), 0 = not
  std::map<std::string, ExtraArray> extra;  // written as int64 arrays

  int64_t tasks() const { return y_shape.size() > 1 ? y_shape[1] : 0; }
  bool has_control() const { return !control_shape.empty(); }
  // Binary sampling class: 1 positive (any task 1), 0 negative (all tasks 0), -1 ambiguous.
  int label_class(int64_t i) const;
  // Checks every invariant (shapes, values); throws Error naming source and field.
  void validate() const;
  // Fill a missing status with the defaults (binary: any task positive; profile: all 1), then validate().
  void validate_shapes_then_default_status();
};

// Read an npz (x, y, optional control/status, other integer arrays kept in `extra`).
// model_type "binary" or "profile" fixes the expected y rank. Errors name the file and field.
ArrayDataset read_array_dataset(const std::string& path, const std::string& model_type);
// Write x as uint8 when it is exactly one-hot/zero, y/control as float32, status as int32.
void write_array_dataset(const ArrayDataset& ds, const std::string& path);

// Gather examples `idx` into a batch on the CPU. With revcomp, the reverse complements are appended
// after the forward copies (flip position and base axes; profiles/controls flip position and
// strand axes; labels and status duplicated), so the batch has 2·|idx| rows.
Batch make_batch(Context& ctx, const ArrayDataset& ds, const std::vector<int64_t>& idx, bool revcomp);

struct ArraySamplerOptions {
  int64_t batch_size = 128;     // rows per batch before reverse-complement doubling
  double negative_ratio = 1.0;  // negatives per positive (0 = positives only)
  bool shuffle = true;          // reshuffle positives and negatives every epoch
  bool revcomp = true;          // append reverse complements (batch rows double)
  bool sequential = false;      // evaluation: every example once, in file order, no balancing
};

// Batches from an ArrayDataset (REFERENCE §2.2 / §3.2 semantics). Training: each batch holds
// p = round(batch_size / (1 + ratio)) positives then batch_size − p negatives; an epoch is
// ceil(#positives / p) batches, every positive once; negatives are reshuffled each epoch and only the
// first ones needed are used (cycled if there are too few). Binary positives = any task 1, negatives =
// all tasks 0, ambiguous (−1) rows never sampled; profile positives = status 1, negatives = status 0.
// With no negatives (or ratio 0) a batch is batch_size positives. Sequential: every row in order.
class ArrayBatchSource : public BatchSource {
 public:
  ArrayBatchSource(const ArrayDataset& ds, const ArraySamplerOptions& o, std::string role);
  int64_t batches_per_epoch() const override { return sampler_.batches(); }
  void start_epoch(int64_t epoch, Rng& rng) override;
  Batch next(Context& ctx) override;
  SourceGeometry geometry() const override;
  std::string describe() const override;
  int64_t positives_per_batch() const { return sampler_.positives_per_batch(); }

 private:
  const ArrayDataset& ds_;
  ArraySamplerOptions o_;
  std::string role_;
  BalancedSampler sampler_;  // pools: positives / negatives (sequential: every row as a "positive")
  int64_t cursor_ = -1;
};

}  // namespace lowpass
