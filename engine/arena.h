// Arenas: one contiguous block per role (parameter values, gradients, each optimiser-state field) for a set of
// parameters of one dtype and device, all laid out alike. An optimiser then updates every parameter in one pass
// (one kernel launch on a GPU instead of one per tensor), a backward pass writes all gradients with one copy
// launch, the non-finite check reads one block, and every address stays fixed from the first step on.
// Used by engine/optim.cpp (AdamOptions::arena, SgdOptions::arena). Test: lowpass_tests -ts=optim
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "engine/tensor.h"

namespace lowpass {

struct ArenaLayout {
  // Each tensor starts on a multiple of kAlign elements (128 bytes in float32) so vector loads stay aligned;
  // the gaps are zero in every block and an update maps zeros to zeros, so they never change.
  static constexpr int64_t kAlign = 32;
  std::vector<int64_t> offsets;  // element offset of tensor i in a block
  std::vector<Shape> shapes;
  int64_t total = 0;  // elements in a block, gaps included
  DType dtype = DType::F32;
  Device device;

  // Layout for `ts`; nullopt when they are none or do not share one dtype and device.
  static std::optional<ArenaLayout> of(const std::vector<Tensor>& ts);
  // A zero-filled block (1-d, `total` elements) on the layout's device.
  Tensor alloc(Context& ctx) const;
  // Tensor i's part of `block`: shares its storage, shaped like tensor i.
  Tensor view(const Tensor& block, size_t i) const;
  // Whether `t` is exactly tensor i's part of `block` (same storage and offset).
  bool holds(const Tensor& block, size_t i, const Tensor& t) const;
};

// Moves the values of `params` into one new block, in place: each parameter keeps its TensorImpl (the model and
// everyone else holding it see the move) but now points into the block. Returns the block.
Tensor bind_values(const std::vector<Tensor>& params, const ArenaLayout& layout);
// Gives each parameter a fixed gradient slot in one new block (TensorImpl::grad_slot); backward() writes the
// parameter's gradient there from then on. Gradients already present are left as they are. Returns the block.
Tensor bind_grad_slots(const std::vector<Tensor>& params, const ArenaLayout& layout);

}  // namespace lowpass
