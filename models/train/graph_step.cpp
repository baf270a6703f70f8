// GraphStep (graph_step.h): the fixed-form training step, captured as a CUDA graph on a GPU.
// Test: build/tests/lowpass_tests -tc="*graph step*" (CPU) and -ts=cuda (GPU).
#include "models/train/graph_step.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace lowpass {

GraphStep::GraphStep(Model& model, Optimizer& optim, const PriorConfig& prior, double counts_loss_weight,
                     bool capture, std::FILE* log)
    : model_(model), optim_(optim), prior_(prior), counts_loss_weight_(counts_loss_weight), capture_(capture),
      log_(log) {
  const nlohmann::json c = model.config();
  for (const char* k : {"conv_drop_rate", "fc_drop_rate"})
    LP_CHECK(!c.contains(k) || !c[k].is_number() || c[k].get<double>() == 0, "train.cuda_graph: model.", k, " = ",
             c.contains(k) ? c[k].dump() : "", ": dropout draws a new mask every step, which a replayed graph "
             "cannot; set it to 0 or train without train.cuda_graph");
  LP_CHECK(prior.type == "fourier" || prior.type == "none" || prior.weight <= 0, "train.cuda_graph: prior.type \"",
           prior.type, "\" is not supported (the fourier prior or none)");
  LP_CHECK(optim.can_step_live(), "train.cuda_graph: the optimiser needs its parameters in one block (one dtype and "
                                  "device, no tied parameters)");
  LP_CHECK(!capture || model.device().is_cuda(), "train.cuda_graph: capture needs the model on a GPU (train.device "
                                                 "cuda), the model is on the CPU");
}

GraphStep::~GraphStep() = default;

void GraphStep::restage(const Batch& hb) {
  const Device dev = model_.device();
  const DType dt = model_.dtype();
  auto fixed = [&](const Tensor& t) { return t.defined() ? Tensor::zeros(optim_.params().front().second.ctx(), t.shape(), dt, dev) : Tensor(); };
  graph_.reset();  // its pool goes back; the new shapes get a new graph
  staged_ = Batch{};
  staged_.x = fixed(hb.x);
  staged_.y = fixed(hb.y);
  staged_.control = fixed(hb.control);
  staged_.task_pos_w = fixed(hb.task_pos_w);
  staged_.task_neg_w = fixed(hb.task_neg_w);
  staged_.prior_w = fixed(hb.prior_w);
  eager_ = 0;
}

GraphStep::Held GraphStep::body() {
  optim_.zero_grad();
  Losses l = compute_losses(model_, staged_, prior_, /*training=*/true, counts_loss_weight_);
  backward(l.total);
  optim_.flag_nonfinite(l.total);
  optim_.launch_live_step();
  return Held{l.task.detach(), l.prior.detach(), l.total.detach()};
}

GraphStepResult GraphStep::run(const Batch& batch) {
  Batch hb = batch;
  add_loss_weights(hb, model_.type(), model_.dtype());
  std::string key;
  for (const Tensor* t : {&hb.x, &hb.y, &hb.control, &hb.task_pos_w, &hb.prior_w})
    key += (t->defined() ? shape_str(t->shape()) : std::string("-")) + ";";
  if (key != key_) {
    restage(hb);
    key_ = key;
  }
  auto put = [&](Tensor& dst, const Tensor& src) {
    NoGradGuard ng;
    if (!dst.defined()) return;
    Tensor s = src.dtype() == dst.dtype() ? src.detach() : cast(src.detach(), dst.dtype());
    dst.copy_(s);
  };
  put(staged_.x, hb.x);
  put(staged_.y, hb.y);
  put(staged_.control, hb.control);
  put(staged_.task_pos_w, hb.task_pos_w);
  put(staged_.task_neg_w, hb.task_neg_w);
  put(staged_.prior_w, hb.prior_w);
  optim_.prepare_live_step();

  GraphStepResult r;
  if (graph_ && graph_->ready()) {
    graph_->replay();
    r.replayed = true;
    ++replays_;
  } else if (capture_ && eager_ >= 1) {
    const int dev = model_.device().index;
    try {
      graph_ = std::make_unique<cuda::Graph>(dev);
      graph_->begin();
      held_ = body();
      graph_->end();
      graph_->replay();
      r.replayed = true;
      ++captures_, ++replays_;
      if (log_)
        std::fprintf(log_, "lowpass train: CUDA graph captured for batch %s: %lld nodes, %.0f MB private pool\n",
                     shape_str(staged_.x.shape()).c_str(), static_cast<long long>(graph_->nodes()),
                     static_cast<double>(graph_->pool_bytes()) / 1e6);
    } catch (const Error& e) {
      graph_.reset();  // ends an open capture; nothing captured ran
      capture_ = false;
      if (log_) std::fprintf(log_, "lowpass train: CUDA graph capture failed, training on eagerly: %s\n", e.what());
      optim_.prepare_live_step();  // the failed capture dropped nothing on the device, but start clean
      held_ = body();
      ++eager_;
    }
  } else {
    held_ = body();
    ++eager_;
  }

  // One read-back: the three losses and the skip flag (0, or NaN when something was not finite).
  NoGradGuard ng;
  const Tensor& live = optim_.live_scalars();
  auto f64 = [](const Tensor& t) { return reshape(cast(t, DType::F64), {1}); };
  const std::vector<double> v =
      concat({f64(held_.task), f64(held_.prior), f64(held_.total), slice(live, 0, 2, 1)}, 0).to_vector<double>();
  r.task = v[0], r.prior = v[1], r.total = v[2];
  r.finite = v[3] == 0.0;
  if (r.finite) optim_.commit_live_step();
  return r;
}

}  // namespace lowpass
