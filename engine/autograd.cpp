// The tape walk: topological order over recorded nodes, pruned to what reaches the requested
// inputs; backward rules run with grad mode = create_graph, so their ops are recorded in turn.
#include "engine/autograd.h"

#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/optim.h"

namespace lowpass {

namespace {
thread_local bool t_grad_enabled = true;
thread_local bool t_keep_values = false;

// An edge to the op output t without its values: t's metadata (detach()) with t's grad_fn (so the same vertex) and
// no storage of its own (an empty Storage carries the device).
Tensor alias_without_values(const Tensor& t) {
  Tensor a = t.detach();
  auto none = std::make_shared<Storage>();
  none->device = t.device();
  a.impl()->storage = std::move(none);
  a.impl()->offset = 0;
  a.impl()->requires_grad = true;
  a.impl()->grad_fn = t.grad_fn();
  return a;
}

// The output handed to node's rule: the output itself while something holds it, else its alias `t` with the values
// the node kept (rules that read them), else `t` as it is (rules that do not read it).
Tensor output_for_rule(const Node& node, const std::shared_ptr<TensorImpl>& t) {
  if (auto real = node.output.lock()) return Tensor(real);
  if (!node.output_values || t->storage == node.output_values->storage) return Tensor(t);
  auto impl = std::make_shared<TensorImpl>(*t);
  impl->storage = node.output_values->storage;
  impl->offset = node.output_values->offset;
  return Tensor(impl);
}
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }
EnableGradGuard::EnableGradGuard(bool on) : prev_(t_grad_enabled) { t_grad_enabled = on; }
EnableGradGuard::~EnableGradGuard() { t_grad_enabled = prev_; }
KeepGraphValues::KeepGraphValues() : prev_(t_keep_values) { t_keep_values = true; }
KeepGraphValues::~KeepGraphValues() { t_keep_values = prev_; }

bool needs_record(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

Tensor record(const char* name, Tensor out, std::vector<Tensor> inputs, BackwardFn backward, bool uses_output) {
  if (!t_grad_enabled) return out;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return out;
  if (!t_keep_values) {  // edges only (autograd.h, Node): the values stay alive only where a rule captured them
    for (Tensor& t : inputs) {
      if (!t.defined()) continue;
      if (!t.requires_grad()) t = Tensor();
      else if (!t.is_leaf()) t = alias_without_values(t);
    }
  }
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->output = out.impl_ptr();
  if (uses_output) node->output_values = out.detach().impl_ptr();  // values without the graph: no cycle
  node->backward = std::move(backward);
  out.impl()->grad_fn = std::move(node);
  out.impl()->requires_grad = true;
  return out;
}

TapeOrder tape_order(const std::vector<Tensor>& outputs, const std::unordered_set<const void*>& targets) {
  // Iterative DFS post-order over the vertices that require grad; `needed` = reaches a target.
  TapeOrder r;
  auto& order = r.order;
  auto& needed = r.needed;
  struct Frame { std::shared_ptr<TensorImpl> t; size_t next; };
  std::vector<Frame> stack;
  for (const Tensor& o : outputs) {
    if (!o.defined() || !o.requires_grad() || needed.count(vertex_of(o.impl()))) continue;
    stack.push_back({o.impl_ptr(), 0});
    needed[vertex_of(o.impl())] = false;
    while (!stack.empty()) {
      Frame& f = stack.back();
      Node* node = f.t->grad_fn.get();
      if (node && f.next < node->inputs.size()) {
        const Tensor& in = node->inputs[f.next++];
        if (in.defined() && in.requires_grad() && !needed.count(vertex_of(in.impl()))) {
          needed[vertex_of(in.impl())] = false;
          stack.push_back({in.impl_ptr(), 0});
        }
        continue;
      }
      const void* v = vertex_of(f.t.get());
      bool need = targets.count(v) > 0;
      if (node)
        for (const Tensor& in : node->inputs)
          if (in.defined() && in.requires_grad() && needed[vertex_of(in.impl())]) need = true;
      needed[v] = need;
      order.push_back(f.t);
      stack.pop_back();
    }
  }
  return r;
}

std::unordered_map<const void*, Tensor> backward_walk(const std::vector<Tensor>& outputs,
                                                      const std::vector<Tensor>& seeds,
                                                      const std::unordered_set<const void*>& targets,
                                                      bool create_graph, const RuleOverride& rule) {
  LP_ASSERT(seeds.size() == outputs.size(), "backward_walk: ", seeds.size(), " seeds for ", outputs.size(),
            " outputs");
  TapeOrder walk = tape_order(outputs, targets);
  std::vector<std::shared_ptr<TensorImpl>>& order = walk.order;
  std::unordered_map<const void*, bool>& needed = walk.needed;

  EnableGradGuard mode(create_graph);
  std::unordered_map<const void*, Tensor> grads;  // by vertex
  auto accumulate = [&](const void* key, const Tensor& g) {
    auto it = grads.find(key);
    if (it == grads.end() || !it->second.defined()) {
      grads[key] = g;
      return;
    }
    Tensor& acc = it->second;
    // Without create_graph, a sum that only this map holds (no rule returned it to another input, no caller gave
    // it) takes the new term in place instead of a fresh block: same values, one full-size tensor less.
    if (!create_graph && acc.impl_ptr().use_count() == 1 && acc.impl()->storage.use_count() == 1 &&
        acc.shape() == g.shape() && acc.dtype() == g.dtype() && acc.device() == g.device()) {
      LP_ON_DEVICE(acc, cpu::binary(BinaryOp::Add, acc, g, acc), cuda::binary(BinaryOp::Add, acc, g, acc));
    } else {
      acc = add(acc, g);
    }
  };
  for (size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].defined() && outputs[i].requires_grad() && seeds[i].defined())
      accumulate(vertex_of(outputs[i].impl()), seeds[i]);

  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const void* v = vertex_of(it->get());
    Node* node = (*it)->grad_fn.get();
    if (!node || !needed[v]) continue;
    auto git = grads.find(v);
    if (git == grads.end() || !git->second.defined()) continue;
    Tensor gout = git->second;
    if (!targets.count(v)) grads.erase(git);  // free intermediate gradients early
    std::vector<bool> needs(node->inputs.size(), false);
    bool any = false;
    for (size_t k = 0; k < node->inputs.size(); ++k) {
      const Tensor& in = node->inputs[k];
      needs[k] = in.defined() && in.requires_grad() && needed[vertex_of(in.impl())];
      any = any || needs[k];
    }
    if (!any) continue;
    const Tensor out = output_for_rule(*node, *it);
    std::optional<std::vector<Tensor>> over;
    if (rule) over = rule(*node, out, gout, needs);
    std::vector<Tensor> gin = over ? std::move(*over) : node->backward(gout, out, needs);
    LP_ASSERT(gin.size() == node->inputs.size(), node->name, " backward returned ", gin.size(), " grads for ",
              node->inputs.size(), " inputs");
    for (size_t k = 0; k < gin.size(); ++k) {
      if (!needs[k] || !gin[k].defined()) continue;
      LP_ASSERT(gin[k].shape() == node->inputs[k].shape(), node->name, " backward: gradient ",
                shape_str(gin[k].shape()), " for input ", shape_str(node->inputs[k].shape()));
      accumulate(vertex_of(node->inputs[k].impl()), gin[k]);
    }
  }
  return grads;
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool create_graph, bool allow_unused) {
  LP_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), "grad: ", grad_outputs.size(),
           " grad_outputs for ", outputs.size(), " outputs");
  std::unordered_set<const void*> targets;
  for (const Tensor& t : inputs) {
    LP_CHECK(t.defined() && t.requires_grad(), "grad: an input does not require grad (", t.describe(), ")");
    targets.insert(vertex_of(t.impl()));
  }
  std::vector<Tensor> seeds(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    if (!o.defined() || !o.requires_grad()) continue;
    if (grad_outputs.empty() || !grad_outputs[i].defined()) {
      LP_CHECK(o.numel() == 1, "grad: a non-scalar output ", o.describe(), " needs grad_outputs");
      seeds[i] = Tensor::ones(o.ctx(), o.shape(), o.dtype(), o.device());
    } else {
      LP_CHECK(grad_outputs[i].shape() == o.shape(), "grad: grad_output shape ",
               shape_str(grad_outputs[i].shape()), " for output ", shape_str(o.shape()));
      seeds[i] = grad_outputs[i];
    }
  }
  std::unordered_map<const void*, Tensor> grads = backward_walk(outputs, seeds, targets, create_graph);

  std::vector<Tensor> result;
  result.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    auto it = grads.find(vertex_of(t.impl()));
    if (it != grads.end() && it->second.defined()) result.push_back(it->second);
    else if (allow_unused) result.emplace_back();
    else result.push_back(zeros_like(t));
  }
  return result;
}

void backward(const Tensor& loss, const Tensor& grad_output, bool create_graph) {
  LP_CHECK(loss.defined() && loss.requires_grad(), "backward: the loss does not require grad");
  // Collect reachable leaves that require grad.
  std::vector<Tensor> leaves;
  std::unordered_set<const void*> seen;  // by vertex
  std::vector<Tensor> stack{loss};
  while (!stack.empty()) {
    Tensor t = stack.back();
    stack.pop_back();
    if (!seen.insert(vertex_of(t.impl())).second) continue;
    if (t.is_leaf()) {
      if (t.requires_grad()) leaves.push_back(t);
      continue;
    }
    for (const Tensor& in : t.grad_fn()->inputs)
      if (in.defined() && in.requires_grad()) stack.push_back(in);
  }
  if (leaves.empty()) return;
  std::vector<Tensor> gos;
  if (grad_output.defined()) gos.push_back(grad_output);
  std::vector<Tensor> g = grad({loss}, leaves, gos, create_graph, true);
  // Accumulation is part of the graph under create_graph (as in PyTorch), plain arithmetic otherwise.
  EnableGradGuard eg(create_graph);
  // Leaves with a fixed gradient slot (engine/arena.h) get their first gradient copied into it; the copies of
  // one device go in one pass (one launch on a GPU). Under create_graph the gradient keeps its graph instead.
  std::vector<Tensor> src, dst;
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!g[i].defined()) continue;
    Tensor prev = leaves[i].grad();
    const auto& slot_impl = leaves[i].impl()->grad_slot;
    if (slot_impl && !create_graph) {
      Tensor slot(slot_impl);
      if (slot.shape() == g[i].shape() && slot.dtype() == g[i].dtype() && slot.device() == g[i].device()) {
        if (!prev.defined()) {
          src.push_back(g[i]);
          dst.push_back(slot);
          leaves[i].set_grad(slot);
          continue;
        }
        if (prev.same(slot)) {
          slot.copy_(add(slot, g[i]));
          continue;
        }
      }
    }
    leaves[i].set_grad(prev.defined() ? add(prev, g[i]) : g[i]);
  }
  while (!src.empty()) {  // one pass per device
    const Device d = dst.front().device();
    std::vector<Tensor> s1, d1, s2, d2;
    for (size_t i = 0; i < src.size(); ++i) {
      (dst[i].device() == d ? s1 : s2).push_back(src[i]);
      (dst[i].device() == d ? d1 : d2).push_back(dst[i]);
    }
    LP_ON_DEVICE(d1.front(), cpu::copy_many(s1, d1), cuda::copy_many(s1, d1));
    src = std::move(s2);
    dst = std::move(d2);
  }
}

}  // namespace lowpass
