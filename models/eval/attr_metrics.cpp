// Attribution metrics on plain vectors; every quantity follows the formula in attr_metrics.h.
// Test: build/tests/lowpass_tests -ts=eval
#include "models/eval/attr_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/error.h"
#include "models/eval/binary_metrics.h"
#include "models/eval/stats.h"

namespace lowpass::eval {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
void check_track(const std::vector<double>& t, int64_t L, const char* who) {
  LP_CHECK(L >= 1 && static_cast<int64_t>(t.size()) == 4 * L, who, ": track has ", t.size(),
           " values, expected 4*L = ", 4 * L);
}
double sgn(double x) { return (x > 0) - (x < 0); }
}  // namespace

double continuous_jaccard(const std::vector<double>& u, const std::vector<double>& v, int64_t L,
                          bool normalise_positions) {
  check_track(u, L, "continuous_jaccard");
  check_track(v, L, "continuous_jaccard");
  double total = 0;
  for (int64_t l = 0; l < L; ++l) {
    double a[4], b[4], na = 0, nb = 0;
    for (int c = 0; c < 4; ++c) {
      a[c] = u[c * L + l];
      b[c] = v[c * L + l];
      na += std::fabs(a[c]);
      nb += std::fabs(b[c]);
    }
    if (normalise_positions) {
      for (int c = 0; c < 4; ++c) {
        if (na > 0) a[c] /= na;
        if (nb > 0) b[c] /= nb;
      }
    }
    double num = 0, den = 0;
    for (int c = 0; c < 4; ++c) {
      num += std::min(std::fabs(a[c]), std::fabs(b[c])) * sgn(a[c]) * sgn(b[c]);
      den += std::max(std::fabs(a[c]), std::fabs(b[c]));
    }
    if (den > 0) total += num / den;
  }
  return total;
}

double cosine_similarity(const std::vector<double>& u, const std::vector<double>& v) {
  LP_CHECK(u.size() == v.size(), "cosine_similarity: lengths ", u.size(), " and ", v.size());
  double uv = 0, uu = 0, vv = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    uv += u[i] * v[i];
    uu += u[i] * u[i];
    vv += v[i] * v[i];
  }
  return (uu == 0 || vv == 0) ? kNaN : uv / std::sqrt(uu * vv);
}

double mean_pairwise_jaccard(const std::vector<std::vector<double>>& tracks, int64_t L) {
  double s = 0;
  int64_t n = 0;
  for (size_t i = 0; i < tracks.size(); ++i)
    for (size_t j = 0; j < i; ++j) {
      s += continuous_jaccard(tracks[i], tracks[j], L);
      ++n;
    }
  return n ? s / n : kNaN;
}

std::vector<double> position_magnitude(const std::vector<double>& track, int64_t L) {
  check_track(track, L, "position_magnitude");
  std::vector<double> a(L, 0.0);
  for (int c = 0; c < 4; ++c)
    for (int64_t l = 0; l < L; ++l) a[l] += std::fabs(track[c * L + l]);
  return a;
}

double attribution_entropy(const std::vector<double>& track, int64_t L, double pseudocount) {
  auto a = position_magnitude(track, L);
  double z = 0;
  for (double& x : a) z += (x += pseudocount);
  double h = 0;
  for (double x : a) {
    double p = x / z;
    if (p > 0) h -= p * std::log2(p);
  }
  return h;
}

double summit_distance_spearman(const std::vector<double>& track, int64_t L, const std::vector<int64_t>& summits) {
  if (summits.empty()) return kNaN;
  auto a = position_magnitude(track, L);
  std::vector<double> dist(L);
  for (int64_t l = 0; l < L; ++l) {
    int64_t d = std::numeric_limits<int64_t>::max();
    for (int64_t s : summits) d = std::min<int64_t>(d, l > s ? l - s : s - l);
    dist[l] = static_cast<double>(d);
  }
  return spearman(a, dist);
}

double fraction_inside(const std::vector<double>& track, int64_t L, const std::vector<uint8_t>& mask) {
  LP_CHECK(static_cast<int64_t>(mask.size()) == L, "fraction_inside: mask has ", mask.size(), " positions, expected ", L);
  auto a = position_magnitude(track, L);
  double in = 0, all = 0;
  for (int64_t l = 0; l < L; ++l) {
    all += a[l];
    if (mask[l]) in += a[l];
  }
  return all > 0 ? in / all : kNaN;
}

double overlap_auprc(const std::vector<std::vector<double>>& tracks, int64_t L,
                     const std::vector<std::vector<uint8_t>>& masks) {
  LP_CHECK(tracks.size() == masks.size(), "overlap_auprc: ", tracks.size(), " tracks for ", masks.size(), " masks");
  std::vector<double> score;
  std::vector<uint8_t> label;
  for (size_t i = 0; i < tracks.size(); ++i) {
    LP_CHECK(static_cast<int64_t>(masks[i].size()) == L, "overlap_auprc: mask ", i, " has ", masks[i].size(),
             " positions, expected ", L);
    auto a = position_magnitude(tracks[i], L);
    score.insert(score.end(), a.begin(), a.end());
    label.insert(label.end(), masks[i].begin(), masks[i].end());
  }
  return auprc_trapezoid_sklearn(label, score);  // the byte-label form, as evaluate's accumulator
}

}  // namespace lowpass::eval
