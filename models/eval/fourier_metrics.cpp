// High-frequency share of attributions (REFERENCE §4.5a), a direct DFT in double precision:
// share = Σ_{k=K+1}^{L/2−1} |A_k| / Σ_{k=1}^{L/2−1} |A_k|, a = Σ_bases |attr|.
// Test: build/tests/lowpass_tests -ts=train
#include "models/eval/fourier_metrics.h"

#include <cmath>
#include <numbers>

#include "engine/error.h"

namespace lowpass {

namespace {
double share_with_table(const std::vector<double>& a, int64_t K, const std::vector<double>& c,
                        const std::vector<double>& s) {
  const int64_t L = static_cast<int64_t>(a.size());
  double all = 0, high = 0;
  for (int64_t k = 1; k < L / 2; ++k) {
    double re = 0, im = 0;
    int64_t idx = 0;  // (k·n) mod L
    for (int64_t n = 0; n < L; ++n) {
      re += a[static_cast<size_t>(n)] * c[static_cast<size_t>(idx)];
      im -= a[static_cast<size_t>(n)] * s[static_cast<size_t>(idx)];
      idx += k;
      if (idx >= L) idx -= L;
    }
    double m = std::hypot(re, im);
    all += m;
    if (k >= K + 1) high += m;
  }
  return all > 0 ? high / all : 0.0;
}

void tables(int64_t L, std::vector<double>& c, std::vector<double>& s) {
  c.resize(static_cast<size_t>(L));
  s.resize(static_cast<size_t>(L));
  for (int64_t n = 0; n < L; ++n) {
    double w = 2 * std::numbers::pi * static_cast<double>(n) / static_cast<double>(L);
    c[static_cast<size_t>(n)] = std::cos(w);
    s[static_cast<size_t>(n)] = std::sin(w);
  }
}
}  // namespace

double high_freq_share(const std::vector<double>& a, int64_t K) {
  LP_CHECK(K >= 0, "high_freq_share: freq_limit must be >= 0, got ", K);
  std::vector<double> c, s;
  tables(static_cast<int64_t>(a.size()), c, s);
  return share_with_table(a, K, c, s);
}

std::vector<double> high_freq_shares(const Tensor& attr, int64_t K) {
  LP_CHECK(attr.dim() == 3 && attr.size(1) == 4, "high_freq_shares: attributions must be (B, 4, L), got ",
           attr.describe());
  LP_CHECK(K >= 0, "high_freq_shares: freq_limit must be >= 0, got ", K);
  const int64_t B = attr.size(0), L = attr.size(2);
  auto v = attr.to_vector<double>();
  std::vector<double> c, s, out(static_cast<size_t>(B)), a(static_cast<size_t>(L));
  tables(L, c, s);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t p = 0; p < L; ++p) {
      double t = 0;
      for (int64_t ch = 0; ch < 4; ++ch) t += std::fabs(v[static_cast<size_t>((b * 4 + ch) * L + p)]);
      a[static_cast<size_t>(p)] = t;
    }
    out[static_cast<size_t>(b)] = share_with_table(a, K, c, s);
  }
  return out;
}

}  // namespace lowpass
