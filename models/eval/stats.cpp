// Ranks, correlations and the two one-sided rank tests, written from their textbook definitions.
// Test: build/tests/lowpass_tests -ts=eval
#include "models/eval/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>

#include "engine/error.h"

namespace lowpass::eval {

std::vector<double> average_ranks(const std::vector<double>& x) {
  const size_t n = x.size();
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> r(n);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && x[idx[j + 1]] == x[idx[i]]) ++j;
    double avg = 0.5 * (static_cast<double>(i) + static_cast<double>(j)) + 1.0;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  LP_CHECK(a.size() == b.size(), "pearson: lengths ", a.size(), " and ", b.size(), " differ");
  const size_t n = a.size();
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  double ma = 0, mb = 0;
  for (size_t i = 0; i < n; ++i) { ma += a[i]; mb += b[i]; }
  ma /= n;
  mb /= n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    double da = a[i] - ma, db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  double den = std::sqrt(saa * sbb);
  return den == 0 ? std::numeric_limits<double>::quiet_NaN() : sab / den;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  return pearson(average_ranks(a), average_ranks(b));
}

double mse(const std::vector<double>& a, const std::vector<double>& b) {
  LP_CHECK(a.size() == b.size(), "mse: lengths ", a.size(), " and ", b.size(), " differ");
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return a.empty() ? std::numeric_limits<double>::quiet_NaN() : s / a.size();
}

namespace {
double normal_sf(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }
bool has_ties(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return std::adjacent_find(v.begin(), v.end()) != v.end();
}
}  // namespace

double wilcoxon_greater(const std::vector<double>& x, const std::vector<double>& y) {
  LP_CHECK(x.size() == y.size(), "wilcoxon: paired samples of sizes ", x.size(), " and ", y.size());
  std::vector<double> d;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i] - y[i] != 0) d.push_back(x[i] - y[i]);
  const size_t n = d.size();
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  std::vector<double> ad(n);
  for (size_t i = 0; i < n; ++i) ad[i] = std::fabs(d[i]);
  auto r = average_ranks(ad);
  double wplus = 0;
  for (size_t i = 0; i < n; ++i)
    if (d[i] > 0) wplus += r[i];
  const bool zeros = d.size() != x.size();
  if (!has_ties(ad) && !zeros && n <= 50) {
    // Exact null distribution of W+ over 2^n sign patterns: counts[s] = #subsets of 1..n summing to s.
    const size_t maxs = n * (n + 1) / 2;
    std::vector<double> cnt(maxs + 1, 0.0);
    cnt[0] = 1;
    for (size_t k = 1; k <= n; ++k)
      for (size_t s = maxs; s >= k; --s) cnt[s] += cnt[s - k];
    double tail = 0;
    for (size_t s = static_cast<size_t>(std::llround(wplus)); s <= maxs; ++s) tail += cnt[s];
    return tail / std::pow(2.0, static_cast<double>(n));
  }
  if (x.size() <= 13) {
    // scipy's choice with ties or zeros and n <= 13: a permutation test over all 2^n sign flips.
    double hits = 0, total = 0;
    for (uint64_t mask = 0; mask < (uint64_t{1} << n); ++mask) {
      double w = 0;
      for (size_t i = 0; i < n; ++i)
        if (mask >> i & 1) w += r[i];
      total += 1;
      if (w >= wplus - 1e-9) hits += 1;
    }
    return hits / total;
  }
  double mn = n * (n + 1) / 4.0;
  double var = n * (n + 1) * (2.0 * n + 1) / 24.0;
  // tie correction: subtract Σ (t^3 − t)/48 over tie groups
  std::vector<double> s = ad;
  std::sort(s.begin(), s.end());
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && s[j + 1] == s[i]) ++j;
    double t = static_cast<double>(j - i + 1);
    var -= (t * t * t - t) / 48.0;
    i = j + 1;
  }
  return normal_sf((wplus - mn) / std::sqrt(var));
}

double mannwhitney_greater(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n1 = x.size(), n2 = y.size();
  LP_CHECK(n1 > 0 && n2 > 0, "mannwhitney: empty sample (sizes ", n1, ", ", n2, ")");
  std::vector<double> all(x);
  all.insert(all.end(), y.begin(), y.end());
  auto r = average_ranks(all);
  double r1 = 0;
  for (size_t i = 0; i < n1; ++i) r1 += r[i];
  double u1 = r1 - n1 * (n1 + 1) / 2.0;
  const bool ties = has_ties(all);
  if ((n1 <= 8 || n2 <= 8) && !ties) {
    // Exact: the counts of U are the coefficients of the Gaussian binomial [n1+n2 choose n1]_q =
    // Π_{i=1..m} (1 − q^{n+i}) / (1 − q^i) with m = min(n1, n2), n = max(n1, n2).
    const size_t m = std::min(n1, n2), nn = std::max(n1, n2), umax = n1 * n2;
    std::vector<double> c(umax + 1, 0.0);
    c[0] = 1;
    for (size_t i = 1; i <= m; ++i) {
      for (size_t k = umax; k >= nn + i; --k) c[k] -= c[k - nn - i];  // × (1 − q^{n+i})
      for (size_t k = i; k <= umax; ++k) c[k] += c[k - i];             // ÷ (1 − q^i)
    }
    double tot = 0, tail = 0;
    for (size_t u = 0; u <= umax; ++u) {
      tot += c[u];
      if (static_cast<double>(u) >= u1 - 1e-9) tail += c[u];
    }
    return tail / tot;
  }
  const double n = static_cast<double>(n1 + n2);
  double mu = n1 * n2 / 2.0;
  std::vector<double> s = all;
  std::sort(s.begin(), s.end());
  double tie_term = 0;
  for (size_t i = 0; i < s.size();) {
    size_t j = i;
    while (j + 1 < s.size() && s[j + 1] == s[i]) ++j;
    double t = static_cast<double>(j - i + 1);
    tie_term += t * t * t - t;
    i = j + 1;
  }
  double var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)));
  double z = (u1 - mu - 0.5) / std::sqrt(var);
  return normal_sf(z);
}

}  // namespace lowpass::eval
