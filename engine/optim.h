// Optimisers over named parameters with .grad(): Adam and SGD with PyTorch's defaults and update rules
// (torch.optim.Adam / torch.optim.SGD, single-tensor CPU path); state saved/loaded as named tensors.
// Test: build-io/tests/lowpass_tests -ts=optim
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace lowpass {

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
};

// torch.optim.SGD defaults (lr default 1e-3 as in torch >= 2.2).
struct SgdOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

class Optimizer {
 public:
  explicit Optimizer(NamedTensors params);
  virtual ~Optimizer() = default;
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

 protected:
  NamedTensors params_;
  // Checked gradient of parameter i (undefined when it has none).
  Tensor grad_of(size_t i) const;
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

 private:
  struct State {
    int64_t step = 0;
    Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;  // same shape as the parameter
  };
  AdamOptions opt_;
  std::vector<State> state_;
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

 private:
  SgdOptions opt_;
  std::vector<Tensor> momentum_;  // undefined until the first step with momentum
};

// "adam" or "sgd" with the given learning rate and otherwise default options (Error on other names).
std::unique_ptr<Optimizer> make_optimizer(const std::string& type, NamedTensors params, double lr);

}  // namespace lowpass
