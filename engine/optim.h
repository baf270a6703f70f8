// Optimisers over named parameters with .grad(): Adam and SGD with PyTorch's defaults and update rules
// (torch.optim.Adam / torch.optim.SGD, single-tensor CPU path); state saved/loaded as named tensors.
// Test: build/tests/lowpass_tests -ts=optim
#pragma once
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/arena.h"
#include "engine/tensor.h"

namespace lowpass {

struct AdamScalars;  // kernels/cpu/optim.h
struct SgdScalars;

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// torch.optim.Adam defaults. weight_decay is L2 added to the gradient (not AdamW's decoupled decay).
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
  // Parameters, gradients and state in one block each (engine/arena.h) when the parameters share a dtype and
  // device: one update pass per step instead of one per tensor. Same numbers either way. Off: the parameters
  // are left where they are.
  bool arena = true;
};

// torch.optim.SGD defaults (lr default 1e-3 as in torch >= 2.2).
struct SgdOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
  bool arena = true;  // as AdamOptions::arena
};

class Optimizer {
 public:
  // With `arena`, the parameters' values move into one block (in place: whoever holds a parameter sees it) and
  // each gets a fixed gradient slot, when they share a dtype and device and none appears twice.
  Optimizer(NamedTensors params, bool arena);
  virtual ~Optimizer();  // takes back the gradient slots it gave (the values stay in their block)
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;
  virtual std::string type() const = 0;  // "adam" | "sgd"
  // One update of every parameter that has a gradient (parameters without one are skipped and their
  // state is untouched, as in PyTorch). Deterministic for any thread count.
  virtual void step() = 0;
  void zero_grad();  // drops the gradients (PyTorch's set_to_none=True)
  virtual double lr() const = 0;
  virtual void set_lr(double lr) = 0;
  // State tensors named "<param>.<field>": Adam fields step (F64 scalar), exp_avg, exp_avg_sq and
  // max_exp_avg_sq (amsgrad); SGD field momentum_buffer. Parameters never stepped have no entries.
  virtual NamedTensors state() const = 0;
  // Replaces the state with `st` (as written by state()); every key must belong to a parameter and
  // have its shape, a parameter's fields must be complete; Error names the offending key.
  virtual void load_state(const std::map<std::string, Tensor>& st) = 0;
  const NamedTensors& params() const { return params_; }
  // Name of the first parameter whose gradient holds a NaN or an infinity, "" when all are finite. One
  // reduction (one value read back) over the gradient block when every gradient is in its slot.
  std::string nonfinite_grad() const;
  // Whether the parameters live in one block (engine/arena.h).
  bool has_arena() const { return layout_.has_value(); }
  // Whether the last step() updated every parameter in one pass over the blocks.
  bool last_step_fused() const { return fused_; }

  // ---- Live steps: the whole-block update in the form a CUDA graph can hold (models/train/graph_step.h) ----
  // The step-dependent scalars live in live_scalars(), three float64 values on the parameters' device that the
  // update reads when it runs, not when it is queued:
  //   prepare_live_step()  host: writes the next step's scalars (one small copy to the device) and skip = 0;
  //   flag_nonfinite(loss) queued: skip becomes NaN when the loss or any gradient holds a NaN or an infinity;
  //   launch_live_step()   queued: the whole-block update; it does nothing when skip ≠ 0 as it runs;
  //   commit_live_step()   host: the step counts advance (after the caller has read skip back as 0).
  // On a finite step the four equal step() bit for bit. Needs an arena and every parameter at the same step;
  // launch_live_step() needs every gradient in its slot (after a backward). Error otherwise.
  bool can_step_live() const;
  void prepare_live_step();
  void flag_nonfinite(const Tensor& loss);
  void launch_live_step();
  void commit_live_step();
  const Tensor& live_scalars() const { return live_; }

 protected:
  Tensor live_;  // F64 {a, b, skip}: Adam {lr/bc1, √bc2, skip}, SGD {lr, first, skip}; made by prepare_live_step
  // The next step's {a, b} (and the per-parameter state a first step needs), queued launch, step-count advance.
  virtual bool uniform_steps() const = 0;
  virtual std::pair<double, double> live_values() = 0;
  virtual void live_launch() = 0;
  virtual void live_commit() = 0;
  NamedTensors params_;
  std::optional<ArenaLayout> layout_;  // set when the parameters were bound to blocks
  Tensor values_, grads_;              // the parameter and gradient blocks
  bool fused_ = false;
  // Checked gradient of parameter i (undefined when it has none).
  Tensor grad_of(size_t i) const;
  // True when every parameter still lives at its place in values_ and holds its gradient in its slot: the
  // whole-block update then equals the per-tensor one.
  bool all_in_blocks() const;
  // A new zeroed state block and its per-parameter views (empty when there is no arena).
  std::vector<Tensor> state_block(Tensor& block) const;
};

class Adam final : public Optimizer {
 public:
  Adam(NamedTensors params, AdamOptions opt = {});
  std::string type() const override { return "adam"; }
  void step() override;
  double lr() const override { return opt_.lr; }
  void set_lr(double lr) override;
  NamedTensors state() const override;
  void load_state(const std::map<std::string, Tensor>& st) override;
  const AdamOptions& options() const { return opt_; }
  int64_t steps_of(size_t i) const { return state_[i].step; }

 protected:
  bool uniform_steps() const override;
  std::pair<double, double> live_values() override;
  void live_launch() override;
  void live_commit() override;

 private:
  struct State {
    int64_t step = 0;
    Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;  // same shape as the parameter
  };
  AdamOptions opt_;
  std::vector<State> state_;
  // With an arena: the state blocks and each parameter's views of them (zero while its step is 0).
  Tensor m_block_, v_block_, mx_block_;
  std::vector<Tensor> m_views_, v_views_, mx_views_;
  // Parameter i's state at its first step: zero tensors, or its views of the blocks (zero while its step is 0:
  // the blocks start zeroed and load_state zeroes the views of parameters it gives no state).
  void start_state(size_t i);
  void update_blocks(const AdamScalars& sc);  // one pass over the value, gradient and state blocks
};

class Sgd final : public Optimizer {
 public:
  Sgd(NamedTensors params, SgdOptions opt = {});
  std::string type() const override { return "sgd"; }
  void step() override;
  double lr() const override { return opt_.lr; }
  void set_lr(double lr) override;
  NamedTensors state() const override;
  void load_state(const std::map<std::string, Tensor>& st) override;
  const SgdOptions& options() const { return opt_; }

 protected:
  bool uniform_steps() const override;
  std::pair<double, double> live_values() override;
  void live_launch() override;
  void live_commit() override;

 private:
  SgdOptions opt_;
  std::vector<Tensor> momentum_;  // undefined until the first step with momentum
  Tensor buf_block_;              // with an arena and momentum: the momentum block and its views
  std::vector<Tensor> buf_views_;
  void update_blocks(const SgdScalars& sc);  // one pass over the value, gradient and momentum blocks
};

// "adam" or "sgd" with the given learning rate and otherwise default options (Error on other names).
std::unique_ptr<Optimizer> make_optimizer(const std::string& type, NamedTensors params, double lr);

}  // namespace lowpass
