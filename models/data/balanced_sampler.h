// Which examples make each batch of an epoch (REFERENCE §2.2 / §3.2), over two index pools: training batches hold
// p = round(batch_size / (1 + negative_ratio)) positives then batch_size − p negatives; an epoch is
// ceil(#positives / p) batches, every positive once; negatives are reshuffled every epoch and only the first ones
// needed are used (cycled if there are too few); a short last batch keeps the ratio. With no negatives (or ratio 0)
// a batch is batch_size positives. Sequential (evaluation): the positives pool in order, batch_size at a time.
// Shared by ArrayBatchSource (npz) and FastaBinaryDataset (data.sequences). Test: lowpass_tests -ts=train
#pragma once
#include <cstdint>
#include <vector>

#include "engine/context.h"

namespace lowpass {

class BalancedSampler {
 public:
  BalancedSampler() = default;
  BalancedSampler(std::vector<int64_t> pos, std::vector<int64_t> neg, int64_t batch_size, double negative_ratio,
                  bool sequential);
  int64_t batches() const { return batches_; }
  int64_t positives_per_batch() const { return pos_per_batch_; }
  int64_t negatives_per_batch() const { return neg_per_batch_; }
  int64_t positives() const { return static_cast<int64_t>(pos_.size()); }
  int64_t negatives() const { return static_cast<int64_t>(neg_.size()); }
  // Draws the epoch's order: the positives shuffled (unless sequential or !shuffle), then a shuffled copy of the
  // negatives pool cycled to the number needed.
  void start_epoch(Rng& rng, bool shuffle);
  // The indices of batch b of the current epoch: its positives, then its negatives.
  std::vector<int64_t> batch(int64_t b) const;

 private:
  std::vector<int64_t> pos_, neg_, pos_order_, neg_order_;
  int64_t pos_per_batch_ = 0, neg_per_batch_ = 0, batches_ = 0;
  bool sequential_ = false, started_ = false;
};

}  // namespace lowpass
