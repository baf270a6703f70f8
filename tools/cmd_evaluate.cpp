// `lowpass evaluate --npz X.npz (--predictions P.npz | --model DIR) [--attr A.npz --ohe O.npz]
//   [--attr-sets a.npz,b.npz,… [--attr-sets-b …]] --out metrics.json`: one JSON document with the
// predictive metrics (REFERENCE §4.2), attribution entropy (§4.5b) and seed consistency
// (continuous Jaccard, §4.3) with one-sided Wilcoxon tests between two sets of models.
// Test: build-attr/tests/lowpass_tests -ts=eval (library parts); docs/evaluation.md.
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/npz.h"
#include "models/attr/model_dir.h"
#include "models/eval/attr_metrics.h"
#include "models/eval/binary_metrics.h"
#include "models/eval/profile_metrics.h"
#include "models/eval/stats.h"
#include "tools/commands.h"

namespace lowpass::tools {

namespace {
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> r;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) r.push_back(item);
  return r;
}
std::vector<double> all_values(Context& ctx, const npy::Array& a, const std::string& what) {
  return attr::array_rows(ctx, a, 0, a.shape[0], DType::F64, what).to_vector<double>();
}
nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
nlohmann::json mean_sem(const std::vector<double>& v) {
  double m = 0, n = 0;
  for (double x : v)
    if (std::isfinite(x)) { m += x; n += 1; }
  m = n ? m / n : NAN;
  double s = 0;
  for (double x : v)
    if (std::isfinite(x)) s += (x - m) * (x - m);
  double sem = n > 1 ? std::sqrt(s / (n - 1) / n) : NAN;
  return {{"mean", num(m)}, {"sem", num(sem)}, {"n", static_cast<int64_t>(n)}};
}
// Tracks (N, 4, L) of an attribution npz (first array), float64.
std::vector<std::vector<double>> load_tracks(Context& ctx, const std::string& path, int64_t& L) {
  auto arrays = npy::load_npz(path);
  LP_CHECK(!arrays.empty(), path, ": empty npz");
  const npy::Array& a = arrays.count("arr_0") ? arrays.at("arr_0") : arrays.begin()->second;
  LP_CHECK(a.shape.size() == 3 && a.shape[1] == 4, path, ": expected (N, 4, L), got ", shape_str(a.shape));
  L = a.shape[2];
  auto v = all_values(ctx, a, path);
  std::vector<std::vector<double>> t(a.shape[0]);
  for (int64_t i = 0; i < a.shape[0]; ++i) t[i].assign(v.begin() + i * 4 * L, v.begin() + (i + 1) * 4 * L);
  return t;
}
std::vector<double> consistency(Context& ctx, const std::vector<std::string>& files, int64_t& L) {
  LP_CHECK(files.size() >= 2, "--attr-sets: need at least two attribution files, got ", files.size());
  std::vector<std::vector<std::vector<double>>> sets;
  for (const auto& f : files) sets.push_back(load_tracks(ctx, f, L));
  for (const auto& s : sets)
    LP_CHECK(s.size() == sets[0].size(), "--attr-sets: files hold different numbers of examples");
  std::vector<double> per(sets[0].size());
  for (size_t i = 0; i < per.size(); ++i) {
    std::vector<std::vector<double>> tr;
    for (const auto& s : sets) tr.push_back(s[i]);
    per[i] = eval::mean_pairwise_jaccard(tr, L);
  }
  return per;
}
}  // namespace

CommandRun add_evaluate_command(CLI::App& app) {
  struct Args {
    std::string npz, predictions, model, out, attr, ohe, sets_a, sets_b, weights = "best";
    double neg_upsample = 1.0;
    int64_t batch = 64;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("evaluate", "Predictive, interpretability and stability metrics as JSON");
  sub->add_option("--npz", a->npz, "Dataset npz with x and y (labels or profile counts)");
  sub->add_option("--predictions", a->predictions, "predictions.npz from lowpass predict");
  sub->add_option("--model", a->model, "Model directory (predicts on --npz when --predictions is not given)");
  sub->add_option("--weights", a->weights, "best | last | path");
  sub->add_option("--neg-upsample", a->neg_upsample, "Negative upsampling factor for the corrected auPRC");
  sub->add_option("--attr", a->attr, "attr.npz (hypothetical scores) for entropy");
  sub->add_option("--ohe", a->ohe, "ohe.npz matching --attr (actual scores = hyp ⊙ one-hot)");
  sub->add_option("--attr-sets", a->sets_a, "Comma-separated attr.npz of models trained with different seeds");
  sub->add_option("--attr-sets-b", a->sets_b, "A second set (e.g. without the prior) for a paired one-sided test");
  sub->add_option("--batch", a->batch, "Sequences per forward pass");
  sub->add_option("--out", a->out, "Output JSON file")->required();
  return [a]() {
    Context ctx(0, 0);
    nlohmann::json doc;
    if (!a->npz.empty() && (!a->predictions.empty() || !a->model.empty())) {
      auto data = npy::load_npz(a->npz);
      LP_CHECK(data.count("y"), a->npz, ": no array 'y'");
      std::map<std::string, npy::Array> pred;
      if (!a->predictions.empty()) {
        pred = npy::load_npz(a->predictions);
      } else {
        auto model = attr::load_model_dir(a->model, ctx, a->weights);
        const DType dt = model->parameters().front().second.dtype();
        const npy::Array& xa = data.at("x");
        std::vector<Tensor> lg, pl, lc;
        for (int64_t s = 0; s < xa.shape[0]; s += a->batch) {
          int64_t n = std::min(a->batch, xa.shape[0] - s);
          Tensor c = data.count("control") ? attr::array_rows(ctx, data.at("control"), s, n, dt, "control") : Tensor();
          NoGradGuard ng;
          auto o = model->forward(attr::array_rows(ctx, xa, s, n, dt, "x"), c, false);
          if (o.logits.defined()) lg.push_back(o.logits);
          if (o.profile_logits.defined()) { pl.push_back(o.profile_logits); lc.push_back(o.log_counts); }
        }
        if (!lg.empty()) pred["logits"] = npy::from_tensor(concat(lg, 0));
        if (!pl.empty()) {
          pred["profile_logits"] = npy::from_tensor(concat(pl, 0));
          pred["log_counts"] = npy::from_tensor(concat(lc, 0));
        }
      }
      const npy::Array& ya = data.at("y");
      auto y = all_values(ctx, ya, "y");
      if (pred.count("logits")) {
        const npy::Array& la = pred.at("logits");
        LP_CHECK(la.shape == ya.shape, "predictions logits ", shape_str(la.shape), " do not match y ", shape_str(ya.shape));
        auto lv = all_values(ctx, la, "logits");
        const int64_t N = ya.shape[0], T = ya.shape[1];
        nlohmann::json per = nlohmann::json::array();
        for (int64_t t = 0; t < T; ++t) {
          std::vector<double> yt(N), pt(N);
          for (int64_t i = 0; i < N; ++i) {
            yt[i] = y[i * T + t];
            pt[i] = 1.0 / (1.0 + std::exp(-lv[i * T + t]));
          }
          per.push_back(eval::binary_metrics(yt, pt, a->neg_upsample).to_json());
        }
        doc["binary"] = {{"per_task", per}};
      } else {
        LP_CHECK(pred.count("profile_logits") && pred.count("log_counts"),
                 "predictions: expected logits or profile_logits + log_counts");
        const npy::Array& pa = pred.at("profile_logits");
        LP_CHECK(pa.shape == ya.shape && ya.shape.size() == 4, "predictions profile_logits ", shape_str(pa.shape),
                 " do not match y ", shape_str(ya.shape));
        Tensor lp = log_softmax(attr::array_rows(ctx, pa, 0, pa.shape[0], DType::F64, "profile_logits"), 3);
        eval::ProfileData d;
        d.N = ya.shape[0];
        d.T = ya.shape[1];
        d.S = ya.shape[2];
        d.O = ya.shape[3];
        d.true_counts = y;
        d.pred_log_probs = lp.to_vector<double>();
        d.pred_log_counts = all_values(ctx, pred.at("log_counts"), "log_counts");
        eval::ProfileMetricsConfig cfg;
        doc["profile"] = eval::profile_metrics(d, cfg).to_json(cfg.bin_sizes);
      }
    }
    if (!a->attr.empty()) {
      LP_CHECK(!a->ohe.empty(), "--attr needs --ohe (actual scores = hypothetical ⊙ one-hot)");
      int64_t L = 0, L2 = 0;
      auto hyp = load_tracks(ctx, a->attr, L);
      auto ohe = load_tracks(ctx, a->ohe, L2);
      LP_CHECK(L == L2 && hyp.size() == ohe.size(), "--attr and --ohe differ in shape");
      std::vector<double> ent(hyp.size());
      for (size_t i = 0; i < hyp.size(); ++i) {
        for (size_t j = 0; j < hyp[i].size(); ++j) hyp[i][j] *= ohe[i][j];
        ent[i] = eval::attribution_entropy(hyp[i], L);
      }
      doc["interpretability"] = {{"entropy", mean_sem(ent)}};
    }
    if (!a->sets_a.empty()) {
      int64_t L = 0;
      auto ca = consistency(ctx, split(a->sets_a), L);
      nlohmann::json st = {{"jaccard_a", mean_sem(ca)}};
      if (!a->sets_b.empty()) {
        auto cb = consistency(ctx, split(a->sets_b), L);
        LP_CHECK(ca.size() == cb.size(), "--attr-sets and --attr-sets-b hold different numbers of examples");
        st["jaccard_b"] = mean_sem(cb);
        st["wilcoxon_a_greater_p"] = num(eval::wilcoxon_greater(ca, cb));
      }
      doc["stability"] = st;
    }
    LP_CHECK(!doc.empty(), "evaluate: nothing to do (give --npz with --predictions or --model, --attr, or --attr-sets)");
    std::ofstream f(a->out);
    LP_CHECK(f.good(), "--out: cannot write ", a->out);
    f << doc.dump(1) << "\n";
    std::cout << "wrote " << a->out << "\n";
    return 0;
  };
}

}  // namespace lowpass::tools
