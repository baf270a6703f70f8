// GraphStep (graph_step.h): the fixed-form training step, captured as a CUDA graph on a GPU.
// Test: build/tests/lowpass_tests -tc="*graph step*" (CPU) and -ts=cuda (GPU).
#include "models/train/graph_step.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "models/loss/fourier_prior.h"

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

namespace {
// The tensors of a batch that a fixed-form step reads (models/data/batch.h).
constexpr Tensor Batch::*kStaged[] = {&Batch::x,          &Batch::y,          &Batch::control,
                                      &Batch::task_pos_w, &Batch::task_neg_w, &Batch::prior_w};
}  // namespace

GraphStep::Stage& GraphStep::stage_for(const Batch& hb, const std::string& key) {
  auto it = stages_.find(key);
  if (it != stages_.end()) return it->second;
  if (stages_.size() >= 4)  // shapes come and go (tests, odd data): forget one that has no graph
    for (auto j = stages_.begin(); j != stages_.end(); ++j)
      if (j->first != graph_key_) {
        stages_.erase(j);
        break;
      }
  const Device dev = model_.device();
  const DType dt = model_.dtype();
  Context& ctx = optim_.params().front().second.ctx();
  auto fixed = [&](const Tensor& t) { return t.defined() ? Tensor::zeros(ctx, t.shape(), dt, dev) : Tensor(); };
  Stage st;
  for (auto f : kStaged) st.staged.*f = fixed(hb.*f);
  return stages_.emplace(key, std::move(st)).first->second;
}

GraphStep::Held GraphStep::body(const Batch& staged) {
  optim_.zero_grad();
  Losses l = compute_losses(model_, staged, prior_, /*training=*/true, counts_loss_weight_);
  backward(l.total);
  optim_.flag_nonfinite(l.total);
  optim_.launch_live_step();
  return Held{l.task.detach(), l.prior.detach(), l.total.detach()};
}

GraphStepResult GraphStep::run(const Batch& batch) {
  Batch hb = batch;
  add_loss_weights(hb, model_.type(), model_.dtype());
  std::string key;
  for (auto f : kStaged) key += ((hb.*f).defined() ? shape_str((hb.*f).shape()) : std::string("-")) + ";";
  if (attributions_apart(model_, prior_, /*training=*/true) && hb.size() > 0) {
    // The prior's attributions on a prefix of A rows that holds every scored row (docs/fourier_prior.md): the rows
    // are reordered, scored first, and A is fixed per batch shape (the first batch's count of scored rows rounded up
    // to a multiple of ⌈B/8⌉), so that batches with up to A scored rows share one captured graph. A batch with more
    // takes every row's attributions (its own shape key). The losses are means over rows: the order changes nothing.
    const int64_t B = hb.size();
    const std::vector<int64_t> rows = eligible_rows(prior_status(hb, model_.type()));
    const int64_t P = static_cast<int64_t>(rows.size()), q = (B + 7) / 8;
    int64_t& cap = prefix_rows_[key];
    if (cap == 0) cap = std::min(B, (std::max<int64_t>(P, 1) + q - 1) / q * q);
    const int64_t A = P <= cap ? cap : B;
    if (A == B && cap < B && capture_ && log_ && !warned_prefix_) {  // said once: such batches are not replayed
      warned_prefix_ = true;
      std::fprintf(log_,
                   "lowpass train: a batch of %lld rows with %lld scored by the prior, more than the %lld of the "
                   "first batch of this shape: such batches take every row's attributions and run without the "
                   "CUDA graph (docs/fourier_prior.md)\n",
                   static_cast<long long>(B), static_cast<long long>(P), static_cast<long long>(cap));
    }
    if (A < B) {
      std::vector<int64_t> order = rows;
      for (int64_t b : other_rows(rows, B)) order.push_back(b);
      NoGradGuard ng;
      for (auto f : kStaged)
        if ((hb.*f).defined()) hb.*f = index_select(hb.*f, 0, order);
      std::vector<int> status(static_cast<size_t>(B), 0);
      for (int64_t i = 0; i < P; ++i) status[static_cast<size_t>(i)] = 1;
      hb.status = status;
      hb.attribution_prefix = A;
    }
    key += "attribution rows " + std::to_string(A) + ";";
  }
  Stage& st = stage_for(hb, key);
  {  // the batch into the stage's fixed tensors
    NoGradGuard ng;
    for (auto f : kStaged) {
      Tensor& dst = st.staged.*f;
      const Tensor& src = hb.*f;
      if (dst.defined()) dst.copy_(src.dtype() == dst.dtype() ? src.detach() : cast(src.detach(), dst.dtype()));
    }
  }
  st.staged.attribution_prefix = hb.attribution_prefix;  // part of the key: fixed for the stage
  optim_.prepare_live_step();

  GraphStepResult r;
  Held out;
  if (graph_ && key == graph_key_) {
    graph_->replay();
    out = held_;
    r.replayed = true;
    ++replays_;
  } else if (capture_ && !graph_ && st.eager >= 1) {
    const int dev = model_.device().index;
    try {
      graph_ = std::make_unique<cuda::Graph>(dev);
      graph_->begin();
      held_ = body(st.staged);
      graph_->end();
      graph_->replay();
      graph_key_ = key;
      out = held_;
      r.replayed = true;
      ++captures_, ++replays_;
      if (log_)
        std::fprintf(log_, "lowpass train: CUDA graph captured for batch %s: %lld nodes, %.0f MB private pool\n",
                     shape_str(st.staged.x.shape()).c_str(), static_cast<long long>(graph_->nodes()),
                     static_cast<double>(graph_->pool_bytes()) / 1e6);
    } catch (const Error& e) {
      graph_.reset();  // ends an open capture; nothing captured ran
      held_ = Held{};
      capture_ = false;
      if (log_) std::fprintf(log_, "lowpass train: CUDA graph capture failed, training on eagerly: %s\n", e.what());
      optim_.prepare_live_step();  // the failed capture dropped nothing on the device, but start clean
      out = body(st.staged);
      ++st.eager;
    }
  } else {
    out = body(st.staged);
    ++st.eager;
  }

  // One read-back: the three losses and the skip flag (0, or NaN when something was not finite).
  NoGradGuard ng;
  const Tensor& live = optim_.live_scalars();
  auto f64 = [](const Tensor& t) { return reshape(cast(t, DType::F64), {1}); };
  const std::vector<double> v =
      concat({f64(out.task), f64(out.prior), f64(out.total), slice(live, 0, 2, 1)}, 0).to_vector<double>();
  r.task = v[0], r.prior = v[1], r.total = v[2];
  r.finite = v[3] == 0.0;
  if (r.finite) optim_.commit_live_step();
  return r;
}

}  // namespace lowpass
