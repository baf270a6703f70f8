// Eval-mode evaluation (fixes REFERENCE §8.1: the reference validates in train mode): losses with the
// prior, auROC = P(score_pos > score_neg) + ½ P(tie) by rank sums, grad×input attributions.
// Test: build/tests/lowpass_tests -ts=train
#include "models/train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/error.h"
#include "engine/ops.h"
#include "models/eval/profile_metrics.h"

namespace lowpass {

double auroc(const std::vector<double>& labels, const std::vector<double>& scores) {
  LP_ASSERT(labels.size() == scores.size(), "auroc: sizes differ");
  std::vector<size_t> idx;
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] == 0 || labels[i] == 1) idx.push_back(i);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double npos = 0, nneg = 0, rank_sum = 0;
  for (size_t i = 0; i < idx.size();) {  // average ranks over ties
    size_t j = i;
    while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) ++j;
    double r = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k) {
      if (labels[idx[k]] == 1) rank_sum += r, ++npos;
      else ++nneg;
    }
    i = j;
  }
  if (npos == 0 || nneg == 0) return std::numeric_limits<double>::quiet_NaN();
  return (rank_sum - npos * (npos + 1) / 2) / (npos * nneg);
}

nlohmann::json EvalResult::to_json(const std::string& p) const {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j = {{p + "task_loss", num(task)}, {p + "prior_loss", num(prior)}, {p + "total_loss", num(total)},
                      {p + "examples", examples}};
  if (!auroc_per_task.empty()) {
    j[p + "auroc"] = num(auroc);
    nlohmann::json per = nlohmann::json::array();
    for (double a : auroc_per_task) per.push_back(num(a));
    j[p + "auroc_per_task"] = per;
  }
  for (auto& [k, v] : profile_metrics.items())
    j[p + k] = v.is_number_float() && !std::isfinite(v.get<double>()) ? nlohmann::json(nullptr) : v;
  return j;
}

EvalResult evaluate(Model& model, const ArrayDataset& ds, const PriorConfig& prior, bool revcomp,
                    int64_t batch_size, double counts_loss_weight, Context& ctx, const std::string& what) {
  ArraySamplerOptions so;
  so.batch_size = batch_size;
  so.revcomp = revcomp;
  so.sequential = true;
  so.shuffle = false;
  ArrayBatchSource src(ds, so, what);
  return evaluate_source(model, src, prior, counts_loss_weight, ctx, what + " (" + ds.source + ")");
}

EvalResult evaluate_source(Model& model, BatchSource& src, const PriorConfig& prior, double counts_loss_weight,
                           Context& ctx, const std::string& what, bool full_profile_metrics, uint64_t seed) {
  Rng rng(seed);
  src.start_epoch(0, rng);
  EvalResult r;
  const bool binary = model.type() == "binary";
  const int64_t T = model.tasks();
  std::vector<std::vector<double>> labels(static_cast<size_t>(T)), scores(static_cast<size_t>(T));
  eval::ProfileData pd, uni;  // full profile metrics (and a uniform-profile baseline)
  NoGradGuard ng;  // the attributions inside compute_losses still get their own (first-order) graph
  for (int64_t b = 0; b < src.batches_per_epoch(); ++b) {
    Batch batch = src.next(ctx);
    Losses l = compute_losses(model, batch, prior, /*training=*/false, counts_loss_weight);
    const double n = static_cast<double>(batch.size());
    const std::vector<double> lv = l.scalars();
    const double task = lv[0], pr = lv[1], tot = lv[2];
    LP_CHECK(std::isfinite(task) && std::isfinite(pr) && std::isfinite(tot), what, ": loss is not finite (task ",
             task, ", prior ", pr, ") in evaluation batch ", b);
    r.task += task * n, r.prior += pr * n, r.total += tot * n;
    r.examples += batch.size();
    if (binary) {
      auto lg = l.outputs.logits.to_vector<double>();
      auto y = batch.y.to_vector<double>();
      for (size_t i = 0; i < lg.size(); ++i) {
        labels[i % static_cast<size_t>(T)].push_back(y[i]);
        scores[i % static_cast<size_t>(T)].push_back(lg[i]);
      }
    } else if (full_profile_metrics) {
      Tensor lp = log_softmax(l.outputs.profile_logits, -1);
      auto y = batch.y.to_vector<double>(), p = lp.to_vector<double>(), c = l.outputs.log_counts.to_vector<double>();
      pd.T = batch.y.size(1), pd.S = batch.y.size(2), pd.O = batch.y.size(3), pd.N += batch.size();
      pd.true_counts.insert(pd.true_counts.end(), y.begin(), y.end());
      pd.pred_log_probs.insert(pd.pred_log_probs.end(), p.begin(), p.end());
      pd.pred_log_counts.insert(pd.pred_log_counts.end(), c.begin(), c.end());
    }
  }
  const double n = static_cast<double>(r.examples);
  r.task /= n, r.prior /= n, r.total /= n;
  if (binary) {
    double s = 0;
    int64_t k = 0;
    for (int64_t t = 0; t < T; ++t) {
      double a = auroc(labels[static_cast<size_t>(t)], scores[static_cast<size_t>(t)]);
      r.auroc_per_task.push_back(a);
      if (std::isfinite(a)) s += a, ++k;
    }
    r.auroc = k ? s / static_cast<double>(k) : std::numeric_limits<double>::quiet_NaN();
  } else if (full_profile_metrics && pd.N > 0) {
    eval::ProfileMetricsConfig mc;
    mc.bin_sizes = {1, 10};
    eval::ProfileMetrics m = eval::profile_metrics(pd, mc);
    uni = pd;
    std::fill(uni.pred_log_probs.begin(), uni.pred_log_probs.end(), -std::log(static_cast<double>(pd.O)));
    mc.bin_sizes = {1};
    eval::ProfileMetrics mu = eval::profile_metrics(uni, mc);
    auto mean = [](const std::vector<double>& v) {
      double s = 0;
      for (double x : v) s += x;
      return v.empty() ? 0.0 : s / static_cast<double>(v.size());
    };
    r.profile_metrics = {{"nll", mean(m.nll)}, {"uniform_nll", mean(mu.nll)}, {"jsd", mean(m.jsd)},
                         {"uniform_jsd", mean(mu.jsd)}, {"count_pearson", mean(m.count_pearson)},
                         {"count_spearman", mean(m.count_spearman)}, {"count_mse", mean(m.count_mse)},
                         {"examples", pd.N}};
  }
  return r;
}

Tensor eval_attributions(Model& model, const ArrayDataset& ds, const std::vector<int64_t>& idx, Context& ctx,
                         int64_t batch_size) {
  LP_CHECK(!idx.empty(), ds.source, ": no examples to attribute");
  std::vector<double> all;
  for (size_t s = 0; s < idx.size(); s += static_cast<size_t>(batch_size)) {
    std::vector<int64_t> part(idx.begin() + static_cast<int64_t>(s),
                              idx.begin() + static_cast<int64_t>(std::min(idx.size(), s + static_cast<size_t>(batch_size))));
    Batch b = make_batch(ctx, ds, part, false);
    Tensor x = b.x.dtype() == model.dtype() ? b.x.detach() : b.x.to(model.dtype()).detach();
    x = on_device(x, model.device());
    const Tensor control = on_device(b.control, model.device());
    x.set_requires_grad(true);
    ModelOutput out = model.forward(x, control, /*training=*/false);
    Tensor a = input_attributions(out, x, /*create_graph=*/false);
    auto v = a.to_vector<double>();
    all.insert(all.end(), v.begin(), v.end());
  }
  return Tensor::from_vector(ctx, {static_cast<int64_t>(idx.size()), 4, ds.length}, all);
}

}  // namespace lowpass
