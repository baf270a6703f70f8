// Arena layouts and the in-place re-binding of parameters and their gradient slots (engine/arena.h).
// Test: lowpass_tests -ts=optim
#include "engine/arena.h"

namespace lowpass {

std::optional<ArenaLayout> ArenaLayout::of(const std::vector<Tensor>& ts) {
  if (ts.empty()) return std::nullopt;
  ArenaLayout a;
  a.dtype = ts.front().dtype();
  a.device = ts.front().device();
  for (const Tensor& t : ts) {
    if (!t.defined() || t.dtype() != a.dtype || t.device() != a.device) return std::nullopt;
    a.offsets.push_back(a.total);
    a.shapes.push_back(t.shape());
    a.total += (t.numel() + kAlign - 1) / kAlign * kAlign;
  }
  return a;
}

Tensor ArenaLayout::alloc(Context& ctx) const { return Tensor::zeros(ctx, {total}, dtype, device); }

Tensor ArenaLayout::view(const Tensor& block, size_t i) const {
  LP_ASSERT(i < offsets.size() && block.numel() == total, "arena view ", i, " of ", block.describe());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = block.impl()->storage;
  impl->offset = block.impl()->offset + offsets[i];
  impl->shape = shapes[i];
  impl->dtype = dtype;
  impl->ctx = &block.ctx();
  impl->ctx_id = block.impl()->ctx_id;
  return Tensor(impl);
}

bool ArenaLayout::holds(const Tensor& block, size_t i, const Tensor& t) const {
  return t.defined() && t.impl()->storage == block.impl()->storage &&
         t.impl()->offset == block.impl()->offset + offsets[i] && t.shape() == shapes[i] && t.dtype() == dtype;
}

Tensor bind_values(const std::vector<Tensor>& params, const ArenaLayout& layout) {
  LP_ASSERT(params.size() == layout.offsets.size(), "bind_values: ", params.size(), " tensors for a layout of ",
            layout.offsets.size());
  Tensor block = layout.alloc(params.front().ctx());
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor v = layout.view(block, i);
    v.copy_(params[i]);
    TensorImpl* p = params[i].impl();
    p->storage = v.impl()->storage;
    p->offset = v.impl()->offset;
  }
  return block;
}

Tensor bind_grad_slots(const std::vector<Tensor>& params, const ArenaLayout& layout) {
  LP_ASSERT(params.size() == layout.offsets.size(), "bind_grad_slots: ", params.size(), " tensors for a layout of ",
            layout.offsets.size());
  Tensor block = layout.alloc(params.front().ctx());
  for (size_t i = 0; i < params.size(); ++i) params[i].impl()->grad_slot = layout.view(block, i).impl_ptr();
  return block;
}

}  // namespace lowpass
