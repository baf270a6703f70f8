// Attribution targets: which scalar of the model output is explained. Every target is
// f_x(x') = Σ seed_x ⊙ output(x'), a backward seed fixed at the explained input x:
//   logits[:t]   seed 1 on the binary logits of task t (all tasks summed when t is -1)
//   profile[:t]  seed ℓ − mean_O ℓ (detached) on the profile logits = d/dℓ Σ(ℓ − ℓ̄)·sg(log_softmax ℓ) (REFERENCE §1.1)
//   profile_raw  seed 1 on the profile logits (the reference's ISM target, §4.1)
//   counts[:t]   seed 1 on the predicted log counts.  Test: build/tests/lowpass_tests -ts=attr
#pragma once
#include <cstdint>
#include <string>

#include "models/arch/model.h"

namespace lowpass::attr {

enum class TargetKind { Logits, Profile, ProfileRaw, Counts };

struct Target {
  TargetKind kind = TargetKind::Logits;
  int64_t task = -1;  // -1 = all tasks summed
  std::string name() const;
};

// "logits", "logits:2", "profile", "profile:0", "profile_raw", "counts", "counts:1"; Error otherwise.
Target parse_target(const std::string& s);
// The default for a model type: binary -> logits, profile -> profile.
Target default_target(const Model& m);

// Throws when `y`, the output `t` reads from `out`, is missing, naming the targets this model has.
void check_target_output(const Tensor& y, const ModelOutput& out, const Target& t);

// The output tensor the target reads ((B, T), (B, T, S, O) or (B, T, S)) and its seed (same
// shape, no graph). Error when the model output lacks it or the task is out of range.
std::pair<Tensor, Tensor> target_seed(const ModelOutput& out, const Target& t);
// Per-example value Σ seed ⊙ output with the given seed (B), no graph.
std::vector<double> target_value(const Tensor& output, const Tensor& seed);

}  // namespace lowpass::attr
