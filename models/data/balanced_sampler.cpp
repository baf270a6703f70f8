// Batches of positives and negatives at a fixed ratio (models/data/balanced_sampler.h). Test: lowpass_tests -ts=train
#include "models/data/balanced_sampler.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace lowpass {

BalancedSampler::BalancedSampler(std::vector<int64_t> pos, std::vector<int64_t> neg, int64_t batch_size,
                                 double negative_ratio, bool sequential)
    : pos_(std::move(pos)), neg_(std::move(neg)), sequential_(sequential) {
  LP_CHECK(batch_size >= 1, "batch_size must be >= 1, got ", batch_size);
  LP_CHECK(negative_ratio >= 0, "negative_ratio must be >= 0, got ", negative_ratio);
  if (sequential_ || neg_.empty() || negative_ratio <= 0) {
    pos_per_batch_ = batch_size;
    neg_per_batch_ = 0;
  } else {
    pos_per_batch_ = std::max<int64_t>(1, std::llround(static_cast<double>(batch_size) / (1.0 + negative_ratio)));
    pos_per_batch_ = std::min(pos_per_batch_, batch_size);
    neg_per_batch_ = batch_size - pos_per_batch_;
  }
  batches_ = (positives() + pos_per_batch_ - 1) / pos_per_batch_;
}

void BalancedSampler::start_epoch(Rng& rng, bool shuffle) {
  pos_order_ = pos_;
  if (shuffle && !sequential_) std::shuffle(pos_order_.begin(), pos_order_.end(), rng.engine());
  neg_order_.clear();
  const int64_t need = batches_ * neg_per_batch_;
  if (need > 0) {
    std::vector<int64_t> pool = neg_;
    if (shuffle) std::shuffle(pool.begin(), pool.end(), rng.engine());
    neg_order_.reserve(static_cast<size_t>(need));
    for (int64_t k = 0; k < need; ++k) neg_order_.push_back(pool[static_cast<size_t>(k) % pool.size()]);
  }
  started_ = true;
}

std::vector<int64_t> BalancedSampler::batch(int64_t b) const {
  LP_ASSERT(started_ && b >= 0 && b < batches_, "BalancedSampler::batch(", b, ") of ", batches_,
            started_ ? "" : " before start_epoch()");
  const int64_t np = positives();
  const int64_t p0 = b * pos_per_batch_, p1 = std::min(np, p0 + pos_per_batch_);
  std::vector<int64_t> idx(pos_order_.begin() + p0, pos_order_.begin() + p1);
  if (neg_per_batch_ > 0) {
    const int64_t nn = p1 - p0 == pos_per_batch_
                           ? neg_per_batch_
                           : std::llround(static_cast<double>((p1 - p0) * neg_per_batch_) /
                                          static_cast<double>(pos_per_batch_));
    const int64_t n0 = b * neg_per_batch_;
    for (int64_t k = 0; k < nn; ++k) idx.push_back(neg_order_[static_cast<size_t>(n0 + k)]);
  }
  return idx;
}

}  // namespace lowpass
