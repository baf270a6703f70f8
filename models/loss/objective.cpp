// The training objective (REFERENCE §1.4): L = L_task + λ·L_prior (+ λ₂ Σθ²), the prior taken on
// grad × input attributions computed with create_graph so that its gradient reaches the weights.
// Test: build/tests/lowpass_tests -ts=loss and -ts=parity
#include "models/loss/objective.h"

#include "models/loss/baseline_priors.h"
#include "models/loss/binary_loss.h"
#include "models/loss/fourier_prior.h"
#include "models/loss/profile_loss.h"

namespace lowpass {

Tensor input_attributions(const ModelOutput& out, const Tensor& x, bool create_graph) {
  LP_CHECK(x.requires_grad() && x.is_leaf(), "attributions: the input must be a leaf that requires grad");
  Tensor target, seed;
  if (out.profile_logits.defined()) {
    target = out.profile_logits;  // (B, T, S, O)
    NoGradGuard ng;
    Tensor l = target.detach();
    seed = sub(l, mean(l, {3}, true));  // = log p − mean_O log p, held constant (§1.1, §8.4)
  } else {
    target = out.logits;  // (B, T)
    seed = Tensor::ones(target.ctx(), target.shape(), target.dtype(), target.device());
  }
  auto g = grad({target}, {x}, {seed}, create_graph, false);
  return mul(g[0], x);  // (B, 4, L)
}

std::vector<int> prior_status(const Batch& batch, const std::string& model_type) {
  const int64_t B = batch.size();
  if (!batch.status.empty()) {
    LP_CHECK(static_cast<int64_t>(batch.status.size()) == B, "batch: ", batch.status.size(),
             " status values for ", B, " examples");
    return batch.status;
  }
  std::vector<int> st(static_cast<size_t>(B), 1);
  if (model_type == "binary" && batch.y.defined()) {
    auto y = batch.y.to_vector<double>();
    const int64_t T = B > 0 ? batch.y.numel() / B : 0;
    for (int64_t b = 0; b < B; ++b) {
      int any = 0;
      for (int64_t t = 0; t < T; ++t) any |= y[static_cast<size_t>(b * T + t)] == 1.0;
      st[static_cast<size_t>(b)] = any;
    }
  }
  return st;
}

void add_loss_weights(Batch& batch, const std::string& model_type, DType dt) {
  LP_CHECK(batch.x.defined(), "batch: no input");
  if (model_type == "binary") {
    LP_CHECK(batch.y.defined(), "batch: no labels");
    auto [pw, nw] = binary_loss_weights(batch.y, dt);
    batch.task_pos_w = pw, batch.task_neg_w = nw;
  }
  const std::vector<int> st = prior_status(batch, model_type);
  const std::vector<int64_t> rows = eligible_rows(st);
  std::vector<double> w(st.size(), 0.0);
  for (int64_t r : rows) w[static_cast<size_t>(r)] = 1.0 / static_cast<double>(rows.size());
  batch.prior_w = cast(Tensor::from_vector(batch.x.ctx(), {static_cast<int64_t>(w.size())}, w), dt);
}

std::vector<double> Losses::scalars() const {
  NoGradGuard ng;
  const Tensor parts[] = {task, prior, total};
  std::vector<Tensor> v;
  for (const Tensor& t : parts) {
    LP_CHECK(t.defined() && t.numel() == 1, "losses: a loss is ", t.defined() ? t.describe() : "undefined",
             ", expected one number");
    v.push_back(reshape(t.detach().to(task.dtype()), {1}));
  }
  return concat(v, 0).to_vector<double>();
}

namespace {
// The attributions come from a separate running-statistics forward (attribution_mode "eval" while training a
// model with batch norm); otherwise from the loss's own forward.
bool eval_attributions(const Model& model, const PriorConfig& prior, bool training) {
  return prior.attribution_mode == "eval" && training && model.has_batch_norm();
}
}  // namespace

bool attributions_apart(const Model& model, const PriorConfig& prior, bool training) {
  const bool use_prior = prior.type != "none" && prior.weight > 0;
  return use_prior && prior.scored_rows_only &&
         (!(training && model.has_batch_norm()) || eval_attributions(model, prior, training));
}

Losses compute_losses(Model& model, const Batch& batch, const PriorConfig& prior, bool training,
                      double counts_loss_weight) {
  LP_CHECK(prior.type == "fourier" || prior.type == "smoothness" || prior.type == "sparsity" || prior.type == "none",
           "prior.type: expected fourier, smoothness, sparsity or none, got \"", prior.type, "\"");
  LP_CHECK(prior.attribution_mode == "train" || prior.attribution_mode == "eval",
           "prior.attribution_mode: expected \"train\" or \"eval\", got \"", prior.attribution_mode, "\"");
  LP_CHECK(batch.x.defined(), "batch: no input");
  const bool use_prior = prior.type != "none" && prior.weight > 0;
  const bool backprop = grad_enabled();  // the caller will differentiate the total
  Losses r;
  Tensor x = batch.x.detach();
  if (x.dtype() != model.dtype()) x = x.to(model.dtype());
  const Device dev = model.device();  // batches are assembled on the host; the model may live on a GPU
  x = on_device(x, dev);
  const Tensor control = on_device(batch.control, dev);
  const int64_t B = x.size(0);
  // The rows whose attributions the prior needs, when they are a strict subset and can be taken on their own
  // (attributions_apart): an ordinary batch's scored rows, or a CUDA-graph step's prefix of A rows (the batch was
  // ordered so, Batch::attribution_prefix; slices, so that no index depends on the labels).
  const bool eval_attr = eval_attributions(model, prior, training);
  std::vector<int64_t> scored;
  bool subset = false, prefix = false;
  if (attributions_apart(model, prior, training)) {
    if (!batch.prior_w.defined()) {
      scored = eligible_rows(prior_status(batch, model.type()));
      subset = static_cast<int64_t>(scored.size()) < B;
    } else if (batch.attribution_prefix >= 0 && batch.attribution_prefix < B) {
      for (int64_t b = 0; b < batch.attribution_prefix; ++b) scored.push_back(b);
      subset = prefix = true;
    }
  }
  if (use_prior && subset) {
    const std::vector<int64_t> others = other_rows(scored, B);
    const int64_t A = static_cast<int64_t>(scored.size());
    auto rows_of = [&](const Tensor& t, bool first) {
      if (!t.defined()) return Tensor();
      if (prefix) return first ? slice(t, 0, 0, A) : slice(t, 0, A, B - A);
      return index_select(t, 0, first ? scored : others);
    };
    r.attribution_rows = scored;
    if (!scored.empty()) {
      EnableGradGuard eg(true);  // attributions need a graph even when the caller is in no-grad mode
      Tensor xs = rows_of(x, true).detach();
      xs.set_requires_grad(true);
      ModelOutput os = model.forward(xs, rows_of(control, true), eval_attr ? false : training);
      r.attributions = input_attributions(os, xs, backprop);
      if (!eval_attr) {
        // The other rows' forward (a graph only when the caller differentiates), then the outputs in batch order:
        // [scored, others], permuted back unless the batch came ordered.
        ModelOutput ou;
        {
          EnableGradGuard og(backprop);
          ou = model.forward(rows_of(x, false), rows_of(control, false), training);
        }
        std::vector<int64_t> back;  // batch row -> its place in [scored, others]; a prefix batch needs none
        if (!prefix) {
          back.resize(static_cast<size_t>(B));
          for (size_t i = 0; i < scored.size(); ++i) back[static_cast<size_t>(scored[i])] = static_cast<int64_t>(i);
          for (size_t i = 0; i < others.size(); ++i)
            back[static_cast<size_t>(others[i])] = static_cast<int64_t>(scored.size() + i);
        }
        auto merge = [&](const Tensor& a, const Tensor& b) {
          if (!a.defined()) return Tensor();
          Tensor both = concat({a, b}, 0);
          return prefix ? both : index_select(both, 0, back);
        };
        r.outputs.logits = merge(os.logits, ou.logits);
        r.outputs.profile_logits = merge(os.profile_logits, ou.profile_logits);
        r.outputs.log_counts = merge(os.log_counts, ou.log_counts);
      }
    }
    if (eval_attr || scored.empty()) r.outputs = model.forward(x, control, training);
  } else if (use_prior) {
    EnableGradGuard eg(true);  // attributions need a graph even when the caller is in no-grad mode
    x.set_requires_grad(true);
    if (eval_attr) {
      ModelOutput ev = model.forward(x, control, false);
      r.attributions = input_attributions(ev, x, backprop);
      r.outputs = model.forward(x, control, true);
    } else {
      r.outputs = model.forward(x, control, training);
      r.attributions = input_attributions(r.outputs, x, backprop);
    }
  } else {
    r.outputs = model.forward(x, control, training);
  }
  auto weights = [&](const Tensor& w) {  // per-example loss weights (Batch) in the model's dtype, on its device
    return on_device(w.dtype() == model.dtype() ? w : cast(w, model.dtype()), dev);
  };
  if (model.type() == "binary" && batch.task_pos_w.defined()) {
    r.task = binary_task_loss_weighted(r.outputs.logits, weights(batch.task_pos_w), weights(batch.task_neg_w));
  } else if (model.type() == "binary") {
    r.task = binary_task_loss(r.outputs.logits, batch.y);
  } else {
    auto pl = profile_task_loss(r.outputs.profile_logits, r.outputs.log_counts, batch.y, counts_loss_weight);
    r.task = pl.total;
    r.task_profile = pl.profile;
    r.task_counts = pl.counts;
  }
  if (use_prior && batch.prior_w.defined()) {
    LP_CHECK(prior.type == "fourier", "prior.type \"", prior.type,
             "\": per-example prior weights (CUDA-graph steps) are implemented for the fourier prior only");
    if (prefix && scored.empty()) {
      r.prior = Tensor::zeros(r.task.ctx(), {}, r.task.dtype(), r.task.device());
    } else {
      const Tensor w = weights(batch.prior_w);
      r.prior = fourier_prior_loss_weighted(r.attributions, prefix ? slice(w, 0, 0, static_cast<int64_t>(scored.size())) : w,
                                            prior.freq_limit, prior.softness, prior.smooth_sigma);
    }
    r.total = add(r.task, mul_scalar(r.prior, prior.weight));
  } else if (use_prior && subset && scored.empty()) {
    r.prior = Tensor::zeros(r.task.ctx(), {}, r.task.dtype(), r.task.device());  // no row scored: 0 (§1.2 step 3)
    r.total = add(r.task, mul_scalar(r.prior, prior.weight));
  } else if (use_prior) {
    // The attributions' rows are all scored (a subset computed on its own) or the batch's rows with their status.
    auto status = subset ? std::vector<int>(scored.size(), 1) : prior_status(batch, model.type());
    if (prior.type == "fourier") r.prior = fourier_prior_loss(r.attributions, status, prior.freq_limit, prior.softness, prior.smooth_sigma);
    else if (prior.type == "smoothness") r.prior = smoothness_prior_loss(r.attributions, status);
    else r.prior = sparsity_prior_loss(r.attributions, status);
    r.total = add(r.task, mul_scalar(r.prior, prior.weight));
  } else {
    r.prior = Tensor::zeros(r.task.ctx(), {}, r.task.dtype(), r.task.device());
    r.total = r.task;
  }
  if (prior.l2_weight > 0) {
    std::vector<Tensor> ps;
    for (auto& [k, p] : model.parameters()) ps.push_back(p);
    r.total = add(r.total, mul_scalar(l2_penalty(ps), prior.l2_weight));
  }
  return r;
}

}  // namespace lowpass
