// `lowpass report --out DIR [--runs D1,D2 --labels a,b] [--attr A.npz,B.npz --ohe O.npz --examples 0,5]
//   [--metrics m1.json,…]`: one self-contained HTML page (inline SVG written by the small writer
// below): training curves from metrics.jsonl, attribution logos, mean Fourier spectra of
// Σ_b |actual score| (DC dropped, normalised), metric tables. Test: docs/evaluation.md (rendered in Chromium).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/npz.h"
#include "models/attr/model_dir.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"

namespace lowpass::tools {

namespace {
const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
const char* kBaseColor[] = {"#109648", "#255C99", "#F7B32B", "#D62839"};  // A C G T
const char kBase[] = {'A', 'C', 'G', 'T'};

std::string esc(const std::string& s) {
  std::string r;
  for (char c : s) r += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return r;
}
std::string fmt(double v) {
  std::ostringstream o;
  o.precision(4);
  o << v;
  return o.str();
}

// Minimal SVG: a line chart of several series on shared axes.
struct Series {
  std::string name;
  std::vector<double> x, y;
};
std::string line_chart(const std::string& title, const std::vector<Series>& series, bool logy = false) {
  const double W = 520, H = 300, l = 60, r = 130, t = 30, b = 40;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto ty = [&](double v) { return logy ? std::log10(std::max(v, 1e-12)) : v; };
  for (auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, ty(s.y[i]));
      y1 = std::max(y1, ty(s.y[i]));
    }
  if (!(x1 > x0)) { x0 -= 1; x1 += 1; }
  if (!(y1 > y0)) { y0 -= 1; y1 += 1; }
  auto px = [&](double v) { return l + (v - x0) / (x1 - x0) * (W - l - r); };
  auto py = [&](double v) { return H - b - (ty(v) - y0) / (y1 - y0) * (H - t - b); };
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='11'>"
    << "<rect width='100%' height='100%' fill='white'/>"
    << "<text x='" << l << "' y='18' font-size='13'>" << esc(title) << "</text>"
    << "<line x1='" << l << "' y1='" << H - b << "' x2='" << W - r << "' y2='" << H - b << "' stroke='black'/>"
    << "<line x1='" << l << "' y1='" << t << "' x2='" << l << "' y2='" << H - b << "' stroke='black'/>";
  for (int k = 0; k <= 4; ++k) {
    double xv = x0 + (x1 - x0) * k / 4, yv = y0 + (y1 - y0) * k / 4;
    double yl = logy ? std::pow(10.0, yv) : yv;
    o << "<text x='" << px(xv) << "' y='" << H - b + 14 << "' text-anchor='middle'>" << fmt(xv) << "</text>"
      << "<text x='" << l - 4 << "' y='" << (H - b - (yv - y0) / (y1 - y0) * (H - t - b)) + 4 << "' text-anchor='end'>"
      << fmt(yl) << "</text>";
  }
  for (size_t si = 0; si < series.size(); ++si) {
    const auto& s = series[si];
    o << "<polyline fill='none' stroke-width='1.5' stroke='" << kColors[si % 6] << "' points='";
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i])) o << px(s.x[i]) << "," << py(s.y[i]) << " ";
    o << "'/><text x='" << W - r + 8 << "' y='" << t + 14 * (si + 1) << "' fill='" << kColors[si % 6] << "'>"
      << esc(s.name) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

// Sequence logo of actual scores (4, L): each position's letter scaled to its score, above or below 0.
std::string logo(const std::string& title, const std::vector<double>& a, int64_t L, int64_t from, int64_t to) {
  const double cw = std::max(4.0, 900.0 / static_cast<double>(to - from)), H = 160, mid = 90, W = cw * (to - from) + 50;
  double m = 1e-12;
  for (int64_t l = from; l < to; ++l)
    for (int c = 0; c < 4; ++c) m = std::max(m, std::fabs(a[c * L + l]));
  const double scale = 70.0 / m;
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='monospace'>"
    << "<rect width='100%' height='100%' fill='white'/><text x='4' y='14' font-size='12' font-family='sans-serif'>"
    << esc(title) << " (positions " << from << "–" << to - 1 << ", max |score| " << fmt(m) << ")</text>"
    << "<line x1='40' y1='" << mid << "' x2='" << W - 10 << "' y2='" << mid << "' stroke='#999'/>";
  for (int64_t l = from; l < to; ++l)
    for (int c = 0; c < 4; ++c) {
      double v = a[c * L + l];
      if (std::fabs(v) * scale < 0.5) continue;
      double h = std::fabs(v) * scale, x = 40 + (l - from) * cw;
      // A glyph of font-size 100 spans about 72 units of cap height and 60 of width.
      double sx = cw / 60.0, sy = h / 72.0;
      double ybase = v > 0 ? mid : mid + h;
      o << "<text transform='translate(" << x << "," << ybase << ") scale(" << sx << "," << sy << ")' font-size='100' fill='"
        << kBaseColor[c] << "'>" << kBase[c] << "</text>";
    }
  o << "</svg>";
  return o.str();
}

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

void flatten(const nlohmann::json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& rows) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), rows);
  } else if (j.is_array() && !j.empty() && j[0].is_object()) {
    for (size_t i = 0; i < j.size(); ++i) flatten(j[i], prefix + "[" + std::to_string(i) + "]", rows);
  } else {
    rows.push_back({prefix, j.is_number_float() ? fmt(j.get<double>()) : j.dump()});
  }
}
}  // namespace

std::string write_report(const ReportArgs& args) {
  const ReportArgs* a = &args;
  Context ctx(0, 0);
  namespace fs = std::filesystem;
  auto labels = split_list(a->labels);
  auto label = [&](size_t i, const std::string& fallback) { return i < labels.size() ? labels[i] : fallback; };
  std::ostringstream html;
  html << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>lowpass report</title><style>body{font-family:"
          "sans-serif;margin:20px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
          "font-size:12px}svg{margin:4px}</style></head><body><h1>lowpass report</h1>";
  // Training curves.
  auto runs = split_list(a->runs);
  if (!runs.empty()) {
    std::map<std::string, std::vector<Series>> by_key;
    for (size_t ri = 0; ri < runs.size(); ++ri) {
      std::ifstream f((fs::path(runs[ri]) / "metrics.jsonl").string());
      LP_CHECK(f.good(), "--runs: ", (fs::path(runs[ri]) / "metrics.jsonl").string(), " not found");
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
          throw Error(runs[ri] + "/metrics.jsonl line " + std::to_string(ln) + ": not JSON");
        }
        double x = j.contains("epoch") && j["epoch"].is_number() ? j["epoch"].get<double>() : static_cast<double>(ln);
        for (auto it = j.begin(); it != j.end(); ++it)
          if (it.value().is_number() && it.key().find("loss") != std::string::npos) {
            auto& s = ser[it.key()];
            s.name = label(ri, fs::path(runs[ri]).filename().string());
            s.x.push_back(x);
            s.y.push_back(it.value().get<double>());
          }
      }
      for (auto& [k, s] : ser) by_key[k].push_back(s);
    }
    html << "<h2>Training curves</h2>";
    for (auto& [k, s] : by_key) html << line_chart(k, s);
  }
  // Attribution logos and spectra.
  auto attrs = split_list(a->attr);
  if (!attrs.empty()) {
    LP_CHECK(!a->ohe.empty(), "--attr needs --ohe");
    Shape so;
    auto ohe = read_all(ctx, a->ohe, so);
    const int64_t L = so[2];
    std::vector<Series> spectra;
    html << "<h2>Attributions (actual scores = hypothetical ⊙ one-hot)</h2>";
    std::vector<std::vector<double>> acts;
    for (size_t ai = 0; ai < attrs.size(); ++ai) {
      Shape sa;
      auto v = read_all(ctx, attrs[ai], sa);
      LP_CHECK(sa == so, attrs[ai], ": shape ", shape_str(sa), " differs from ", a->ohe, " ", shape_str(so));
      for (size_t i = 0; i < v.size(); ++i) v[i] *= ohe[i];
      acts.push_back(v);
      Series s{label(ai, attrs[ai]), {}, mean_spectrum(v, sa, a->spectrum_examples)};
      for (size_t k = 0; k < s.y.size(); ++k) s.x.push_back(static_cast<double>(k + 1));
      spectra.push_back(s);
    }
    for (const auto& e : split_list(a->examples)) {
      int64_t i = std::stoll(e);
      LP_CHECK(i >= 0 && i < so[0], "--examples: index ", i, " out of range (", so[0], " examples)");
      int64_t from = 0, to = L;
      if (a->window > 0 && a->window < L) { from = (L - a->window) / 2; to = from + a->window; }
      html << "<h3>Example " << i << "</h3>";
      for (size_t ai = 0; ai < acts.size(); ++ai) {
        std::vector<double> one(acts[ai].begin() + i * 4 * L, acts[ai].begin() + (i + 1) * 4 * L);
        html << "<div>" << logo(label(ai, attrs[ai]), one, L, from, to) << "</div>";
      }
    }
    html << "<h2>Mean Fourier spectrum of |attribution|</h2>" << line_chart("normalised |DFT| (DC dropped) vs frequency", spectra, true);
  }
  // Metric tables.
  auto metrics = split_list(a->metrics);
  if (!metrics.empty()) {
    html << "<h2>Metrics</h2><table><tr><th>metric</th>";
    std::vector<std::map<std::string, std::string>> cols;
    std::vector<std::string> order;
    for (size_t mi = 0; mi < metrics.size(); ++mi) {
      std::ifstream f(metrics[mi]);
      LP_CHECK(f.good(), "--metrics: cannot read ", metrics[mi]);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(f);
      } catch (const std::exception&) {
        throw Error("--metrics: " + metrics[mi] + " is not JSON");
      }
      std::vector<std::pair<std::string, std::string>> rows;
      flatten(j, "", rows);
      std::map<std::string, std::string> c;
      for (auto& [k, v] : rows) {
        if (!c.count(k) && std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
        c[k] = v;
      }
      cols.push_back(c);
      html << "<th>" << esc(label(mi, metrics[mi])) << "</th>";
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
  std::ofstream f(index);
  LP_CHECK(f.good(), "--out: cannot write ", index.string());
  f << html.str();
  f.close();
  LP_CHECK(f.good(), "--out: write failed: ", index.string());
  return index.string();
}

CommandRun add_report_command(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* sub = app.add_subcommand("report", "An HTML page with training curves, attribution logos, spectra, metrics");
  sub->add_option("--out", a->out, "Output directory (index.html)")->required();
  sub->add_option("--runs", a->runs, "Comma-separated model directories (metrics.jsonl)");
  sub->add_option("--labels", a->labels, "Comma-separated names of the runs / attribution sets");
  CLI::Option* attr =
      sub->add_option("--attr", a->attr, "Comma-separated attr.npz (hypothetical scores), e.g. with and without prior");
  attr->needs(sub->add_option("--ohe", a->ohe, "ohe.npz matching the attr files"));
  sub->add_option("--examples", a->examples, "Comma-separated example indices to draw as logos")->check(index_list());
  sub->add_option("--window", a->window, "Logo width in bases around the centre (0 = whole sequence)")
      ->check(integer_at_least(0));
  sub->add_option("--spectrum-examples", a->spectrum_examples, "Examples averaged into the spectra")
      ->check(integer_at_least(1));
  sub->add_option("--metrics", a->metrics, "Comma-separated metrics JSON files (lowpass evaluate) to tabulate");
  return [a]() {
    const std::string index = write_report(*a);  // first the page, then the line: nothing on stdout if it fails
    std::cout << "wrote " << index << "\n";
    return 0;
  };
}

}  // namespace lowpass::tools
