// `lowpass evaluate --npz X.npz (--predictions P.npz | --model DIR) [--attr A.npz --ohe O.npz]
//   [--motifs M.meme | --motif-positions T.tsv] [--attr-sets a.npz,… [--attr-sets-b …]] --out metrics.json`:
// one JSON document: predictive metrics (REFERENCE §4.2), HF share / entropy / motif-site fraction (§4.5),
// seed consistency (continuous Jaccard, cosine, §4.3), one-sided paired Wilcoxon tests between two model sets.
// Test: build/tests/lowpass_tests -ts=eval, -ts=motif_scan (library parts); docs/evaluation.md.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/npz.h"
#include "engine/safetensors.h"
#include "models/attr/genome_regions.h"
#include "models/attr/model_dir.h"
#include "models/data/meme.h"
#include "models/eval/attr_metrics.h"
#include "models/eval/binary_metrics.h"
#include "models/eval/fourier_metrics.h"
#include "models/eval/motif_scan.h"
#include "models/eval/profile_metrics.h"
#include "models/eval/stats.h"
#include "models/loss/fourier_prior.h"
#include "models/train/progress.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"

namespace lowpass::tools {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> r;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) r.push_back(item);
  return r;
}

namespace {
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
// Tracks (N, 4, L) of an attribution npz (first array), float64. Converted 1024 rows at a time, so the peak is the
// file's bytes plus the rows in double, not also a whole-array float64 copy.
std::vector<std::vector<double>> load_tracks(Context& ctx, const std::string& path, int64_t& L) {
  auto arrays = npy::load_npz(path);
  LP_CHECK(!arrays.empty(), path, ": empty npz");
  const npy::Array& a = arrays.count("arr_0") ? arrays.at("arr_0") : arrays.begin()->second;
  LP_CHECK(a.shape.size() == 3 && a.shape[1] == 4, path, ": expected (N, 4, L), got ", shape_str(a.shape));
  L = a.shape[2];
  const int64_t N = a.shape[0], block = 1024;
  std::vector<std::vector<double>> t(N);
  for (int64_t s = 0; s < N; s += block) {
    const int64_t n = std::min(block, N - s);
    const std::vector<double> v = attr::array_rows(ctx, a, s, n, DType::F64, path).to_vector<double>();
    for (int64_t i = 0; i < n; ++i) t[s + i].assign(v.begin() + i * 4 * L, v.begin() + (i + 1) * 4 * L);
  }
  return t;
}
// Per-example seed consistency of the hypothetical scores: mean over model pairs of the continuous
// Jaccard and of the cosine similarity, over the selected rows.
struct Consistency {
  std::vector<double> jaccard, cosine;
};
Consistency consistency(const std::vector<std::vector<std::vector<double>>>& sets, const std::vector<int64_t>& rows,
                        int64_t L) {
  Consistency c;
  for (int64_t i : rows) {
    double j = 0, cs = 0;
    int64_t n = 0;
    for (size_t a = 0; a < sets.size(); ++a)
      for (size_t b = 0; b < a; ++b) {
        j += eval::continuous_jaccard(sets[a][i], sets[b][i], L);
        cs += eval::cosine_similarity(sets[a][i], sets[b][i]);
        ++n;
      }
    c.jaccard.push_back(j / n);
    c.cosine.push_back(cs / n);
  }
  return c;
}
// Per-example similarity between two model sets (§4.4: e.g. models trained on all of the data against models
// trained on 10 % of it): mean over every pair (a from A, b from B).
Consistency cross_consistency(const std::vector<std::vector<std::vector<double>>>& A,
                              const std::vector<std::vector<std::vector<double>>>& B, const std::vector<int64_t>& rows,
                              int64_t L) {
  Consistency c;
  for (int64_t i : rows) {
    double j = 0, cs = 0;
    for (const auto& a : A)
      for (const auto& b : B) {
        j += eval::continuous_jaccard(a[i], b[i], L);
        cs += eval::cosine_similarity(a[i], b[i]);
      }
    const double n = static_cast<double>(A.size() * B.size());
    c.jaccard.push_back(j / n);
    c.cosine.push_back(cs / n);
  }
  return c;
}
std::vector<std::vector<std::vector<double>>> load_set(Context& ctx, const std::vector<std::string>& files,
                                                       const char* flag, int64_t L_want, size_t n_want) {
  LP_CHECK(files.size() >= 2, flag, ": need at least two attribution files, got ", files.size());
  std::vector<std::vector<std::vector<double>>> sets;
  for (const auto& f : files) {
    int64_t L = 0;
    sets.push_back(load_tracks(ctx, f, L));
    LP_CHECK((L_want < 0 || L == L_want) && (n_want == 0 || sets.back().size() == n_want), flag, ": ", f,
             " holds ", sets.back().size(), " x 4 x ", L, ", expected ", n_want, " x 4 x ", L_want);
  }
  return sets;
}
// Attribution metrics of one example from its hypothetical scores and one-hot input (actual = hyp ⊙ x).
struct ExampleAttr {
  double entropy, hf_share, motif_fraction;
};
ExampleAttr example_metrics(const std::vector<double>& hyp, const std::vector<double>& ohe, int64_t L, int64_t K,
                            const std::vector<uint8_t>* mask, std::vector<double>* actual_out = nullptr) {
  std::vector<double> act(hyp.size());
  for (size_t j = 0; j < hyp.size(); ++j) act[j] = hyp[j] * ohe[j];
  ExampleAttr e;
  e.entropy = eval::attribution_entropy(act, L);
  e.hf_share = high_freq_share(eval::position_magnitude(act, L), K);
  e.motif_fraction = mask ? eval::fraction_inside(act, L, *mask) : NAN;
  if (actual_out) *actual_out = std::move(act);
  return e;
}
std::vector<double> column(const std::vector<ExampleAttr>& v, double ExampleAttr::*f) {
  std::vector<double> r;
  for (const auto& e : v) r.push_back(e.*f);
  return r;
}
struct EvaluateArgs {
  std::string npz, predictions, out, attr, ohe, sets_a, sets_b, weights = "best";
  std::vector<std::string> models;
  std::string motifs, motif_names, motif_positions, motif_split = "test", rows = "all";
  double neg_upsample = 1.0, motif_threshold = 0.8, motif_pseudocount = 0.01;
  bool summit_center = false, quiet = false;
  int64_t batch = 64, freq_limit = -1;
  bool batch_given = false;  // --batch on the command line; else --predictions reads kPredictionRows rows at a time
  int threads = 0;
};
// Rows per read of --predictions without --batch: no model runs, and larger reads keep the per-batch allocations
// (fresh pages every batch) from costing more than the metrics (20,000 x 2 x 1000 profiles: 6.9 s whole, 8.7 s in
// batches of 64, 5.5 s in batches of 1024).
constexpr int64_t kPredictionRows = 1024;

// Predictive metrics of --npz's y against --predictions or the mean of the --model directories' outputs on its x:
// ("binary", {per_task}) or ("profile", {...}). Streamed: x, control, y and the predictions are read `batch` rows at
// a time (npy::NpzRowReader), the models run on those rows, and only small per-example numbers stay (binary: y and
// the logits, (N, T); profile: the ProfileMetricsAccumulator's), so memory does not grow with the profiles.
std::pair<std::string, nlohmann::json> predictive_metrics(Context& ctx, const EvaluateArgs& a) {
  npy::NpzRowReader data(a.npz);
  LP_CHECK(data.has("y"), a.npz, ": no array 'y'");
  const Shape ys = data.shape("y");
  const int64_t N = ys[0];
  LP_CHECK(N >= 1, a.npz, ": y ", shape_str(ys), " has no rows to evaluate");
  const std::string src = a.predictions.empty() ? "the model's" : a.predictions;
  auto check_binary = [&](const Shape& ls) {
    LP_CHECK(ls == ys && ys.size() == 2, src, ": logits ", shape_str(ls), " do not match y ", shape_str(ys), " of ",
             a.npz);
  };
  auto check_profile = [&](const Shape& ps, const Shape& cs) {
    LP_CHECK(ps == ys && ys.size() == 4, src, ": profile_logits ", shape_str(ps), " do not match y ", shape_str(ys),
             " of ", a.npz);
    LP_CHECK(cs == (Shape{ys[0], ys[1], ys[2]}), src, ": log_counts ", shape_str(cs), " do not match y ",
             shape_str(ys), " of ", a.npz, " (expected (N, T, S))");
  };
  auto whole = [N](Shape s) {  // a batch's shape with the file's N rows, for messages
    s[0] = N;
    return s;
  };
  std::optional<npy::NpzRowReader> pf;
  std::optional<attr::ModelSet> set;
  DType dt = DType::F32;
  bool binary = false;
  if (!a.predictions.empty()) {
    pf.emplace(a.predictions);
    binary = pf->has("logits");
    if (binary) {
      check_binary(pf->shape("logits"));
    } else {
      LP_CHECK(pf->has("profile_logits") && pf->has("log_counts"), a.predictions,
               ": expected logits or profile_logits + log_counts");
      check_profile(pf->shape("profile_logits"), pf->shape("log_counts"));
    }
  } else {
    set.emplace(attr::load_model_dirs(a.models, ctx, a.weights, "cpu"));
    Model& model = set->front();
    dt = model.parameters().front().second.dtype();
    binary = model.type() == "binary";
    attr::InputFiles in;  // an npz: open_inputs reads shapes only (x, control) and checks them
    in.npz = a.npz;
    attr::RegionWindows unused;
    const Shape xs = attr::open_inputs("evaluate", model, in, unused).at("x").shape;
    LP_CHECK(xs[0] == N, a.npz, ": y ", shape_str(ys), " has ", N, " rows but x ", shape_str(xs), " has ", xs[0]);
  }
  std::vector<double> yb, lb;  // binary: (N, T) labels and logits
  eval::ProfileMetricsConfig cfg;
  std::optional<eval::ProfileMetricsAccumulator> acc;
  Progress bar("evaluate", N, "seq", !a.quiet);
  const int64_t batch = pf && !a.batch_given ? kPredictionRows : a.batch;
  for (int64_t s = 0; s < N; s += batch) {
    const int64_t n = std::min(batch, N - s);
    Tensor logits, profile_logits, log_counts;  // this batch's predictions, float64: (n, T) | (n, T, S, O), (n, T, S)
    if (pf) {
      if (binary) {
        logits = attr::npz_rows(ctx, *pf, "logits", s, n, DType::F64, a.predictions + ":logits");
      } else {
        profile_logits = attr::npz_rows(ctx, *pf, "profile_logits", s, n, DType::F64, a.predictions + ":profile_logits");
        log_counts = attr::npz_rows(ctx, *pf, "log_counts", s, n, DType::F64, a.predictions + ":log_counts");
      }
    } else {
      const Tensor c = data.has("control") ? attr::npz_rows(ctx, data, "control", s, n, dt, a.npz + ":control", true)
                                           : Tensor();
      const ModelOutput o = attr::forward_mean(*set, attr::npz_rows(ctx, data, "x", s, n, dt, a.npz + ":x", true),
                                               std::vector<Tensor>(set->size(), c));
      if (binary) {
        check_binary(whole(o.logits.shape()));
        logits = cast(o.logits, DType::F64);
      } else {
        check_profile(whole(o.profile_logits.shape()), whole(o.log_counts.shape()));
        profile_logits = cast(o.profile_logits, DType::F64);
        log_counts = cast(o.log_counts, DType::F64);
      }
    }
    std::vector<double> y = attr::npz_rows(ctx, data, "y", s, n, DType::F64, a.npz + ":y").to_vector<double>();
    if (binary) {
      const std::vector<double> l = logits.to_vector<double>();
      yb.insert(yb.end(), y.begin(), y.end());
      lb.insert(lb.end(), l.begin(), l.end());
    } else {
      if (!acc) acc.emplace(ys[1], ys[2], ys[3], cfg);
      eval::ProfileData d;
      d.N = n;
      d.T = ys[1];
      d.S = ys[2];
      d.O = ys[3];
      d.true_counts = std::move(y);
      d.pred_log_probs = log_softmax(profile_logits, 3).to_vector<double>();
      d.pred_log_counts = log_counts.to_vector<double>();
      acc->add(d);
    }
    bar.update(n);
  }
  bar.finish();
  if (!binary) return {"profile", nlohmann::json(acc->finish().to_json(cfg.bin_sizes))};
  const int64_t T = ys[1];
  nlohmann::json per = nlohmann::json::array();
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> yt(N), pt(N);
    for (int64_t i = 0; i < N; ++i) {
      yt[i] = yb[i * T + t];
      pt[i] = 1.0 / (1.0 + std::exp(-lb[i * T + t]));
    }
    per.push_back(eval::binary_metrics(yt, pt, a.neg_upsample).to_json());
  }
  nlohmann::json j;
  j["per_task"] = per;
  return {"binary", j};
}
}  // namespace

CommandRun add_evaluate_command(CLI::App& app) {
  auto a = std::make_shared<EvaluateArgs>();
  CLI::App* sub = app.add_subcommand("evaluate", "Predictive, interpretability and stability metrics as JSON");
  CLI::Option* npz = sub->add_option("--npz", a->npz, "Dataset npz with x and y (labels or profile counts)");
  CLI::Option* pred = sub->add_option("--predictions", a->predictions, "predictions.npz from lowpass predict");
  CLI::Option* model =
      sub->add_option("--model", a->models,
                      "Model directory (predicts on --npz when --predictions is not given); repeat it to evaluate "
                      "the mean of several models (a fold ensemble, as predict averages them)")
          ->take_all();
  pred->needs(npz)->excludes(model);
  model->needs(npz);
  sub->add_option("--weights", a->weights, "best | last | a .safetensors state_dict or training checkpoint")
      ->check(weights_choice())
      ->needs(model);
  sub->add_option("--neg-upsample", a->neg_upsample, "Negative upsampling factor for the corrected auPRC")
      ->check(number_above(0));
  CLI::Option* attr = sub->add_option("--attr", a->attr, "attr.npz (hypothetical scores) for entropy");
  CLI::Option* ohe = sub->add_option("--ohe", a->ohe, "ohe.npz matching --attr (actual scores = hyp ⊙ one-hot)");
  attr->needs(ohe);
  CLI::Option* sets =
      sub->add_option("--attr-sets", a->sets_a, "Comma-separated attr.npz of models trained with different seeds");
  sub->add_option("--attr-sets-b", a->sets_b, "A second set (e.g. without the prior) for a paired one-sided test")
      ->needs(sets);
  sub->add_flag("--summit-center", a->summit_center,
                "Windows are centred on peak summits (attribute --regions, profile windows): report the Spearman "
                "correlation of per-position |attribution| with the distance to the centre");
  sub->add_option("--rows", a->rows, "Examples the attribution metrics use: all | positives (y == 1 in --npz)")
      ->check(CLI::IsMember({"all", "positives"}));
  sub->add_option("--freq-limit", a->freq_limit, "K of the high-frequency share (default round(0.15 L))")
      ->check(integer_at_least(0))
      ->default_str("");  // -1: from L
  CLI::Option* motifs =
      sub->add_option("--motifs", a->motifs, "MEME file: motif-instance masks by a PWM scan of --ohe");
  sub->add_option("--motif-names", a->motif_names, "Comma-separated motif ids/names to scan (default: all)")
      ->needs(motifs);
  sub->add_option("--motif-threshold", a->motif_threshold,
                  "Hit: log2-odds score >= this fraction of the motif's maximum score");
  sub->add_option("--motif-pseudocount", a->motif_pseudocount, "Added to PWM probabilities before the log-odds");
  sub->add_option("--motif-positions", a->motif_positions, "motif_positions.tsv of lowpass simulate (true sites)")
      ->excludes(motifs);
  sub->add_option("--motif-split", a->motif_split, "Split of --motif-positions matching the attributed rows");
  CLI::Option* batch = sub->add_option("--batch", a->batch,
                                       "Sequences per forward pass; with --predictions, rows per read (default 1024)")
                           ->check(integer_at_least(1));
  sub->add_option("--threads", a->threads, "CPU threads (0 = all)")->check(integer_at_least(0));
  sub->add_flag("--quiet", a->quiet, "No progress bar (the pass over --npz's rows with --model or --predictions)");
  sub->add_option("--out", a->out, "Output JSON file (its folder is created)")->required();
  // Combinations that cannot work, whatever the files hold: usage mistakes (exit code 2).
  sub->parse_complete_callback([a, batch]() {
    a->batch_given = batch->count() > 0;
    const bool predictive = !a->predictions.empty() || !a->models.empty();
    const bool attribution = !a->attr.empty() || !a->sets_a.empty();
    usage_check(predictive || attribution,
                "nothing to do (give --npz with --predictions or --model, --attr with --ohe, or --attr-sets)");
    usage_check(a->rows != "positives" || !a->npz.empty(), "--rows positives needs --npz with the labels y");
    const bool motif_or_rows = !a->motifs.empty() || !a->motif_positions.empty() || a->rows != "all";
    usage_check(!motif_or_rows || (attribution && !a->ohe.empty()),
                "--motifs, --motif-positions and --rows need --ohe (and --attr or --attr-sets)");
  });
  return [a]() {
    Context ctx(a->threads, 0);
    nlohmann::json doc;
    if (!a->npz.empty() && (!a->predictions.empty() || !a->models.empty())) {
      const auto [key, metrics] = predictive_metrics(ctx, *a);
      doc[key] = metrics;
    }
    // Inputs shared by the attribution metrics: one-hot, selected rows, motif masks.
    std::vector<std::vector<double>> ohe;
    int64_t L = -1;
    std::vector<int64_t> rows;
    std::vector<std::vector<uint8_t>> masks;  // per row of --ohe (empty without motifs)
    nlohmann::json motif_info;
    const bool want_attr = !a->attr.empty() || !a->sets_a.empty();
    if (want_attr && !a->ohe.empty()) {
      ohe = load_tracks(ctx, a->ohe, L);
      const int64_t N = static_cast<int64_t>(ohe.size());
      if (a->rows == "positives") {  // with --npz: a parse-time check (usage_check above)
        npy::NpzRowReader data(a->npz);  // y only: x is not read
        LP_CHECK(data.has("y") && data.shape("y").size() == 2 && data.shape("y")[0] == N, a->npz,
                 ": --rows positives needs a binary y of shape (", N, ", T) matching --ohe");
        const int64_t T = data.shape("y")[1];
        auto y = attr::npz_rows(ctx, data, "y", 0, N, DType::F64, a->npz + ":y").to_vector<double>();
        for (int64_t i = 0; i < N; ++i) {
          bool pos = false;
          for (int64_t t = 0; t < T; ++t) pos |= y[i * T + t] == 1.0;
          if (pos) rows.push_back(i);
        }
        LP_CHECK(!rows.empty(), a->npz, ": --rows positives: no example has y == 1");
      } else {
        for (int64_t i = 0; i < N; ++i) rows.push_back(i);
      }
      if (!a->motifs.empty()) {  // not with --motif-positions: a parse-time check (excludes)
        auto all = read_meme(a->motifs);
        std::vector<Motif> use;
        if (a->motif_names.empty()) use = all;
        else for (const auto& n : split_list(a->motif_names)) use.push_back(select_motif(all, n, a->motifs));
        eval::ScanOptions so{a->motif_threshold, a->motif_pseudocount};
        double hits = 0, covered = 0;
        for (int64_t i = 0; i < N; ++i) {
          auto h = eval::scan_sequence(eval::decode_one_hot(ohe[i], L, a->ohe + " row " + std::to_string(i)), use, so);
          masks.push_back(eval::hit_mask(h, L));
          hits += static_cast<double>(h.size());
          for (auto m : masks.back()) covered += m;
        }
        nlohmann::json names = nlohmann::json::array();
        for (const auto& m : use) names.push_back(m.id + (m.name.empty() ? "" : " " + m.name));
        motif_info = {{"source", a->motifs}, {"motifs", names}, {"threshold", a->motif_threshold},
                      {"pseudocount", a->motif_pseudocount}, {"hits_per_sequence", hits / N},
                      {"position_fraction_in_sites", covered / (static_cast<double>(N) * L)}};
      } else if (!a->motif_positions.empty()) {
        masks = eval::read_position_masks(a->motif_positions, a->motif_split, N, L);
        double covered = 0;
        for (const auto& m : masks)
          for (auto v : m) covered += v;
        motif_info = {{"source", a->motif_positions}, {"split", a->motif_split},
                      {"position_fraction_in_sites", covered / (static_cast<double>(N) * L)}};
      }
    }  // without --ohe there are no motif or row options: a parse-time check (usage_check above)
    const int64_t K = a->freq_limit >= 0 ? a->freq_limit : default_freq_limit("binary", L);  // round(0.15 L)
    auto summary = [&](const std::vector<ExampleAttr>& e) {
      nlohmann::json j = {{"entropy", mean_sem(column(e, &ExampleAttr::entropy))},
                          {"hf_share", mean_sem(column(e, &ExampleAttr::hf_share))}, {"freq_limit", K}};
      if (!masks.empty()) j["motif_fraction"] = mean_sem(column(e, &ExampleAttr::motif_fraction));
      return j;
    };
    if (!a->attr.empty()) {
      int64_t La = 0;
      auto hyp = load_tracks(ctx, a->attr, La);
      LP_CHECK(La == L && hyp.size() == ohe.size(), "--attr ", a->attr, " is (", hyp.size(), ", 4, ", La, ") but --ohe ",
               a->ohe, " is (", ohe.size(), ", 4, ", L, "): they must come from the same `lowpass attribute` run");
      std::vector<ExampleAttr> per;
      std::vector<std::vector<double>> act;
      std::vector<std::vector<uint8_t>> sel_masks;
      for (int64_t i : rows) {
        act.emplace_back();
        per.push_back(example_metrics(hyp[i], ohe[i], L, K, masks.empty() ? nullptr : &masks[i], &act.back()));
        if (!masks.empty()) sel_masks.push_back(masks[i]);
      }
      nlohmann::json it = summary(per);
      it["rows"] = a->rows;
      it["n"] = static_cast<int64_t>(rows.size());
      if (!masks.empty()) {
        it["motif_overlap_auprc"] = num(eval::overlap_auprc(act, L, sel_masks));
        it["motif_sites"] = motif_info;
      }
      if (a->summit_center) {  // §4.5: attribution should fall off away from the summit (negative = it does)
        std::vector<double> rho;
        for (const auto& t : act) {
          const double r = eval::summit_distance_spearman(t, L, {L / 2});
          if (std::isfinite(r)) rho.push_back(r);
        }
        it["summit_distance_spearman"] = mean_sem(rho);
      }
      doc["interpretability"] = it;
    }
    if (!a->sets_a.empty()) {
      auto A = load_set(ctx, split_list(a->sets_a), "--attr-sets", L, ohe.size());
      if (L < 0) {  // no --ohe: all rows, length from the first file
        L = static_cast<int64_t>(A[0][0].size() / 4);
        for (size_t i = 0; i < A[0].size(); ++i) rows.push_back(static_cast<int64_t>(i));
      }
      auto per_set = [&](const std::vector<std::vector<std::vector<double>>>& S) {
        std::vector<ExampleAttr> mean(rows.size(), ExampleAttr{0, 0, 0});
        for (const auto& m : S)
          for (size_t r = 0; r < rows.size(); ++r) {
            auto e = example_metrics(m[rows[r]], ohe[rows[r]], L, K, masks.empty() ? nullptr : &masks[rows[r]]);
            mean[r].entropy += e.entropy / S.size();
            mean[r].hf_share += e.hf_share / S.size();
            mean[r].motif_fraction += e.motif_fraction / S.size();
          }
        return mean;
      };
      auto ca = consistency(A, rows, L);
      nlohmann::json st = {{"jaccard_a", mean_sem(ca.jaccard)}, {"cosine_a", mean_sem(ca.cosine)},
                           {"models_a", A.size()}, {"n", static_cast<int64_t>(rows.size())}, {"rows", a->rows}};
      std::vector<ExampleAttr> ea;
      if (!ohe.empty()) st["attr_a"] = summary(ea = per_set(A));
      if (!a->sets_b.empty()) {
        auto B = load_set(ctx, split_list(a->sets_b), "--attr-sets-b", L, A[0].size());
        auto cb = consistency(B, rows, L);
        st["jaccard_b"] = mean_sem(cb.jaccard);
        st["cosine_b"] = mean_sem(cb.cosine);
        st["models_b"] = B.size();
        auto cab = cross_consistency(A, B, rows, L);  // §4.4: similarity across the two sets
        st["jaccard_ab"] = mean_sem(cab.jaccard);
        st["cosine_ab"] = mean_sem(cab.cosine);
        // one-sided paired Wilcoxon over examples, H1: set A better (more consistent, smoother, sparser,
        // more attribution in motif sites)
        st["wilcoxon_a_greater_p"] = num(eval::wilcoxon_greater(ca.jaccard, cb.jaccard));
        st["wilcoxon_cosine_a_greater_p"] = num(eval::wilcoxon_greater(ca.cosine, cb.cosine));
        if (!ohe.empty()) {
          auto eb = per_set(B);
          st["attr_b"] = summary(eb);
          st["wilcoxon_hf_share_a_less_p"] =
              num(eval::wilcoxon_greater(column(eb, &ExampleAttr::hf_share), column(ea, &ExampleAttr::hf_share)));
          st["wilcoxon_entropy_a_less_p"] =
              num(eval::wilcoxon_greater(column(eb, &ExampleAttr::entropy), column(ea, &ExampleAttr::entropy)));
          if (!masks.empty())
            st["wilcoxon_motif_fraction_a_greater_p"] = num(eval::wilcoxon_greater(
                column(ea, &ExampleAttr::motif_fraction), column(eb, &ExampleAttr::motif_fraction)));
        }
      }
      if (!motif_info.is_null()) st["motif_sites"] = motif_info;
      doc["stability"] = st;
    }
    LP_CHECK(!doc.empty(), "evaluate: nothing to do (give --npz with --predictions or --model, --attr, or --attr-sets)");
    const std::filesystem::path out(a->out), dir = out.parent_path();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    LP_CHECK(!ec, "--out: cannot create the folder ", dir.string(), ": ", ec.message());
    safetensors::write_file_atomic(a->out, doc.dump(1) + "\n");  // temp + rename: never half a file over the last
    std::cout << "wrote " << a->out << "\n";
    return 0;
  };
}

}  // namespace lowpass::tools
