// The report's small SVG writer (see svg.h). Test: python/tests/test_report.py (the pictures it draws).
#include "tools/svg.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace lowpass::tools::svg {

// Okabe & Ito's colour-blind-safe palette (blue, vermillion, bluish green, reddish purple, orange, sky blue): no
// red–green pair among the first runs, as the earlier tab10 order (blue, red, green) had.
const char* kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"};
const char* kBaseColor[] = {"#109648", "#255C99", "#F7B32B", "#D62839"};  // A C G T
const char kBase[] = {'A', 'C', 'G', 'T'};

std::string page_head(const std::string& title) {
  return "<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + esc(title) + "</title><style>body{font-family:"
         "sans-serif;margin:20px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
         "font-size:12px}td.num{text-align:right}svg{margin:4px}p.note{color:#a00}</style></head><body><h1>" +
         esc(title) + "</h1>";
}

std::string esc(const std::string& s) {
  std::string r;
  for (char c : s) r += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return r;
}
// Coordinates in the SVG: two decimals are plenty.
std::string num(double v) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2) << v;
  std::string s = o.str();
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}
std::string fixed(double v, int decimals) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(decimals) << v;
  return o.str();
}
// A metric value for a table: 4 significant digits, one decimal from 1000 up, scientific below 0.001.
std::string fmt(double v) {
  if (!std::isfinite(v)) return v != v ? "nan" : v > 0 ? "inf" : "-inf";
  const double m = std::fabs(v);
  if (m >= 1000) return fixed(v, 1);
  std::ostringstream o;
  if (m > 0 && m < 1e-3) o << std::scientific << std::setprecision(2);
  else o << std::setprecision(4);
  o << v;
  return o.str();
}
// A legend or title name: long paths keep their tail.
std::string shorten(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t cut = s.size() - n + 1;
  while (cut < s.size() && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) ++cut;  // not inside a UTF-8 letter
  return "…" + s.substr(cut);
}

// Bytes of a UTF-8 text beyond its letter count (continuation bytes), for width estimates.
namespace {
size_t extra_bytes(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char ch) {
    return (static_cast<unsigned char>(ch) & 0xC0) == 0x80;
  }));
}
}  // namespace

double nice_step(double raw) {
  const double mag = std::pow(10.0, std::floor(std::log10(raw))), n = raw / mag;
  return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * mag;
}
Ticks linear_ticks(double v0, double v1, bool integer) {
  if (!(v1 > v0)) {
    const double pad = integer ? 1.0 : v0 == 0 ? 1.0 : std::fabs(v0) * 0.1;
    v0 -= pad, v1 += pad;
  }
  double step = nice_step((v1 - v0) / 5);
  if (integer) step = std::max(1.0, std::round(step));
  Ticks t;
  t.lo = std::floor(v0 / step + 1e-9) * step;
  t.hi = std::ceil(v1 / step - 1e-9) * step;
  const int decimals = integer ? 0 : std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  const int64_t n = std::llround((t.hi - t.lo) / step);
  for (int64_t k = 0; k <= n; ++k) {
    double v = t.lo + static_cast<double>(k) * step;
    if (std::fabs(v) < step * 1e-6) v = 0;
    t.at.push_back(v);
    t.text.push_back(fixed(v, decimals));
  }
  return t;
}
// Log axis (values are log10): ticks at the decades, plus 2 and 5 × 10^e when it spans two decades or fewer.
Ticks log_ticks(double l0, double l1) {
  Ticks t;
  t.lo = std::floor(l0 + 1e-9);
  t.hi = std::max(std::ceil(l1 - 1e-9), t.lo + 1);
  for (double e = t.lo; e <= t.hi + 1e-9; ++e)
    for (double m : {1.0, 2.0, 5.0}) {
      if (m > 1 && (t.hi - t.lo > 2 || e == t.hi)) continue;
      const double v = m * std::pow(10.0, e);
      std::ostringstream o;
      o << std::setprecision(3) << v;
      t.at.push_back(std::log10(v));
      t.text.push_back(o.str());
    }
  return t;
}

std::string line_chart(const std::string& title, const std::vector<Series>& series, const Axis& ax, const Axis& ay,
                       const std::vector<Marker>& markers) {
  size_t longest = 0;
  for (auto& s : series) longest = std::max(longest, shorten(s.name).size());
  const double l = 68, t = 30, b = 46, r = std::clamp(30.0 + 6.5 * static_cast<double>(longest), 90.0, 340.0);
  // Wide enough for the title (13 px sans-serif: about 7 px a letter), which was clipped at the right edge.
  const double W = std::max(420 + r, l + 7.0 * static_cast<double>(title.size() - extra_bytes(title)) + 10), H = 300;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto ty = [&](double v) { return ay.log ? std::log10(std::max(v, 1e-12)) : v; };
  for (auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (ay.log && !(s.y[i] > 0))) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, ty(s.y[i])), y1 = std::max(y1, ty(s.y[i]));
    }
  for (auto& m : markers) x0 = std::min(x0, m.x), x1 = std::max(x1, m.x);
  if (!std::isfinite(x0)) x0 = 0, x1 = 1;
  if (!std::isfinite(y0)) y0 = 0, y1 = 1;
  const Ticks tx = linear_ticks(x0, x1, ax.integer), tk = ay.log ? log_ticks(y0, y1) : linear_ticks(y0, y1, false);
  auto px = [&](double v) { return l + (v - tx.lo) / (tx.hi - tx.lo) * (W - l - r); };
  auto pyt = [&](double v) { return H - b - (v - tk.lo) / (tk.hi - tk.lo) * (H - t - b); };  // v already on the axis
  auto py = [&](double v) { return pyt(ty(v)); };
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << num(W) << "' height='" << num(H)
    << "' font-family='sans-serif' font-size='11'><rect width='100%' height='100%' fill='white'/>"
    << "<text x='" << num(l) << "' y='18' font-size='13'>" << esc(title) << "</text>";
  for (size_t k = 0; k < tx.at.size(); ++k)
    o << "<line x1='" << num(px(tx.at[k])) << "' y1='" << num(H - b) << "' x2='" << num(px(tx.at[k])) << "' y2='"
      << num(H - b + 4) << "' stroke='black'/><text class='xtick' x='" << num(px(tx.at[k])) << "' y='" << num(H - b + 15)
      << "' text-anchor='middle'>" << tx.text[k] << "</text>";
  for (size_t k = 0; k < tk.at.size(); ++k)
    o << "<line x1='" << num(l) << "' y1='" << num(pyt(tk.at[k])) << "' x2='" << num(W - r) << "' y2='"
      << num(pyt(tk.at[k])) << "' stroke='#eee'/><text class='ytick' x='" << num(l - 5) << "' y='" << num(pyt(tk.at[k]) + 4)
      << "' text-anchor='end'>" << tk.text[k] << "</text>";
  o << "<line x1='" << num(l) << "' y1='" << num(H - b) << "' x2='" << num(W - r) << "' y2='" << num(H - b)
    << "' stroke='black'/><line x1='" << num(l) << "' y1='" << num(t) << "' x2='" << num(l) << "' y2='"
    << num(H - b) << "' stroke='black'/>"
    << "<text class='xtitle' x='" << num((l + W - r) / 2) << "' y='" << num(H - 10) << "' text-anchor='middle'>"
    << esc(ax.title) << "</text><text class='ytitle' transform='translate(14," << num((t + H - b) / 2)
    << ") rotate(-90)' text-anchor='middle'>" << esc(ay.title) << "</text>";
  for (auto& m : markers)
    o << "<line class='marker' x1='" << num(px(m.x)) << "' y1='" << num(t) << "' x2='" << num(px(m.x)) << "' y2='"
      << num(H - b) << "' stroke='#555' stroke-dasharray='4,3'/><text x='" << num(px(m.x) + 4) << "' y='"
      << num(t + 10) << "' fill='#333'>" << esc(m.label) << "</text>";
  for (size_t si = 0; si < series.size(); ++si) {
    const auto& s = series[si];
    const char* c = s.color == kBlack ? "#000000" : kColors[(s.color >= 0 ? static_cast<size_t>(s.color) : si) % 6];
    o << "<polyline fill='none' stroke-width='1.5' stroke='" << c << (s.dashed ? "' stroke-dasharray='5,3" : "")
      << "' points='";
    size_t shown = 0;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i]) && (!ay.log || s.y[i] > 0))
        o << num(px(s.x[i])) << "," << num(py(s.y[i])) << " ", ++shown;
    o << "'/>";
    // Points as dots too, so that a one-epoch run shows; a dashed series (a baseline) of one point, which no line
    // draws, as an open circle.
    if ((shown <= 40 && !s.dashed) || shown == 1)
      for (size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.y[i]) && (!ay.log || s.y[i] > 0))
          o << "<circle cx='" << num(px(s.x[i])) << "' cy='" << num(py(s.y[i])) << "' r='2.5' "
            << (s.dashed ? "fill='white' stroke='" : "fill='") << c << "'/>";
    const double ly = t + 14 * static_cast<double>(si + 1);
    o << "<line x1='" << num(W - r + 8) << "' y1='" << num(ly - 4) << "' x2='" << num(W - r + 22) << "' y2='"
      << num(ly - 4) << "' stroke='" << c << "' stroke-width='2'" << (s.dashed ? " stroke-dasharray='5,3'" : "")
      << "/><text x='" << num(W - r + 26) << "' y='" << num(ly)
      << "' fill='" << c << "'>" << esc(shorten(s.name)) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

// Sequence logo of actual scores (4, L): each position's letter scaled to its score, above or below 0, with a
// vertical score scale on the left and position ticks below.
std::string logo(const std::string& title, const std::vector<double>& a, int64_t L, int64_t from, int64_t to,
                 const LogoOptions& opt) {
  // At most about 900 px of letters: a long window is an overview (letters under 4 px wide do not read anyway, and
  // 4 px a base made a 1,000 bp logo 4,050 px wide); --window or a zoom shows the letters.
  const double n = static_cast<double>(to - from), cw = 900.0 / n, H = 190,
               mid = 92, lm = 56;
  const double W = cw * n + lm + 10;
  double m = 1e-12;
  for (int64_t l = from; l < to; ++l)
    for (int c = 0; c < 4; ++c) m = std::max(m, std::fabs(a[c * L + l]));
  const double top = opt.scale > 0 ? opt.scale : m;  // the score drawn 70 px high
  const double scale = 70.0 / top;
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << num(W) << "' height='" << num(H)
    << "' font-family='monospace'><rect width='100%' height='100%' fill='white'/><text x='4' y='14' font-size='12' "
    << "font-family='sans-serif'>" << esc(title) << " · max |score| " << fmt(m)
    << (opt.scale > 0 ? " (scale shared: " + fmt(top) + " full height)" : "") << "</text>";
  if (opt.mark_to > opt.mark_from)  // a shaded band behind the marked positions (the variant, the zoomed window)
    o << "<rect class='mark' x='" << num(lm + static_cast<double>(std::max(opt.mark_from, from) - from) * cw)
      << "' y='" << num(mid - 74) << "' width='"
      << num(static_cast<double>(std::min(opt.mark_to, to) - std::max(opt.mark_from, from)) * cw) << "' height='148' "
      << "fill='#e8e8e8'/>";
  o << "<line x1='" << num(lm) << "' y1='" << num(mid) << "' x2='" << num(lm + cw * n) << "' y2='" << num(mid)
    << "' stroke='#999'/>";
  // The score scale: 0 and ± the largest 1-2-5 value not above the full height.
  double t = std::pow(10.0, std::floor(std::log10(top)));
  for (double f : {5.0, 2.0})
    if (t * f <= top * (1 + 1e-9)) {
      t *= f;
      break;
    }
  o << "<line x1='" << num(lm - 4) << "' y1='" << num(mid - 70) << "' x2='" << num(lm - 4) << "' y2='"
    << num(mid + 70) << "' stroke='#999'/>";
  for (double v : {t, 0.0, -t})
    o << "<line x1='" << num(lm - 8) << "' y1='" << num(mid - v * scale) << "' x2='" << num(lm - 4) << "' y2='"
      << num(mid - v * scale) << "' stroke='#999'/><text class='ytick' x='" << num(lm - 10) << "' y='"
      << num(mid - v * scale + 3.5) << "' font-size='10' font-family='sans-serif' text-anchor='end'>"
      << (v == 0 ? std::string("0") : fmt(v)) << "</text>";
  o << "<text transform='translate(12," << num(mid) << ") rotate(-90)' font-size='10' font-family='sans-serif' "
    << "text-anchor='middle'>score</text>";
  for (int64_t l = from; l < to; ++l)
    for (int c = 0; c < 4; ++c) {
      double v = a[c * L + l];
      if (std::fabs(v) * scale < 0.5) continue;
      double h = std::min(std::fabs(v) * scale, 74.0), x = lm + static_cast<double>(l - from) * cw;
      // A glyph of font-size 100 spans about 72 units of cap height and 60 of width.
      double sx = cw / 60.0, sy = h / 72.0;
      double ybase = v > 0 ? mid : mid + h;
      o << "<text transform='translate(" << num(x) << "," << num(ybase) << ") scale(" << sx << "," << sy
        << ")' font-size='100' fill='" << kBaseColor[c] << "'>" << kBase[c] << "</text>";
    }
  // Position ticks (0-based positions of the input window) below the letters.
  const double ya = mid + 74;
  o << "<line x1='" << num(lm) << "' y1='" << num(ya) << "' x2='" << num(lm + cw * n) << "' y2='" << num(ya)
    << "' stroke='#999'/>";
  const int64_t step = std::max<int64_t>(1, static_cast<int64_t>(nice_step(n / 8)));
  for (int64_t p = (from + step - 1) / step * step; p < to; p += step) {
    const double x = lm + (static_cast<double>(p - from) + 0.5) * cw;
    o << "<line x1='" << num(x) << "' y1='" << num(ya) << "' x2='" << num(x) << "' y2='" << num(ya + 4)
      << "' stroke='#999'/><text x='" << num(x) << "' y='" << num(ya + 15) << "' font-size='10' "
      << "font-family='sans-serif' text-anchor='middle'>" << p << "</text>";
  }
  o << "</svg>";
  return o.str();
}

}  // namespace lowpass::tools::svg
