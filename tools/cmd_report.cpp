// `lowpass report --out DIR [--runs D1,D2 --labels a,b] [--attr A.npz,B.npz --ohe O.npz --examples 0,5]
//   [--metrics m1.json,… --metric-labels x,…]`: one self-contained HTML page (inline SVG written by the small writer
// below): training curves and validation metrics per epoch from metrics.jsonl, the runs' test metrics, attribution
// logos, mean Fourier spectra of Σ_b |actual score| (DC dropped, normalised, K marked), metric tables.
// Test: python/tests/test_report.py; docs/evaluation.md ("Report").
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/npz.h"
#include "engine/safetensors.h"
#include "models/attr/model_dir.h"
#include "models/loss/fourier_prior.h"
#include "models/loss/profile_loss.h"
#include "tools/cli_checks.h"
#include "tools/svg.h"
#include "tools/commands.h"

namespace lowpass::tools {

namespace {
namespace fs = std::filesystem;
using namespace svg;
std::vector<double> read_all(Context& ctx, const std::string& path, Shape& shape) {
  auto arrays = npy::load_npz(path);
  LP_CHECK(!arrays.empty(), path, ": empty npz");
  const npy::Array& a = arrays.count("arr_0") ? arrays.at("arr_0") : arrays.begin()->second;
  LP_CHECK(a.shape.size() == 3 && a.shape[1] == 4, path, ": expected (N, 4, L), got ", shape_str(a.shape));
  shape = a.shape;
  return attr::array_rows(ctx, a, 0, a.shape[0], DType::F64, path).to_vector<double>();
}

// Mean over examples of |DFT| of Σ_b |actual| (frequencies 1..L/2), each normalised to sum 1.
std::vector<double> mean_spectrum(const std::vector<double>& act, const Shape& s, int64_t max_examples) {
  const int64_t N = std::min(s[0], max_examples), L = s[2], K = L / 2;
  std::vector<double> spec(K, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> m(L, 0.0);
    for (int c = 0; c < 4; ++c)
      for (int64_t l = 0; l < L; ++l) m[l] += std::fabs(act[(n * 4 + c) * L + l]);
    std::vector<double> mag(K);
    double tot = 0;
    for (int64_t k = 1; k <= K; ++k) {
      double re = 0, im = 0;
      for (int64_t l = 0; l < L; ++l) {
        double ang = 2 * M_PI * static_cast<double>(k * l % L) / static_cast<double>(L);
        re += m[l] * std::cos(ang);
        im -= m[l] * std::sin(ang);
      }
      tot += mag[k - 1] = std::hypot(re, im);
    }
    for (int64_t k = 0; k < K; ++k) spec[k] += tot > 0 ? mag[k] / tot / static_cast<double>(N) : 0.0;
  }
  return spec;
}

// A JSON value as table text: numbers rounded by fmt, lists of numbers (per-task values) element by element.
std::string cell(const nlohmann::json& j) {
  if (j.is_number_float()) return fmt(j.get<double>());
  if (j.is_array() && std::all_of(j.begin(), j.end(), [](const nlohmann::json& e) { return e.is_number(); })) {
    std::string s = "[";
    for (size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + cell(j[i]);
    return s + "]";
  }
  return j.is_string() ? j.get<std::string>() : j.dump();
}
void flatten(const nlohmann::json& j, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& rows) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), rows);
  } else if (j.is_array() && !j.empty() && j[0].is_object()) {
    for (size_t i = 0; i < j.size(); ++i) flatten(j[i], prefix + "[" + std::to_string(i) + "]", rows);
  } else {
    rows.push_back({prefix, cell(j)});
  }
}

nlohmann::json read_json(const fs::path& p, const std::string& what) {
  std::ifstream f(p);
  LP_CHECK(f.good(), what, ": cannot read ", p.string());
  try {
    return nlohmann::json::parse(f);
  } catch (const std::exception&) {
    throw Error(what + ": " + p.string() + " is not JSON");
  }
}

// The validation metrics drawn per epoch besides the losses (docs/cli.md, metrics.jsonl), in page order.
const std::vector<std::pair<std::string, std::string>> kValidMetrics = {
    {"valid_auroc", "validation auROC (mean over tasks)"},
    {"valid_nll", "validation profile NLL"},
    {"valid_jsd", "validation profile JSD"},
    {"valid_count_pearson", "validation log-count Pearson r"}};
// Logos of more than kZoomAbove positions get a zoom on the kZoom positions of the largest attribution.
constexpr int64_t kZoomAbove = 120, kZoom = 60;
const std::vector<std::string> kLossOrder = {"valid_total_loss", "train_total_loss", "valid_task_loss",
                                             "train_task_loss",  "valid_prior_loss", "train_prior_loss"};

// The test table's columns: key in test_metrics.json, heading, decimals (-1: fmt's 4 significant digits).
struct TestColumn {
  const char* key;
  const char* head;
  int decimals;
};
const TestColumn kTestColumns[] = {
    {"test_auroc", "auROC", 4},           {"test_nll", "NLL", 1},
    {"test_uniform_nll", "NLL (flat)", 1}, {"test_jsd", "JSD", 4},
    {"test_count_pearson", "count Pearson", 4}, {"test_count_spearman", "count Spearman", 4},
    {"test_task_loss", "task loss", -1},  {"test_prior_loss", "prior loss", -1},
    {"test_examples", "examples", 0},     {"best_epoch", "best epoch", 0}};

// The prior's cut-off K of the runs whose input length is L (config.json), else the paper's cut-off at L for the
// model type as evaluate takes it (profile round(200·L/1346), otherwise round(0.15·L)): the runs' type, or without
// runs, the attribute.json beside every attribution file (`attrs`, N rows).
std::vector<Marker> spectrum_markers(const std::vector<std::string>& runs, const std::vector<std::string>& attrs,
                                     int64_t N, int64_t L) {
  std::set<int64_t> fourier, other;
  bool any = false, all_profile = true;
  for (const auto& r : runs) {
    const fs::path p = fs::path(r) / "config.json";
    if (!fs::exists(p)) continue;
    const auto c = read_json(p, "--runs");
    const auto* model = c.contains("model") ? &c["model"] : nullptr;
    any = true;
    all_profile = all_profile && model && model->is_object() && model->value("type", std::string()) == "profile";
    if (!model || !model->contains("input_length") || !(*model)["input_length"].is_number_integer() ||
        (*model)["input_length"].get<int64_t>() != L)
      continue;
    if (!c.contains("prior") || !c["prior"].contains("freq_limit") || !c["prior"]["freq_limit"].is_number()) continue;
    const int64_t K = c["prior"]["freq_limit"].get<int64_t>();
    (c["prior"].value("type", "") == "fourier" ? fourier : other).insert(K);
  }
  const std::set<int64_t>& ks = !fourier.empty() ? fourier : other;
  std::vector<Marker> m;
  for (int64_t K : ks) m.push_back({static_cast<double>(K), "K = " + std::to_string(K) + " (prior freq_limit)"});
  if (m.empty()) {
    if (!any)
      all_profile = std::all_of(attrs.begin(), attrs.end(),
                                [&](const std::string& f) { return attribution_model_type(f, N, L) == "profile"; });
    const bool profile = (any || !attrs.empty()) && all_profile;
    const int64_t K = default_freq_limit(profile ? "profile" : "binary", L);
    m.push_back({static_cast<double>(K), "K = " + std::to_string(K) + (profile ? " = round(200·L/1346)" : " = round(0.15·L)")});
  }
  return m;
}

// Row → "chrom:start-end" (BED coordinates) from regions.bed beside an attribution file (attribute --regions).
std::vector<std::string> read_regions(const std::string& attr_path, int64_t n) {
  const fs::path p = fs::path(attr_path).parent_path() / "regions.bed";
  if (!fs::exists(p)) return {};
  std::ifstream f(p);
  LP_CHECK(f.good(), p.string(), ": cannot read");
  std::vector<std::string> r;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string chrom, start, end;
    ss >> chrom >> start >> end;
    LP_CHECK(!end.empty(), p.string(), ":", r.size() + 1, ": expected chrom, start, end");
    r.push_back(chrom + ":" + start + "-" + end);
  }
  LP_CHECK(static_cast<int64_t>(r.size()) == n, p.string(), " has ", r.size(), " regions but ", attr_path, " has ",
           n, " rows; is it the regions file of another attribution?");
  return r;
}

// "label (path), …" of a list of files or run folders (+ `file` inside each folder), for the text that says where
// each picture came from.
std::string sources(const std::vector<std::string>& paths, const std::vector<std::string>& labels,
                    const std::string& file) {
  std::string r;
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string path = file.empty() ? paths[i] : (fs::path(paths[i]) / file).string();
    r += (i ? ", " : "") + (i < labels.size() ? esc(labels[i]) + " (" + esc(path) + ")" : esc(path));
  }
  return r;
}

// Why --labels / --metric-labels do not fit their lists ("" when they do).
std::string report_label_mismatch(const ReportArgs& a) {
  const size_t nl = split_list(a.labels).size(), nr = split_list(a.runs).size(), na = split_list(a.attr).size();
  const size_t nm = split_list(a.metrics).size(), nml = split_list(a.metric_labels).size();
  std::ostringstream o;
  if (nl && nr && nl != nr) o << "--labels gives " << nl << " names for " << nr << " --runs directories";
  else if (nl && na && nl != na)
    o << "--labels gives " << nl << " names for " << na << " --attr files (it names the runs and the attribution "
      << "sets in order; leave it out to use the file names)";
  else if (nl && !nr && !na) o << "--labels names --runs or --attr, and neither is given (--metric-labels names "
                                  "--metrics files)";
  else if (nml && nml != nm) o << "--metric-labels gives " << nml << " names for " << nm << " --metrics files";
  return o.str();
}
}  // namespace

std::string write_report(const ReportArgs& args) {
  const ReportArgs* a = &args;
  Context ctx(0, 0);
  const std::string mismatch = report_label_mismatch(*a);
  LP_CHECK(mismatch.empty(), mismatch);
  auto labels = split_list(a->labels);
  auto label = [&](size_t i, const std::string& fallback) { return i < labels.size() ? labels[i] : fallback; };
  std::ostringstream html;
  html << page_head("lowpass report");
  // Training curves and validation metrics per epoch; test metrics.
  auto runs = split_list(a->runs);
  if (!runs.empty()) {
    std::map<std::string, std::vector<Series>> by_key, baselines;
    std::vector<std::string> notes;
    for (size_t ri = 0; ri < runs.size(); ++ri) {
      const std::string path = (fs::path(runs[ri]) / "metrics.jsonl").string(), name = label(ri, runs[ri]);
      std::ifstream f(path);
      LP_CHECK(f.good(), "--runs: ", path, " not found");
      std::string line;
      int64_t ln = 0;
      std::map<std::string, Series> ser;
      while (std::getline(f, line)) {
        if (line.empty()) continue;
        ++ln;
        nlohmann::json j;
        try {
          j = nlohmann::json::parse(line);
        } catch (const std::exception&) {
          throw Error(path + " line " + std::to_string(ln) + ": not JSON");
        }
        double x = j.contains("epoch") && j["epoch"].is_number() ? j["epoch"].get<double>() : static_cast<double>(ln);
        for (auto it = j.begin(); it != j.end(); ++it) {
          const std::string& k = it.key();
          const bool valid_metric = std::any_of(kValidMetrics.begin(), kValidMetrics.end(),
                                                [&](const auto& m) { return m.first == k; });
          const bool baseline = k == "valid_uniform_nll" || k == "valid_uniform_jsd";
          if (!it.value().is_number() || (k.find("loss") == std::string::npos && !valid_metric && !baseline)) continue;
          auto& s = ser[k];
          s.name = name;
          s.color = static_cast<int>(ri);  // a run keeps its colour on every chart
          s.x.push_back(x);
          s.y.push_back(it.value().get<double>());
        }
      }
      if (ln == 0)
        notes.push_back(name + ": no completed epoch (" + path + " is empty: the run stopped, by max_steps or a "
                        "signal, before its first epoch ended)");
      for (auto& [k, s] : ser) {
        if (k == "valid_uniform_nll" || k == "valid_uniform_jsd") {  // a flat profile's, drawn dashed beside
          s.name += " (flat profile)";
          s.dashed = true;
          baselines[k == "valid_uniform_nll" ? "valid_nll" : "valid_jsd"].push_back(s);
        } else {
          by_key[k].push_back(s);
        }
      }
    }
    for (auto& [k, b] : baselines)
      if (by_key.count(k)) by_key[k].insert(by_key[k].end(), b.begin(), b.end());
    html << "<h2>Training curves</h2><p>Per epoch, from each run's metrics.jsonl (docs/cli.md): the validation "
            "metrics, then every loss; one colour per run on every chart. Runs: "
         << sources(runs, labels, "metrics.jsonl") << ".</p>";
    for (auto& n : notes) html << "<p class='note'>" << esc(n) << "</p>";
    std::vector<std::pair<std::string, std::string>> order;  // key, chart title
    for (auto& [k, t] : kValidMetrics)
      if (by_key.count(k)) order.push_back({k, t});
    for (auto& k : kLossOrder)
      if (by_key.count(k)) order.push_back({k, k});
    for (auto& [k, s] : by_key)
      if (std::none_of(order.begin(), order.end(), [&](const auto& o) { return o.first == k; }))
        order.push_back({k, k});
    for (auto& [k, t] : order) html << line_chart(t, by_key[k], {"epoch", true}, {k});
    // Test metrics: one row per run.
    std::vector<nlohmann::json> tests(runs.size());
    std::vector<const TestColumn*> cols;
    for (size_t ri = 0; ri < runs.size(); ++ri) {
      const fs::path p = fs::path(runs[ri]) / "test_metrics.json";
      if (fs::exists(p)) tests[ri] = read_json(p, "--runs");
    }
    for (const auto& c : kTestColumns)
      if (std::any_of(tests.begin(), tests.end(), [&](const auto& t) { return t.contains(c.key); }))
        cols.push_back(&c);
    html << "<h2>Test metrics</h2><table class='test'><tr><th>run</th>";
    for (auto* c : cols) html << "<th title='" << c->key << "'>" << c->head << "</th>";
    html << "</tr>";
    for (size_t ri = 0; ri < runs.size(); ++ri) {
      html << "<tr><td>" << esc(label(ri, runs[ri])) << "</td>";
      if (tests[ri].is_null()) {
        html << "<td colspan='" << std::max<size_t>(1, cols.size()) << "'>no test_metrics.json (no test data, or "
             << "the run stopped before its last epoch)</td></tr>";
        continue;
      }
      for (auto* c : cols) {
        const auto& t = tests[ri];
        std::string v;
        if (t.contains(c->key) && t[c->key].is_number())
          v = c->decimals < 0 ? fmt(t[c->key].get<double>()) : fixed(t[c->key].get<double>(), c->decimals);
        html << "<td class='num'>" << v << "</td>";
      }
      html << "</tr>";
    }
    html << "</table><p>The best weights on the run's test data (RUN/test_metrics.json; docs/cli.md).</p>";
  }
  // Attribution logos and spectra.
  auto attrs = split_list(a->attr);
  if (!attrs.empty()) {
    LP_CHECK(!a->ohe.empty(), "--attr needs --ohe");
    Shape so;
    auto ohe = read_all(ctx, a->ohe, so);
    const int64_t L = so[2];
    std::vector<Series> spectra;
    html << "<h2>Attributions (actual scores = hypothetical ⊙ one-hot)</h2><p>Sets: " << sources(attrs, labels, "")
         << "; one-hot sequences " << esc(a->ohe) << ". Letter height is the score of the base present (above the "
         << "axis positive, below negative); each logo is scaled to its own largest |score|, given in its title.</p>";
    std::vector<std::vector<double>> acts;
    std::vector<std::vector<std::string>> regions;
    for (size_t ai = 0; ai < attrs.size(); ++ai) {
      Shape sa;
      auto v = read_all(ctx, attrs[ai], sa);
      LP_CHECK(sa == so, attrs[ai], ": shape ", shape_str(sa), " differs from ", a->ohe, " ", shape_str(so));
      for (size_t i = 0; i < v.size(); ++i) v[i] *= ohe[i];
      acts.push_back(v);
      regions.push_back(read_regions(attrs[ai], so[0]));
      Series s{label(ai, attrs[ai]), {}, mean_spectrum(v, sa, a->spectrum_examples)};
      for (size_t k = 0; k < s.y.size(); ++k) s.x.push_back(static_cast<double>(k + 1));
      spectra.push_back(s);
    }
    for (const auto& e : split_list(a->examples)) {
      int64_t i = std::stoll(e);
      LP_CHECK(i >= 0 && i < so[0], "--examples: index ", i, " out of range (", so[0], " examples)");
      int64_t from = 0, to = L;
      if (a->window > 0 && a->window < L) { from = (L - a->window) / 2; to = from + a->window; }
      // A window wider than kZoomAbove bases is drawn too small to read its letters: each set's logo is followed by
      // a zoom on the kZoom bases around the largest attribution (of every set, each scaled to its maximum), the
      // same window for every set and shaded in the overview.
      int64_t zf = 0, zt = 0;
      if (to - from > kZoomAbove) {
        std::vector<double> w(static_cast<size_t>(L), 0.0);
        for (const auto& act : acts) {
          std::vector<double> s(static_cast<size_t>(L), 0.0);
          double mx = 0;
          for (int64_t l = 0; l < L; ++l) {
            for (int c = 0; c < 4; ++c) s[l] += std::fabs(act[(i * 4 + c) * L + l]);
            mx = std::max(mx, s[l]);
          }
          for (int64_t l = 0; l < L; ++l) w[l] += mx > 0 ? s[l] / mx : 0.0;
        }
        double best = -1;  // the kZoom-base window of the largest sum inside [from, to); the first of equals
        for (int64_t z = from; z + kZoom <= to; ++z) {
          double sum = 0;
          for (int64_t l = z; l < z + kZoom; ++l) sum += w[l];
          if (sum > best + 1e-12) best = sum, zf = z;
        }
        zt = zf + kZoom;
      }
      html << "<h3>Example " << i;
      if (!regions[0].empty()) html << " (" << esc(regions[0][i]) << ")";
      html << "</h3>";
      for (size_t ai = 0; ai < acts.size(); ++ai) {
        std::vector<double> one(acts[ai].begin() + i * 4 * L, acts[ai].begin() + (i + 1) * 4 * L);
        std::string title = shorten(label(ai, attrs[ai]), 60) + " · example " + std::to_string(i);
        if (!regions[ai].empty()) title += " · " + regions[ai][i];
        html << "<div>" << logo(title + " · positions " + std::to_string(from) + "–" + std::to_string(to - 1), one, L,
                                from, to, {0, zf, zt});
        if (zt > zf)
          html << logo(title + " · zoom: positions " + std::to_string(zf) + "–" + std::to_string(zt - 1) +
                           " (largest attribution)",
                       one, L, zf, zt);
        html << "</div>";
      }
    }
    const int64_t N = std::min(so[0], a->spectrum_examples);
    html << "<h2>Mean Fourier spectrum of |attribution|</h2>"
         << line_chart("normalised |DFT| of Σ_b |actual| (DC dropped), mean of " + std::to_string(N) + " examples",
                       spectra, {"frequency k (cycles per " + std::to_string(L) + " bp window)", true},
                       {"share of Σ_k |DFT| (log)", false, true}, spectrum_markers(runs, attrs, so[0], L))
         << "<p>k/L cycles per base; the high-frequency share of lowpass evaluate counts k &gt; K.</p>";
  }
  // Observed and predicted profiles (profile models): the counts of --npz against each prediction file's expected
  // counts, softmax(profile logits) · (exp(log counts) − 1) (the counts head predicts log(1 + n)).
  auto preds = split_list(a->predictions);
  if (!preds.empty()) {
    Context ctx(1, 0);
    auto values = [&](const std::map<std::string, npy::Array>& arrays, const std::string& key, const std::string& file,
                      Shape& shape) {
      LP_CHECK(arrays.count(key), file, ": no array '", key, "'");
      shape = arrays.at(key).shape;
      return arrays.at(key).to_tensor(ctx, DType::F64, file + ":" + key).to_vector<double>();
    };
    Shape ys;
    const auto y = values(npy::load_npz(a->npz), "y", a->npz, ys);
    LP_CHECK(ys.size() == 4, a->npz, ": y is ", shape_str(ys), "; the profile plots need observed counts (N, T, S, O)");
    const int64_t N = ys[0], T = ys[1], S = ys[2], O = ys[3];
    auto plabels = split_list(a->prediction_labels);
    std::vector<std::vector<double>> expected;  // per prediction file (N, T, S, O)
    for (const auto& p : preds) {
      const auto arrays = npy::load_npz(p);
      LP_CHECK(arrays.count("profile_logits"), p, ": no array 'profile_logits'");
      const Tensor lg = arrays.at("profile_logits").to_tensor(ctx, DType::F64, p + ":profile_logits");
      Shape cs;
      const auto lc = values(arrays, "log_counts", p, cs);
      LP_CHECK(lg.shape() == ys && cs == Shape({N, T, S}), p, ": profile_logits ", shape_str(lg.shape()),
               " and log_counts ", shape_str(cs), " do not match y ", shape_str(ys), " of ", a->npz);
      std::vector<double> e = exp(log_softmax(lg, 3)).to_vector<double>();  // probabilities over the positions
      for (int64_t r = 0; r < N * T * S; ++r) {
        const double total = predicted_total(lc[static_cast<size_t>(r)]);
        for (int64_t o = 0; o < O; ++o) e[static_cast<size_t>(r * O + o)] *= total;
      }
      expected.push_back(std::move(e));
    }
    const std::vector<std::string> where = read_regions(preds[0], N);
    html << "<h2>Observed and predicted profiles</h2><p>Observed counts of " << esc(a->npz)
         << " (solid) and each model's expected counts, softmax(profile logits) · (exp(log counts) − 1) (dashed: "
         << sources(preds, plabels, "") << "), per position of the output window"
         << (S == 2 ? "; the − strand is drawn below 0" : "") << ".</p>";
    for (const auto& e : split_list(a->examples)) {
      const int64_t i = std::stoll(e);
      LP_CHECK(i >= 0 && i < N, "--examples: index ", i, " out of range (", N, " examples in ", a->npz, ")");
      for (int64_t t = 0; t < std::min<int64_t>(T, 4); ++t) {
        std::vector<Series> series;
        // Observed in black; each predictions file in the colour of its place in the list (the runs' colours when
        // --predictions lists the runs' files in --runs order); two strands drawn as usual for stranded profiles,
        // the − strand below 0, instead of one colour per strand that took the runs' colours.
        for (int64_t s = 0; s < S; ++s) {
          const std::string strand = S == 1 ? "" : s == 0 ? " (+)" : " (−)";
          const double sign = S == 2 && s == 1 ? -1.0 : 1.0;
          Series obs{"observed" + strand, {}, {}, false, kBlack};
          for (int64_t o = 0; o < O; ++o)
            obs.x.push_back(static_cast<double>(o)),
                obs.y.push_back(sign * y[static_cast<size_t>(((i * T + t) * S + s) * O + o)]);
          series.push_back(obs);
          for (size_t pi = 0; pi < expected.size(); ++pi) {
            Series pr{(pi < plabels.size() ? plabels[pi] : preds[pi]) + strand, {}, {}, true, static_cast<int>(pi)};
            for (int64_t o = 0; o < O; ++o)
              pr.x.push_back(static_cast<double>(o)),
                  pr.y.push_back(sign * expected[pi][static_cast<size_t>(((i * T + t) * S + s) * O + o)]);
            series.push_back(pr);
          }
        }
        std::string title = "example " + std::to_string(i) + (T > 1 ? " · task " + std::to_string(t) : "");
        if (!where.empty()) title += " · " + where[static_cast<size_t>(i)];
        html << "<div>"
             << line_chart(title, series, {"position in the output window", true},
                           {S == 2 ? "counts per base (− strand below 0)" : "counts per base", false})
             << "</div>";
      }
    }
  }
  // Metric tables.
  auto metrics = split_list(a->metrics);
  if (!metrics.empty()) {
    auto mlabels = split_list(a->metric_labels);
    html << "<h2>Metrics</h2><table><tr><th>metric</th>";
    std::vector<std::map<std::string, std::string>> cols;
    std::vector<std::string> order;
    for (size_t mi = 0; mi < metrics.size(); ++mi) {
      const nlohmann::json j = read_json(metrics[mi], "--metrics");
      std::vector<std::pair<std::string, std::string>> rows;
      flatten(j, "", rows);
      std::map<std::string, std::string> c;
      for (auto& [k, v] : rows) {
        if (!c.count(k) && std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
        c[k] = v;
      }
      cols.push_back(c);
      html << "<th>" << esc(mi < mlabels.size() ? mlabels[mi] : metrics[mi]) << "</th>";
    }
    html << "</tr>";
    for (auto& k : order) {
      html << "<tr><td>" << esc(k) << "</td>";
      for (auto& c : cols) html << "<td>" << esc(c.count(k) ? c[k] : "") << "</td>";
      html << "</tr>";
    }
    html << "</table>";
  }
  html << "</body></html>\n";
  // Only now, with the page complete, is anything written: a failed report leaves no folder behind.
  const fs::path index = fs::path(a->out) / "index.html";
  std::error_code ec;
  fs::create_directories(a->out, ec);
  LP_CHECK(!ec, "--out: cannot create ", a->out, ": ", ec.message());
  safetensors::write_file_atomic(index.string(), html.str());  // temp + rename: a full disk keeps the earlier page
  return index.string();
}

CommandRun add_report_command(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* sub = app.add_subcommand(
      "report", "An HTML page with training curves, test metrics, attribution logos, spectra, metrics");
  sub->add_option("--out", a->out, "Output directory (index.html)")->required();
  sub->add_option("--runs", a->runs, "Comma-separated model directories (metrics.jsonl, test_metrics.json)");
  sub->add_option("--labels", a->labels,
                  "Comma-separated names of the runs and of the attribution sets (as many as each list)");
  CLI::Option* attr =
      sub->add_option("--attr", a->attr, "Comma-separated attr.npz (hypothetical scores), e.g. with and without prior");
  attr->needs(sub->add_option("--ohe", a->ohe, "ohe.npz matching the attr files"));
  sub->add_option("--examples", a->examples, "Comma-separated example indices to draw as logos")->check(index_list());
  sub->add_option("--window", a->window, "Logo width in bases around the centre (0 = whole sequence)")
      ->check(integer_at_least(0));
  sub->add_option("--spectrum-examples", a->spectrum_examples, "Examples averaged into the spectra")
      ->check(integer_at_least(1));
  CLI::Option* preds = sub->add_option("--predictions", a->predictions,
                                       "Comma-separated predictions.npz of profile models (lowpass predict) to draw "
                                       "against the observed counts of --npz, for the --examples");
  CLI::Option* npz = sub->add_option("--npz", a->npz, "Data npz with the observed counts y (N, T, S, O), e.g. from "
                                                       "lowpass export; with --predictions");
  preds->needs(npz);
  npz->needs(preds);  // alone it would be read for nothing
  sub->add_option("--prediction-labels", a->prediction_labels,
                  "Comma-separated names of the --predictions files (default: their paths)")
      ->needs(preds);
  sub->add_option("--metrics", a->metrics, "Comma-separated metrics JSON files (lowpass evaluate) to tabulate");
  sub->add_option("--metric-labels", a->metric_labels,
                  "Comma-separated column names of the --metrics files (default: their paths)");
  // A label count that does not match its list is a usage mistake (exit code 2).
  sub->parse_complete_callback([a]() {
    const std::string m = report_label_mismatch(*a);
    usage_check(m.empty(), m);
  });
  return [a]() {
    const std::string index = write_report(*a);  // first the page, then the line: nothing on stdout if it fails
    std::cout << "wrote " << index << "\n";
    return 0;
  };
}

}  // namespace lowpass::tools
