// A small SVG writer for the HTML pages of `lowpass report` and `lowpass variants --plot`: line charts of several
// series with axis titles and markers, sequence logos of attribution scores, and the number formats they use.
// Test: python/tests/test_report.py, python/tests/test_cli_variants.py (the pages that use it).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lowpass::tools::svg {

extern const char* kColors[6];
extern const char* kBaseColor[4];  // A C G T
extern const char kBase[4];

std::string esc(const std::string& s);          // HTML-escaped text
std::string num(double v);                      // an SVG coordinate (two decimals at most)
std::string fixed(double v, int decimals);
std::string fmt(double v);                      // a metric value: 4 significant digits
std::string shorten(const std::string& s, size_t n = 48);  // long names keep their tail

// Axis ticks at 1, 2 or 5 × 10^e (integers only on an integer axis); the axis spans whole ticks.
struct Ticks {
  double lo = 0, hi = 1;
  std::vector<double> at;
  std::vector<std::string> text;
};
double nice_step(double raw);
Ticks linear_ticks(double v0, double v1, bool integer);
Ticks log_ticks(double l0, double l1);  // values are log10

// Minimal SVG: a line chart of several series on shared axes, with axis titles and vertical markers.
struct Series {
  std::string name;
  std::vector<double> x, y;
  bool dashed = false;  // a baseline
  int color = -1;       // index into kColors; -1: the series' position; kBlack: observed data
};
constexpr int kBlack = -2;
struct Axis {
  std::string title;
  bool integer = false, log = false;
};
struct Marker {
  double x;
  std::string label;
};
// The start of a self-contained HTML page: doctype, the pages' shared style, <body> and an <h1> of `title`.
std::string page_head(const std::string& title);

std::string line_chart(const std::string& title, const std::vector<Series>& series, const Axis& ax, const Axis& ay,
                       const std::vector<Marker>& markers = {});
// Sequence logo of actual scores a (4, L) over positions [from, to): each letter scaled to its score, above or
// below 0, with a score scale. `scale` > 0: the score drawn at full height (to compare logos on one scale; a
// larger score is cut at the axis' end), else this window's max |score|. [mark_from, mark_to): positions shaded.
struct LogoOptions {
  double scale = 0;
  int64_t mark_from = 0, mark_to = 0;
};
std::string logo(const std::string& title, const std::vector<double>& a, int64_t L, int64_t from, int64_t to,
                 const LogoOptions& opt = {});

}  // namespace lowpass::tools::svg
