// `lowpass evaluate --npz X.npz (--predictions P.npz | --model DIR) [--attr A.npz --ohe O.npz]
//   [--motifs M.meme | --motif-positions T.tsv] [--attr-sets a.npz,… [--attr-sets-b …]] --out metrics.json`:
// one JSON document: predictive metrics (REFERENCE §4.2), HF share / entropy / motif-site fraction (§4.5),
// seed consistency (continuous Jaccard, cosine, §4.3), one-sided paired Wilcoxon tests between two model sets.
// Every npz is read in row chunks (npy::NpzRowReader) and only per-example numbers are kept (docs/cli.md).
// Test: build/tests/lowpass_tests -ts=eval, -ts=motif_scan (library parts); docs/evaluation.md.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/npz.h"
#include "engine/safetensors.h"
#include "models/attr/genome_regions.h"
#include "models/attr/model_dir.h"
#include "models/data/meme.h"
#include "models/eval/attr_accumulator.h"
#include "models/eval/binary_metrics.h"
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
// The tracks (N, 4, L) of an attribution npz (its arr_0, else its first array by name), read rows at a time: the
// shape is checked when the file is opened, rows are converted to float64 when asked for.
class TrackFile {
 public:
  explicit TrackFile(const std::string& path) : path_(path), r_(path) {
    const std::vector<std::string> keys = r_.keys();
    LP_CHECK(!keys.empty(), path, ": empty npz");
    key_ = r_.has("arr_0") ? "arr_0" : keys.front();
    const Shape& s = r_.shape(key_);
    LP_CHECK(s.size() == 3 && s[1] == 4, path, ": expected (N, 4, L), got ", shape_str(s));
    N = s[0];
    L = s[2];
  }
  // Rows sel[b], …, sel[e − 1] (ascending) as (4, L) tracks; runs of consecutive rows are read in one request.
  std::vector<std::vector<double>> rows(Context& ctx, const std::vector<int64_t>& sel, size_t b, size_t e) {
    std::vector<std::vector<double>> t;
    t.reserve(e - b);
    for (size_t i = b, j; i < e; i = j) {
      for (j = i + 1; j < e && sel[j] == sel[j - 1] + 1;) ++j;
      const int64_t n = static_cast<int64_t>(j - i);
      const std::vector<double> v = attr::npz_rows(ctx, r_, key_, sel[i], n, DType::F64, path_).to_vector<double>();
      for (int64_t k = 0; k < n; ++k) t.emplace_back(v.begin() + k * 4 * L, v.begin() + (k + 1) * 4 * L);
    }
    return t;
  }
  int64_t N = 0, L = 0;
  std::string model_type() const { return attribution_model_type(path_, N, L); }  // attribute.json's, or ""
  const std::string& path() const { return path_; }

 private:
  std::string path_, key_;
  npy::NpzRowReader r_;
};
// The files of --attr-sets or --attr-sets-b, opened and checked against (N_want, 4, L_want) (L_want < 0: no --ohe,
// the first file's shape).
std::vector<TrackFile> open_set(const std::vector<std::string>& files, const char* flag, int64_t L_want,
                                int64_t N_want) {
  LP_CHECK(files.size() >= 2, flag, ": need at least two attribution files, got ", files.size());
  std::vector<TrackFile> set;
  for (const auto& f : files) {
    const TrackFile& t = set.emplace_back(f);
    if (L_want < 0) {
      L_want = t.L;
      N_want = t.N;
    }
    LP_CHECK(t.L == L_want && t.N == N_want, flag, ": ", f, " holds ", t.N, " x 4 x ", t.L, ", expected ", N_want,
             " x 4 x ", L_want);
  }
  return set;
}
using eval::ExampleAttr;
std::vector<double> column(const std::vector<ExampleAttr>& v, double ExampleAttr::*f) {
  std::vector<double> r;
  for (const auto& e : v) r.push_back(e.*f);
  return r;
}
// Rows of the attribution files read at a time (each file's chunk is held as float64: 32·L bytes a row).
constexpr int64_t kAttrRows = 64;
struct EvaluateArgs {
  std::string npz, predictions, out, attr, ohe, sets_a, sets_b, weights = "best";
  std::vector<std::string> models;
  std::string motifs, motif_names, motif_positions, motif_split = "test", rows = "all";
  double neg_upsample = 1.0, motif_threshold = 0.8, motif_pseudocount = 0.01;
  bool summit_center = false, quiet = false;
  int64_t batch = 64, freq_limit = -1, attr_chunk = kAttrRows;
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
  Shape ys = data.shape("y");
  LP_CHECK(!ys.empty(), a.npz, ": y is a scalar; expected (N, T) labels or (N, T, S, O) counts");
  const int64_t N = ys[0];
  LP_CHECK(N >= 1, a.npz, ": y ", shape_str(ys), " has no rows to evaluate");
  const std::string src = a.predictions.empty() ? "--model " + a.models.front() : a.predictions;
  // A binary y of shape (N,) is one task, as training reads it (array_dataset.cpp): (N, 1).
  const auto one_task = [&] {
    if (ys.size() == 1) ys = {N, 1};
  };
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
      one_task();
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
    if (binary) one_task();
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

// Attribution metrics (--attr with --ohe: "interpretability"; --attr-sets [-b]: "stability") into doc. Streamed:
// every file is opened and its shape checked first, then the selected rows are read `attr_chunk` rows of the files
// at a time from each (npy::NpzRowReader), and each example's metrics are taken as its rows pass
// (eval::AttrMetricsAccumulator). What stays is per-example numbers, the motif masks of --motif-positions (L bytes a
// row) and, for motif_overlap_auprc, Σ_b |actual| and the mask per position of the selected rows.
void attribution_metrics(Context& ctx, const EvaluateArgs& a, nlohmann::json& doc) {
  std::optional<TrackFile> ohe, hyp;
  std::vector<TrackFile> A, B;
  int64_t N = -1, L = -1;
  if (!a.ohe.empty()) {
    ohe.emplace(a.ohe);
    N = ohe->N;
    L = ohe->L;
  }  // without --ohe there are no motif or row options: a parse-time check (usage_check)
  if (!a.attr.empty()) {  // with --ohe: a parse-time check (needs)
    hyp.emplace(a.attr);
    LP_CHECK(hyp->L == L && hyp->N == N, "--attr ", a.attr, " is (", hyp->N, ", 4, ", hyp->L, ") but --ohe ", a.ohe,
             " is (", N, ", 4, ", L, "): they must come from the same `lowpass attribute` run");
  }
  if (!a.sets_a.empty()) {
    A = open_set(split_list(a.sets_a), "--attr-sets", L, N);
    N = A[0].N;  // no --ohe: all rows, length from the first file
    L = A[0].L;
    if (!a.sets_b.empty()) B = open_set(split_list(a.sets_b), "--attr-sets-b", L, N);
  }
  std::optional<npy::NpzRowReader> npz;  // --npz's y: the positives and the model type (x is not read)
  if (!a.npz.empty()) npz.emplace(a.npz);
  std::vector<int64_t> rows;  // the selected rows, ascending
  if (a.rows == "positives") {  // with --npz: a parse-time check (usage_check)
    npy::NpzRowReader& data = *npz;
    const Shape ys = data.has("y") ? data.shape("y") : Shape{};  // (N, T), or (N,): one task, as training reads it
    LP_CHECK((ys.size() == 2 || ys.size() == 1) && ys[0] == N, a.npz,
             ": --rows positives needs a binary y of shape (", N, ", T) or (", N, ",) matching --ohe");
    const int64_t T = ys.size() == 2 ? ys[1] : 1;
    auto y = attr::npz_rows(ctx, data, "y", 0, N, DType::F64, a.npz + ":y").to_vector<double>();
    for (int64_t i = 0; i < N; ++i) {
      bool pos = false;
      for (int64_t t = 0; t < T; ++t) pos |= y[i * T + t] == 1.0;
      if (pos) rows.push_back(i);
    }
    LP_CHECK(!rows.empty(), a.npz, ": --rows positives: no example has y == 1");
  } else {
    for (int64_t i = 0; i < N; ++i) rows.push_back(i);
  }
  // Motif sites: a PWM scan of every --ohe row (as its chunk passes), or the masks of --motif-positions (all rows).
  const bool scan = !a.motifs.empty(), masked = (scan || !a.motif_positions.empty()) && N > 0;
  std::vector<Motif> motifs;
  const eval::ScanOptions so{a.motif_threshold, a.motif_pseudocount};
  std::vector<std::vector<uint8_t>> site_masks;  // --motif-positions: (N, L)
  double hits = 0, covered = 0;
  if (scan) {  // not with --motif-positions: a parse-time check (excludes)
    const std::vector<Motif> all = read_meme(a.motifs);
    if (a.motif_names.empty()) motifs = all;
    else for (const auto& n : split_list(a.motif_names)) motifs.push_back(select_motif(all, n, a.motifs));
  } else if (!a.motif_positions.empty()) {
    site_masks = eval::read_position_masks(a.motif_positions, a.motif_split, N, L);
    for (const auto& m : site_masks)
      for (auto v : m) covered += v;
  }
  // The paper's cut-off at this length (REFERENCE §4.5a): K 150 at 1000 bp for binary models, 200 at 1346 bp for
  // profile models, i.e. default_freq_limit of the model type: the attribution files' attribute.json, else profile
  // when --npz holds profile counts (N, T, S, O), else binary (round(0.15 L); at L = 1346 that is 202, not 200).
  std::string type, source = "--freq-limit";
  if (a.freq_limit < 0) {
    std::vector<const TrackFile*> files;
    if (hyp) files.push_back(&*hyp);
    for (const auto* set : {&A, &B})
      for (const auto& f : *set) files.push_back(&f);
    for (const TrackFile* f : files) {
      const std::string t = f->model_type();
      LP_CHECK(t.empty() || type.empty() || t == type, f->path(), " was made by a ", t, " model but ", source,
               " by a ", type, " model: give --freq-limit");
      if (!t.empty() && type.empty()) type = t, source = f->path();
    }
    if (!type.empty()) {
      source = "attribute.json beside " + source;
    } else if (npz && npz->has("y") && npz->shape("y").size() == 4) {
      type = "profile", source = "--npz profile counts";
    } else {
      type = "binary", source = "default (no attribute.json, no profile counts in --npz)";
    }
  }
  const int64_t K = a.freq_limit >= 0 ? a.freq_limit : default_freq_limit(type, L);
  eval::AttrMetricsAccumulator acc(L, K, hyp && a.summit_center, hyp && masked);
  size_t e = 0;  // rows[b, e): the selected rows among [s, end)
  for (int64_t s = 0; s < N; s += a.attr_chunk) {
    const int64_t end = std::min(N, s + a.attr_chunk);
    const size_t b = e;
    while (e < rows.size() && rows[e] < end) ++e;
    if (b == e && !scan) continue;
    std::vector<std::vector<double>> oh;       // the one-hot of rows[b, e), or of every row [s, end) when scanning
    std::vector<std::vector<uint8_t>> found;  // scanning: the sites of every row [s, end)
    if (scan) {
      std::vector<int64_t> every(static_cast<size_t>(end - s));
      std::iota(every.begin(), every.end(), s);
      oh = ohe->rows(ctx, every, 0, every.size());
      for (int64_t i = s; i < end; ++i) {
        const auto h = eval::scan_sequence(eval::decode_one_hot(oh[i - s], L, a.ohe + " row " + std::to_string(i)),
                                           motifs, so);
        found.push_back(eval::hit_mask(h, L));
        hits += static_cast<double>(h.size());
        for (auto m : found.back()) covered += m;
      }
    } else if (ohe) {
      oh = ohe->rows(ctx, rows, b, e);
    }
    const std::vector<std::vector<double>> h = hyp ? hyp->rows(ctx, rows, b, e) : std::vector<std::vector<double>>();
    std::vector<std::vector<std::vector<double>>> ta, tb;  // (model, row of the chunk) of each set
    for (auto& f : A) ta.push_back(f.rows(ctx, rows, b, e));
    for (auto& f : B) tb.push_back(f.rows(ctx, rows, b, e));
    std::vector<const std::vector<double>*> pa(A.size()), pb(B.size());
    for (size_t k = b; k < e; ++k) {
      const int64_t i = rows[k];
      const size_t r = k - b;
      for (size_t m = 0; m < A.size(); ++m) pa[m] = &ta[m][r];
      for (size_t m = 0; m < B.size(); ++m) pb[m] = &tb[m][r];
      const std::vector<uint8_t>* sites = !masked ? nullptr : scan ? &found[i - s] : &site_masks[i];
      acc.add(ohe ? &oh[scan ? static_cast<size_t>(i - s) : r] : nullptr, sites, hyp ? &h[r] : nullptr, pa, pb);
    }
  }
  nlohmann::json motif_info;
  if (scan) {
    nlohmann::json names = nlohmann::json::array();
    for (const auto& m : motifs) names.push_back(m.id + (m.name.empty() ? "" : " " + m.name));
    motif_info = {{"source", a.motifs}, {"motifs", names}, {"threshold", a.motif_threshold},
                  {"pseudocount", a.motif_pseudocount}, {"hits_per_sequence", hits / N},
                  {"position_fraction_in_sites", covered / (static_cast<double>(N) * L)}};
  } else if (!a.motif_positions.empty()) {
    motif_info = {{"source", a.motif_positions}, {"split", a.motif_split},
                  {"position_fraction_in_sites", covered / (static_cast<double>(N) * L)}};
  }
  const eval::AttrPerExample& pe = acc.per_example();
  auto summary = [&](const std::vector<ExampleAttr>& e) {
    nlohmann::json j = {{"entropy", mean_sem(column(e, &ExampleAttr::entropy))},
                        {"hf_share", mean_sem(column(e, &ExampleAttr::hf_share))}, {"freq_limit", K},
                        {"freq_limit_from", a.freq_limit >= 0 ? source : source + ": " + type + " model"}};
    if (masked) j["motif_fraction"] = mean_sem(column(e, &ExampleAttr::motif_fraction));
    return j;
  };
  if (hyp) {
    nlohmann::json it = summary(pe.attr);
    it["rows"] = a.rows;
    it["n"] = static_cast<int64_t>(rows.size());
    if (masked) {
      it["motif_overlap_auprc"] = num(acc.overlap_auprc());
      it["motif_sites"] = motif_info;
    }
    // §4.5: attribution should fall off away from the summit (negative = it does)
    if (a.summit_center) it["summit_distance_spearman"] = mean_sem(pe.summit_spearman);
    doc["interpretability"] = it;
  }
  if (!A.empty()) {
    nlohmann::json st = {{"jaccard_a", mean_sem(pe.a.jaccard)}, {"cosine_a", mean_sem(pe.a.cosine)},
                         {"models_a", A.size()}, {"n", static_cast<int64_t>(rows.size())}, {"rows", a.rows}};
    if (ohe) st["attr_a"] = summary(pe.attr_a);
    if (!B.empty()) {
      st["jaccard_b"] = mean_sem(pe.b.jaccard);
      st["cosine_b"] = mean_sem(pe.b.cosine);
      st["models_b"] = B.size();
      st["jaccard_ab"] = mean_sem(pe.ab.jaccard);  // §4.4: similarity across the two sets
      st["cosine_ab"] = mean_sem(pe.ab.cosine);
      // one-sided paired Wilcoxon over examples, H1: set A better (more consistent, smoother, sparser, more
      // attribution in motif sites)
      st["wilcoxon_a_greater_p"] = num(eval::wilcoxon_greater(pe.a.jaccard, pe.b.jaccard));
      st["wilcoxon_cosine_a_greater_p"] = num(eval::wilcoxon_greater(pe.a.cosine, pe.b.cosine));
      if (ohe) {
        st["attr_b"] = summary(pe.attr_b);
        st["wilcoxon_hf_share_a_less_p"] = num(eval::wilcoxon_greater(column(pe.attr_b, &ExampleAttr::hf_share),
                                                                      column(pe.attr_a, &ExampleAttr::hf_share)));
        st["wilcoxon_entropy_a_less_p"] = num(eval::wilcoxon_greater(column(pe.attr_b, &ExampleAttr::entropy),
                                                                     column(pe.attr_a, &ExampleAttr::entropy)));
        if (masked)
          st["wilcoxon_motif_fraction_a_greater_p"] =
              num(eval::wilcoxon_greater(column(pe.attr_a, &ExampleAttr::motif_fraction),
                                         column(pe.attr_b, &ExampleAttr::motif_fraction)));
      }
    }
    if (!motif_info.is_null()) st["motif_sites"] = motif_info;
    doc["stability"] = st;
  }
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
  sub->add_option("--freq-limit", a->freq_limit,
                  "K of the high-frequency share (default: the paper's cut-off at the attributions' length L for "
                  "the model type, round(200 L / 1346) for profile models, round(0.15 L) for binary; the type from "
                  "attribute.json beside the attribution files, else profile when --npz holds profile counts)")
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
  sub->add_option("--attr-chunk", a->attr_chunk,
                  "Rows of --ohe, --attr and the --attr-sets files read at a time (memory; the output does not "
                  "depend on it)")
      ->check(integer_at_least(1, "--attr-chunk"))
      ->group("");  // hidden: for tests (chunk boundaries inside N)
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
    // Before the rows are read, not at the final rename after them.
    LP_CHECK(!std::filesystem::is_directory(a->out), a->out, ": is a folder; --out names the metrics file (e.g. ",
             (std::filesystem::path(a->out) / "metrics.json").string(), ")");
    // An existing folder this user cannot write into: said now, not after the pass over the rows.
    check_output_folder(std::filesystem::path(a->out).parent_path().string(), "the folder of --out");
    Context ctx(a->threads, 0);
    nlohmann::json doc;
    if (!a->npz.empty() && (!a->predictions.empty() || !a->models.empty())) {
      const auto [key, metrics] = predictive_metrics(ctx, *a);
      doc[key] = metrics;
    }
    if (!a->attr.empty() || !a->sets_a.empty()) attribution_metrics(ctx, *a, doc);
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
