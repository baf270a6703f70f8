// Adam and SGD: per-parameter state, PyTorch's step-count bias correction computed in double, the
// element-wise update in kernels/cpu/optim.cpp (CUDA twin via LP_ON_DEVICE); named-tensor state I/O.
// Test: build/tests/lowpass_tests -ts=optim
#include "engine/optim.h"

#include <cmath>
#include <set>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "kernels/cpu/optim.h"

namespace lowpass {

Optimizer::Optimizer(NamedTensors params, bool arena) : params_(std::move(params)) {
  std::set<std::string> names;
  std::set<const TensorImpl*> impls;
  bool distinct = true;
  for (const auto& [n, p] : params_) {
    LP_CHECK(p.defined(), "optimizer: parameter '", n, "' is undefined");
    LP_CHECK(names.insert(n).second, "optimizer: parameter name '", n, "' appears twice");
    distinct = impls.insert(p.impl()).second && distinct;  // a tied parameter cannot live in two places
  }
  if (!arena || !distinct) return;
  std::vector<Tensor> ps;
  for (const auto& np : params_) ps.push_back(np.second);
  layout_ = ArenaLayout::of(ps);
  if (!layout_) return;
  values_ = bind_values(ps, *layout_);
  grads_ = bind_grad_slots(ps, *layout_);
}

Optimizer::~Optimizer() {
  if (!layout_) return;
  for (size_t i = 0; i < params_.size(); ++i) {
    TensorImpl* p = params_[i].second.impl();
    if (p->grad_slot && layout_->holds(grads_, i, Tensor(p->grad_slot))) p->grad_slot.reset();
  }
}

bool Optimizer::all_in_blocks() const {
  if (!layout_) return false;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    if (!layout_->holds(values_, i, p) || !layout_->holds(grads_, i, p.grad())) return false;
  }
  return true;
}

std::vector<Tensor> Optimizer::state_block(Tensor& block) const {
  std::vector<Tensor> views;
  if (!layout_) return views;
  block = layout_->alloc(values_.ctx());
  for (size_t i = 0; i < params_.size(); ++i) views.push_back(layout_->view(block, i));
  return views;
}

namespace {
// Σ x·0: 0 when every element of x is finite, NaN otherwise (one sum, no overflow).
Tensor nonfinite_probe(const Tensor& x) { return sum_all(mul(x, zeros_like(x))); }
}  // namespace

std::string Optimizer::nonfinite_grad() const {
  NoGradGuard ng;
  auto finite = [](const Tensor& g) { return std::isfinite(nonfinite_probe(g).item()); };
  if (all_in_blocks() && finite(grads_)) return "";  // the gaps between slots are zeros
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].second.grad();
    if (g.defined() && !finite(g)) return params_[i].first;
  }
  return "";
}

bool Optimizer::can_step_live() const {
  if (!layout_) return false;
  for (size_t i = 0; i < params_.size(); ++i)
    if (!layout_->holds(values_, i, params_[i].second)) return false;
  return uniform_steps();
}

void Optimizer::prepare_live_step() {
  NoGradGuard ng;
  LP_CHECK(can_step_live(), "optimizer: a live (graph-capturable) step needs the parameters in one block "
                            "(one dtype and device, none tied) and all at the same step");
  if (!live_.defined()) live_ = Tensor::zeros(values_.ctx(), {3}, DType::F64, values_.device());
  const auto [a, b] = live_values();
  Tensor host = Tensor::from_vector(values_.ctx(), {3}, std::vector<double>{a, b, 0.0});
  live_.copy_(host);
}

void Optimizer::flag_nonfinite(const Tensor& loss) {
  NoGradGuard ng;
  LP_CHECK(live_.defined(), "optimizer: flag_nonfinite before prepare_live_step");
  LP_CHECK(loss.defined() && loss.numel() == 1, "optimizer: flag_nonfinite needs the scalar loss");
  // 0 when the loss and every gradient are finite, NaN otherwise (the gaps between the slots are zeros).
  Tensor s = add(cast(nonfinite_probe(grads_), DType::F64),
                 cast(nonfinite_probe(reshape(loss.detach(), {})), DType::F64));
  auto impl = std::make_shared<TensorImpl>(*live_.impl());  // a view of the skip slot
  impl->offset += 2;
  impl->shape = {};
  impl->grad.reset();
  impl->grad_fn.reset();
  impl->grad_slot.reset();
  Tensor(impl).copy_(s);
}

void Optimizer::launch_live_step() {
  NoGradGuard ng;
  LP_CHECK(live_.defined() && all_in_blocks() && uniform_steps(),
           "optimizer: launch_live_step needs prepare_live_step and every gradient in its slot");
  live_launch();
  fused_ = true;
}

void Optimizer::commit_live_step() { live_commit(); }

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
Adam::Adam(NamedTensors params, AdamOptions opt)
    : Optimizer(std::move(params), opt.arena), opt_(opt), state_(params_.size()) {
  set_lr(opt.lr);
  LP_CHECK(opt.eps >= 0, "adam: eps must be >= 0, got ", opt.eps);
  LP_CHECK(opt.beta1 >= 0 && opt.beta1 < 1, "adam: beta1 must be in [0, 1), got ", opt.beta1);
  LP_CHECK(opt.beta2 >= 0 && opt.beta2 < 1, "adam: beta2 must be in [0, 1), got ", opt.beta2);
  LP_CHECK(opt.weight_decay >= 0, "adam: weight_decay must be >= 0, got ", opt.weight_decay);
  m_views_ = state_block(m_block_);
  v_views_ = state_block(v_block_);
  if (opt.amsgrad) mx_views_ = state_block(mx_block_);
}

void Adam::set_lr(double lr) {
  LP_CHECK(lr >= 0 && std::isfinite(lr), "adam: lr must be a finite number >= 0, got ", lr);
  opt_.lr = lr;
}

namespace {
AdamScalars adam_scalars(const AdamOptions& o, int64_t step) {
  const double t = static_cast<double>(step);
  AdamScalars sc;
  sc.beta1 = o.beta1;
  sc.beta2 = o.beta2;
  sc.eps = o.eps;
  sc.weight_decay = o.weight_decay;
  sc.step_size = o.lr / (1.0 - std::pow(o.beta1, t));  // lr / bias_correction1
  sc.bc2_sqrt = std::pow(1.0 - std::pow(o.beta2, t), 0.5);  // bias_correction2 ** 0.5
  sc.amsgrad = o.amsgrad;
  sc.maximize = o.maximize;
  return sc;
}
}  // namespace

void Adam::start_state(size_t i) {
  State& s = state_[i];
  const Tensor& p = params_[i].second;
  s.exp_avg = layout_ ? m_views_[i] : zeros_like(p);
  s.exp_avg_sq = layout_ ? v_views_[i] : zeros_like(p);
  if (opt_.amsgrad) s.max_exp_avg_sq = layout_ ? mx_views_[i] : zeros_like(p);
}

void Adam::step() {
  NoGradGuard ng;
  fused_ = false;
  // Whole blocks in one pass when every parameter has its gradient in its slot and all are at the same step
  // (always so in training); the state views of a parameter at step 0 are zero, as zeros_like would give.
  if (all_in_blocks()) {
    if (uniform_steps()) {
      for (size_t i = 0; i < params_.size(); ++i) {
        if (state_[i].step == 0) start_state(i);
        state_[i].step += 1;
      }
      update_blocks(adam_scalars(opt_, state_.front().step));
      fused_ = true;
      return;
    }
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = grad_of(i);
    if (!g.defined()) continue;
    Tensor& p = params_[i].second;
    State& s = state_[i];
    if (s.step == 0) start_state(i);
    s.step += 1;
    const AdamScalars sc = adam_scalars(opt_, s.step);
    LP_ON_DEVICE(p, cpu::adam_update(p, g, s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, sc),
                 cuda::adam_update(p, g, s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, sc));
  }
}

bool Adam::uniform_steps() const {
  for (const State& s : state_)
    if (s.step != state_.front().step) return false;
  return true;
}

std::pair<double, double> Adam::live_values() {
  for (size_t i = 0; i < params_.size(); ++i)
    if (state_[i].step == 0) start_state(i);
  const AdamScalars sc = adam_scalars(opt_, state_.front().step + 1);
  return {sc.step_size, sc.bc2_sqrt};
}

void Adam::update_blocks(const AdamScalars& sc) {
  LP_ON_DEVICE(values_, cpu::adam_update(values_, grads_, m_block_, v_block_, mx_block_, sc),
               cuda::adam_update(values_, grads_, m_block_, v_block_, mx_block_, sc));
}

void Adam::live_launch() {
  AdamScalars sc = adam_scalars(opt_, 1);  // the step-independent fields; the rest come from live_
  sc.live = live_.data<double>();
  update_blocks(sc);
}

void Adam::live_commit() {
  for (State& s : state_) s.step += 1;
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
  if (layout_) {  // into the blocks; a parameter without state gets zero views (its step is 0)
    for (size_t i = 0; i < params_.size(); ++i) {
      State& f = fresh[i];
      auto place = [](Tensor& val, Tensor& view) {
        if (!val.defined()) return view.fill_(0);
        view.copy_(val);
        val = view;
      };
      place(f.exp_avg, m_views_[i]);
      place(f.exp_avg_sq, v_views_[i]);
      if (opt_.amsgrad) place(f.max_exp_avg_sq, mx_views_[i]);
    }
  }
  state_ = std::move(fresh);
}

// ---------------- SGD ----------------
Sgd::Sgd(NamedTensors params, SgdOptions opt)
    : Optimizer(std::move(params), opt.arena), opt_(opt), momentum_(params_.size()) {
  if (opt.momentum != 0) buf_views_ = state_block(buf_block_);
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

namespace {
SgdScalars sgd_scalars(const SgdOptions& o) {
  return SgdScalars{o.lr, o.momentum, o.dampening, o.weight_decay, o.nesterov, o.maximize, false};
}
}  // namespace

void Sgd::update_blocks(const SgdScalars& sc) {
  LP_ON_DEVICE(values_, cpu::sgd_update(values_, grads_, buf_block_, sc),
               cuda::sgd_update(values_, grads_, buf_block_, sc));
}

void Sgd::step() {
  NoGradGuard ng;
  fused_ = false;
  const bool mom = opt_.momentum != 0;
  if (all_in_blocks()) {  // one pass when every buffer is at the same stage (all new or all started)
    if (uniform_steps()) {
      SgdScalars sc = sgd_scalars(opt_);
      if (mom && !momentum_.front().defined()) {
        sc.first = true;
        for (size_t i = 0; i < params_.size(); ++i) momentum_[i] = buf_views_[i];
      }
      update_blocks(sc);
      fused_ = true;
      return;
    }
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = grad_of(i);
    if (!g.defined()) continue;
    Tensor& p = params_[i].second;
    SgdScalars sc = sgd_scalars(opt_);
    if (mom && !momentum_[i].defined()) {
      momentum_[i] = layout_ ? buf_views_[i] : zeros_like(p);
      sc.first = true;
    }
    LP_ON_DEVICE(p, cpu::sgd_update(p, g, momentum_[i], sc), cuda::sgd_update(p, g, momentum_[i], sc));
  }
}

bool Sgd::uniform_steps() const {
  for (const Tensor& b : momentum_)
    if (b.defined() != momentum_.front().defined()) return false;
  return true;
}

std::pair<double, double> Sgd::live_values() {
  const bool first = opt_.momentum != 0 && !momentum_.front().defined();
  return {opt_.lr, first ? 1.0 : 0.0};
}

void Sgd::live_launch() {
  SgdScalars sc = sgd_scalars(opt_);
  sc.live = live_.data<double>();
  update_blocks(sc);
}

void Sgd::live_commit() {
  if (opt_.momentum != 0 && !momentum_.front().defined())
    for (size_t i = 0; i < params_.size(); ++i) momentum_[i] = buf_views_[i];
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
  if (layout_ && !buf_views_.empty())
    for (size_t i = 0; i < params_.size(); ++i)
      if (fresh[i].defined()) buf_views_[i].copy_(fresh[i]), fresh[i] = buf_views_[i];
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
