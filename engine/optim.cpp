// Adam and SGD: per-parameter state, PyTorch's step-count bias correction computed in double, the
// element-wise update in kernels/cpu/optim.cpp (CUDA twin via LP_ON_DEVICE); named-tensor state I/O.
// Test: build-io/tests/lowpass_tests -ts=optim
#include "engine/optim.h"

#include <cmath>
#include <set>

#include "engine/autograd.h"
#include "engine/ops/dispatch.h"
#include "kernels/cpu/optim.h"

namespace lowpass {

Optimizer::Optimizer(NamedTensors params) : params_(std::move(params)) {
  std::set<std::string> names;
  for (const auto& [n, p] : params_) {
    LP_CHECK(p.defined(), "optimizer: parameter '", n, "' is undefined");
    LP_CHECK(names.insert(n).second, "optimizer: parameter name '", n, "' appears twice");
  }
}

void Optimizer::zero_grad() {
  for (auto& [n, p] : params_) p.zero_grad();
}

Tensor Optimizer::grad_of(size_t i) const {
  const auto& [n, p] = params_[i];
  Tensor g = p.grad();
  if (!g.defined()) return g;
  LP_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(), "optimizer: gradient of '", n,
           "' is ", g.describe(), " but the parameter is ", p.describe());
  return g;
}

namespace {
// Looks up "<param>.<field>", checks its shape, and records the key as used.
Tensor take(const std::map<std::string, Tensor>& st, std::set<std::string>& used, const std::string& key,
            const Shape& shape) {
  auto it = st.find(key);
  if (it == st.end()) return {};
  LP_CHECK(it->second.defined() && it->second.shape() == shape, "optimizer state '", key, "' has shape ",
           it->second.defined() ? shape_str(it->second.shape()) : "undefined", ", expected ", shape_str(shape));
  used.insert(key);
  return it->second;
}
void check_all_used(const std::map<std::string, Tensor>& st, const std::set<std::string>& used, const char* opt) {
  for (const auto& [k, v] : st)
    LP_CHECK(used.count(k), opt, " state: key '", k, "' does not belong to any parameter of this optimizer");
}
Tensor copy_like(const Tensor& src, const Tensor& param) {  // value copy with the parameter's dtype/device
  Tensor t = zeros_like(param);
  Tensor s = src.dtype() == param.dtype() ? src.detach() : src.detach().to(param.dtype());
  t.copy_(s);
  return t;
}
}  // namespace

// ---------------- Adam ----------------
Adam::Adam(NamedTensors params, AdamOptions opt) : Optimizer(std::move(params)), opt_(opt), state_(params_.size()) {
  set_lr(opt.lr);
  LP_CHECK(opt.eps >= 0, "adam: eps must be >= 0, got ", opt.eps);
  LP_CHECK(opt.beta1 >= 0 && opt.beta1 < 1, "adam: beta1 must be in [0, 1), got ", opt.beta1);
  LP_CHECK(opt.beta2 >= 0 && opt.beta2 < 1, "adam: beta2 must be in [0, 1), got ", opt.beta2);
  LP_CHECK(opt.weight_decay >= 0, "adam: weight_decay must be >= 0, got ", opt.weight_decay);
}

void Adam::set_lr(double lr) {
  LP_CHECK(lr >= 0 && std::isfinite(lr), "adam: lr must be a finite number >= 0, got ", lr);
  opt_.lr = lr;
}

void Adam::step() {
  NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = grad_of(i);
    if (!g.defined()) continue;
    Tensor& p = params_[i].second;
    State& s = state_[i];
    if (s.step == 0) {
      s.exp_avg = zeros_like(p);
      s.exp_avg_sq = zeros_like(p);
      if (opt_.amsgrad) s.max_exp_avg_sq = zeros_like(p);
    }
    s.step += 1;
    const double t = static_cast<double>(s.step);
    AdamScalars sc;
    sc.beta1 = opt_.beta1;
    sc.beta2 = opt_.beta2;
    sc.eps = opt_.eps;
    sc.weight_decay = opt_.weight_decay;
    sc.step_size = opt_.lr / (1.0 - std::pow(opt_.beta1, t));  // lr / bias_correction1
    sc.bc2_sqrt = std::pow(1.0 - std::pow(opt_.beta2, t), 0.5);  // bias_correction2 ** 0.5
    sc.amsgrad = opt_.amsgrad;
    sc.maximize = opt_.maximize;
    LP_ON_DEVICE(p, cpu::adam_update(p, g, s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, sc),
                 cuda::adam_update(p, g, s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, sc));
  }
}

NamedTensors Adam::state() const {
  NamedTensors r;
  for (size_t i = 0; i < params_.size(); ++i) {
    const State& s = state_[i];
    if (s.step == 0) continue;
    const std::string& n = params_[i].first;
    Context& ctx = params_[i].second.ctx();
    r.emplace_back(n + ".step", Tensor::full(ctx, {}, static_cast<double>(s.step), DType::F64));
    r.emplace_back(n + ".exp_avg", s.exp_avg);
    r.emplace_back(n + ".exp_avg_sq", s.exp_avg_sq);
    if (opt_.amsgrad) r.emplace_back(n + ".max_exp_avg_sq", s.max_exp_avg_sq);
  }
  return r;
}

void Adam::load_state(const std::map<std::string, Tensor>& st) {
  std::set<std::string> used;
  std::vector<State> fresh(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [n, p] = params_[i];
    Tensor step;
    if (auto it = st.find(n + ".step"); it != st.end()) {
      LP_CHECK(it->second.defined() && it->second.numel() == 1, "optimizer state '", n, ".step' must hold one number");
      step = it->second;
      used.insert(it->first);
    }
    Tensor m = take(st, used, n + ".exp_avg", p.shape());
    Tensor v = take(st, used, n + ".exp_avg_sq", p.shape());
    Tensor mx = take(st, used, n + ".max_exp_avg_sq", p.shape());
    if (!step.defined() && !m.defined() && !v.defined() && !mx.defined()) continue;
    LP_CHECK(step.defined() && m.defined() && v.defined(), "adam state for '", n,
             "' is incomplete: needs step, exp_avg and exp_avg_sq");
    LP_CHECK(mx.defined() == opt_.amsgrad, "adam state for '", n, "': max_exp_avg_sq ",
             opt_.amsgrad ? "missing (amsgrad is on)" : "present but amsgrad is off");
    double sv = step.item();
    LP_CHECK(sv >= 1 && sv == std::floor(sv) && sv < 9e15, "adam state '", n, ".step' = ", sv,
             " is not a positive integer");
    fresh[i].step = static_cast<int64_t>(sv);
    fresh[i].exp_avg = copy_like(m, p);
    fresh[i].exp_avg_sq = copy_like(v, p);
    if (mx.defined()) fresh[i].max_exp_avg_sq = copy_like(mx, p);
  }
  check_all_used(st, used, "adam");
  state_ = std::move(fresh);
}

// ---------------- SGD ----------------
Sgd::Sgd(NamedTensors params, SgdOptions opt) : Optimizer(std::move(params)), opt_(opt), momentum_(params_.size()) {
  set_lr(opt.lr);
  LP_CHECK(opt.momentum >= 0, "sgd: momentum must be >= 0, got ", opt.momentum);
  LP_CHECK(opt.weight_decay >= 0, "sgd: weight_decay must be >= 0, got ", opt.weight_decay);
  LP_CHECK(!opt.nesterov || (opt.momentum > 0 && opt.dampening == 0),
           "sgd: nesterov needs momentum > 0 and dampening = 0");
}

void Sgd::set_lr(double lr) {
  LP_CHECK(lr >= 0 && std::isfinite(lr), "sgd: lr must be a finite number >= 0, got ", lr);
  opt_.lr = lr;
}

void Sgd::step() {
  NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = grad_of(i);
    if (!g.defined()) continue;
    Tensor& p = params_[i].second;
    SgdScalars sc{opt_.lr, opt_.momentum, opt_.dampening, opt_.weight_decay, opt_.nesterov, opt_.maximize, false};
    if (opt_.momentum != 0 && !momentum_[i].defined()) {
      momentum_[i] = zeros_like(p);
      sc.first = true;
    }
    LP_ON_DEVICE(p, cpu::sgd_update(p, g, momentum_[i], sc), cuda::sgd_update(p, g, momentum_[i], sc));
  }
}

NamedTensors Sgd::state() const {
  NamedTensors r;
  for (size_t i = 0; i < params_.size(); ++i)
    if (momentum_[i].defined()) r.emplace_back(params_[i].first + ".momentum_buffer", momentum_[i]);
  return r;
}

void Sgd::load_state(const std::map<std::string, Tensor>& st) {
  std::set<std::string> used;
  std::vector<Tensor> fresh(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor b = take(st, used, params_[i].first + ".momentum_buffer", params_[i].second.shape());
    if (b.defined()) fresh[i] = copy_like(b, params_[i].second);
  }
  check_all_used(st, used, "sgd");
  momentum_ = std::move(fresh);
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& type, NamedTensors params, double lr) {
  if (type == "adam") {
    AdamOptions o;
    o.lr = lr;
    return std::make_unique<Adam>(std::move(params), o);
  }
  if (type == "sgd") {
    SgdOptions o;
    o.lr = lr;
    return std::make_unique<Sgd>(std::move(params), o);
  }
  throw Error(detail::concat("optimizer: unknown type '", type, "' (adam or sgd)"));
}

}  // namespace lowpass
