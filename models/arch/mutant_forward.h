// Forward passes of single-base substitutions of one sequence that recompute only what a substitution reaches
// (fastISM, Nair et al. 2022): each conv layer over the window of positions whose receptive field holds the edit,
// spliced into the unmutated sequence's cached activations; pools, dense layers and heads from the spliced tensors.
// Legend: N mutants, C channels, L length. Test: build/tests/lowpass_tests -ts=attr -tc="*fastISM*"
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "models/arch/model.h"

namespace lowpass {

class MutantForward {
 public:
  virtual ~MutantForward() = default;
  // The unmutated sequence's outputs (1, ...), from the model's own forward: f(x) of ISM.
  virtual const ModelOutput& reference() const = 0;
  // Outputs (N, ...) shaped as forward's for the mutants n: x with position pos[n] set to one-hot base[n] (0..3).
  // need_profile = false may leave profile_logits undefined (a counts or logits target reads no profile).
  virtual ModelOutput run(const std::vector<int64_t>& pos, const std::vector<int>& base, bool need_profile) = 0;
  // About how many mutants hold the activations of one whole forward pass (input length over the widest conv
  // window, at least 1): ISM runs max_batch × this many mutants per call.
  virtual int64_t rows_per_sequence() const = 0;
};

// Activations base (1, C, Lb) into which windows of per-mutant values are spliced: on the host by runs of memcpy, on
// a device as rows (1 + Lb, C) (a zero row first) by one index_select.
class SpliceBase {
 public:
  SpliceBase() = default;
  // host_copy = false takes the device path (index_select) on the host too (its test).
  explicit SpliceBase(const Tensor& base, bool host_copy = true);
  // (N, C, len): for row n, column j is position start[n] + j of base with columns [win_start[n], win_start[n] + w)
  // replaced by win[n] (win (N, C, w); undefined: base alone), and zero outside [0, Lb) (a conv's 'same' padding).
  Tensor gather(const Tensor& win, const std::vector<int64_t>& win_start, const std::vector<int64_t>& start,
                int64_t len) const;
  int64_t length() const { return L_; }

 private:
  Tensor gather_host(const Tensor& win, const std::vector<int64_t>& win_start, const std::vector<int64_t>& start,
                     int64_t len) const;
  Tensor base_;  // (1, C, Lb) on the host; else
  Tensor rows_;  // (1 + Lb, C) on the device, gathered by index_select
  int64_t C_ = 0, L_ = 0;
};

// The window of a layer of length n that a change reaching positions [lo, hi] touches: width min(hi − lo + 1, n),
// start lo shifted into [0, n − width]. Every mutant's window of a layer has the same width, so they batch.
inline int64_t window_start(int64_t lo, int64_t width, int64_t n) { return std::clamp<int64_t>(lo, 0, n - width); }

}  // namespace lowpass
