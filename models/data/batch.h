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
  int64_t size() const { return x.defined() ? x.size(0) : 0; }
};

}  // namespace lowpass
