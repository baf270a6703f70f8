// Reverse-mode autodiff with a higher-order tape. Each op records a Node whose backward is written
// with the engine's own (differentiable) ops, so grad(..., create_graph=true) gives gradients of
// gradients. Test: tests/test_autograd.cpp.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/tensor.h"

namespace lowpass {

// Backward rule: given the gradient of the op's output, the output itself (for rules that reuse
// it, e.g. exp), and which inputs need a gradient, return one gradient per input (undefined
// Tensor where not needed or identically zero). Rules must build their results with ops from
// engine/ops.h so that they are recorded when create_graph is on.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& gout, const Tensor& out,
                                                     const std::vector<bool>& needs)>;

// One recorded op. Its edges hold no values: an input that is itself an op output is kept as a storage-less alias
// sharing that output's grad_fn (vertex_of() is the same for both), an input that needs no gradient is dropped,
// and only leaves that require grad (parameters, the input of an attribution) are kept as they are. A value is
// kept alive only by the backward rules that capture it, as PyTorch keeps only its saved tensors, so an
// intermediate nobody saved is freed as soon as the forward pass lets go of it. (Under KeepGraphValues, the
// inputs are kept whole, for tape walkers that read them.)
struct Node {
  std::string name;
  std::vector<Tensor> inputs;             // edges: aliases, leaves, or undefined (no gradient needed)
  std::weak_ptr<TensorImpl> output;       // weak: the output owns the node
  std::shared_ptr<TensorImpl> output_values;  // the output detached (values, no graph), for rules that read it
  BackwardFn backward;
};

// The graph vertex a tensor stands for: the node that made it (shared by an op output and its aliases in other
// nodes' edges), or the tensor itself for a leaf. Tape walkers key their maps by it.
inline const void* vertex_of(const TensorImpl* t) {
  return t->grad_fn ? static_cast<const void*>(t->grad_fn.get()) : static_cast<const void*>(t);
}

// While alive (thread-local), record() keeps every input of a node whole, values included, as tape walkers with
// their own rules need them (DeepLIFT reads a ReLU's input and a max-pool's output; models/attr/deeplift.cpp).
class KeepGraphValues {
 public:
  KeepGraphValues();
  ~KeepGraphValues();
 private:
  bool prev_;
};

// Grad mode (thread-local): when off, ops record nothing.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
 private:
  bool prev_;
};
class EnableGradGuard {
 public:
  explicit EnableGradGuard(bool on);
  ~EnableGradGuard();
 private:
  bool prev_;
};

// Called by every op after computing `out`: records a node if grad mode is on and any input
// requires grad. Returns out (now with grad_fn) for chaining. A rule that reads its `out` argument must say so
// with uses_output (the node then keeps the output's values; other rules get a tensor without values).
Tensor record(const char* name, Tensor out, std::vector<Tensor> inputs, BackwardFn backward,
              bool uses_output = false);
// True when an op with these inputs would be recorded.
bool needs_record(std::initializer_list<const Tensor*> inputs);

// Like torch.autograd.grad: d(sum_i <outputs_i, grad_outputs_i>)/d(inputs). grad_outputs may be
// empty for scalar outputs (seed 1). Inputs that do not reach the outputs give zeros (or an
// undefined Tensor when allow_unused). With create_graph the result is differentiable.
// The walk grad() makes: every tensor that requires grad and is reachable from `outputs`, in post-order
// (a tensor after the tensors it was made from), with `needed` = it is one of `targets` or reaches one.
// For tape walkers with their own rules (DeepLIFT's rescale rule, models/attr/deeplift.cpp).
struct TapeOrder {
  std::vector<std::shared_ptr<TensorImpl>> order;  // one tensor per vertex (an op output may be an alias of it)
  std::unordered_map<const void*, bool> needed;    // by vertex_of()
};
TapeOrder tape_order(const std::vector<Tensor>& outputs, const std::unordered_set<const void*>& targets);

// The backward walk behind grad(): seeds[i] accumulates at outputs[i]'s vertex, then every needed node's rule runs
// in reverse tape order (grad mode = create_graph), its input gradients summed per vertex (in place when no graph
// is built and nothing else holds the sum). `rule`, when set, may replace a node's rule: it gets the node, the node's
// output, the incoming gradient and which inputs need a gradient, and returns their gradients, or std::nullopt for
// the node's own rule. Returns the gradients by vertex_of(): the targets' entries (intermediate ones are freed as the
// walk passes them). DeepLIFT's rescale rules (models/attr/deeplift.cpp) run through it.
using RuleOverride = std::function<std::optional<std::vector<Tensor>>(Node& node, const Tensor& out, const Tensor& g,
                                                                      const std::vector<bool>& needs)>;
std::unordered_map<const void*, Tensor> backward_walk(const std::vector<Tensor>& outputs,
                                                      const std::vector<Tensor>& seeds,
                                                      const std::unordered_set<const void*>& targets,
                                                      bool create_graph, const RuleOverride& rule = {});

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool create_graph = false,
                         bool allow_unused = false);

// Accumulate d(loss)/d(leaf) into leaf.grad() for every reachable leaf with requires_grad. With create_graph the
// gradients keep their graph, which references the leaves: a reference cycle until zero_grad() (as in PyTorch).
void backward(const Tensor& loss, const Tensor& grad_output = {}, bool create_graph = false);

}  // namespace lowpass
