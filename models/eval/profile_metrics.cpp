// Profile metrics, one (example, task) at a time so memory stays O(S·O) beyond the inputs and the per-example
// numbers (ProfileMetricsAccumulator: a batch of examples at a time).
// NLL = Σ_o lgamma(c_o+1) − lgamma(n+1) − Σ_o c_o log p_o; JSD = ½KL(P‖M) + ½KL(Q‖M), M = (P+Q)/2.
// Test: build/tests/lowpass_tests -ts=eval
#include "models/eval/profile_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "engine/error.h"
#include "models/eval/binary_metrics.h"
#include "models/eval/stats.h"

namespace lowpass::eval {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
double nanmean(const std::vector<double>& v) {
  double s = 0;
  int64_t n = 0;
  for (double x : v)
    if (!std::isnan(x)) { s += x; ++n; }
  return n ? s / n : kNaN;
}
nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
}  // namespace

std::vector<double> gaussian_smooth_reflect(const std::vector<double>& x, double sigma, double truncate) {
  if (sigma <= 0 || x.empty()) return x;
  const int64_t r = static_cast<int64_t>(truncate * sigma + 0.5), n = static_cast<int64_t>(x.size());
  std::vector<double> w(2 * r + 1);
  double ws = 0;
  for (int64_t k = -r; k <= r; ++k) ws += w[k + r] = std::exp(-0.5 * k * k / (sigma * sigma));
  for (double& v : w) v /= ws;
  auto at = [&](int64_t i) {  // 'reflect' = half-sample symmetric (d c b a | a b c d | d c b a)
    const int64_t period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return x[i < n ? i : period - 1 - i];
  };
  std::vector<double> y(n);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t k = -r; k <= r; ++k) s += w[k + r] * at(i + k);
    y[i] = s;
  }
  return y;
}

double jensen_shannon(const std::vector<double>& p_in, const std::vector<double>& q_in) {
  LP_CHECK(p_in.size() == q_in.size(), "jensen_shannon: lengths ", p_in.size(), " and ", q_in.size());
  double sp = 0, sq = 0;
  for (size_t i = 0; i < p_in.size(); ++i) { sp += p_in[i]; sq += q_in[i]; }
  if (sp == 0 || sq == 0) return kNaN;
  double kl_p = 0, kl_q = 0;
  for (size_t i = 0; i < p_in.size(); ++i) {
    double p = p_in[i] / sp, q = q_in[i] / sq, m = 0.5 * (p + q);
    if (p != 0 && m != 0) kl_p += p * std::log(p / m);
    if (q != 0 && m != 0) kl_q += q * std::log(q / m);
  }
  return 0.5 * (kl_p + kl_q);
}

std::vector<double> bin_max(const std::vector<double>& x, int64_t bin) {
  LP_CHECK(bin >= 1, "bin_max: bin size must be >= 1, got ", bin);
  const int64_t n = static_cast<int64_t>(x.size()), nb = (n + bin - 1) / bin;
  std::vector<double> r(nb);
  for (int64_t b = 0; b < nb; ++b) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t i = b * bin; i < (b + 1) * bin; ++i) m = std::max(m, i < n ? x[i] : 0.0);
    r[b] = m;
  }
  return r;
}

double masked_average_precision(const std::vector<double>& y, const std::vector<double>& score) {
  std::vector<double> yy, ss;
  for (size_t i = 0; i < y.size(); ++i)
    if (y[i] == 0 || y[i] == 1) { yy.push_back(y[i]); ss.push_back(score[i]); }
  bool anypos = std::find(yy.begin(), yy.end(), 1.0) != yy.end();
  return anypos ? average_precision(yy, ss) : kNaN;
}

ProfileMetricsAccumulator::ProfileMetricsAccumulator(int64_t T, int64_t S, int64_t O, ProfileMetricsConfig cfg)
    : T_(T), S_(S), O_(O), cfg_(std::move(cfg)) {
  LP_CHECK(T >= 1 && S >= 1 && O >= 1, "profile_metrics: empty dimensions T=", T, " S=", S, " O=", O);
  const size_t Z = cfg_.bin_sizes.size();
  nll_sum_.assign(T, 0.0);
  jsd_.assign(T, {});
  au_.assign(T, std::vector<std::vector<double>>(Z));
  pe_ = sp_ = ms_ = au_;
  ct_.assign(T, {});
  cp_.assign(T, {});
}

void ProfileMetricsAccumulator::add(const ProfileData& d) {
  const int64_t N = d.N, T = T_, S = S_, O = O_, Z = static_cast<int64_t>(cfg_.bin_sizes.size());
  LP_CHECK(N >= 0 && d.T == T && d.S == S && d.O == O, "profile_metrics: a batch of (", N, ", ", d.T, ", ", d.S, ", ",
           d.O, ") after examples of (", T, ", ", S, ", ", O, ")");
  LP_CHECK(static_cast<int64_t>(d.true_counts.size()) == N * T * S * O, "profile_metrics: true_counts has ",
           d.true_counts.size(), " values, expected N*T*S*O = ", N * T * S * O);
  LP_CHECK(d.pred_log_probs.size() == d.true_counts.size(), "profile_metrics: pred_log_probs has ",
           d.pred_log_probs.size(), " values, expected ", d.true_counts.size());
  LP_CHECK(static_cast<int64_t>(d.pred_log_counts.size()) == N * T * S, "profile_metrics: pred_log_counts has ",
           d.pred_log_counts.size(), " values, expected N*T*S = ", N * T * S);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = 0; t < T; ++t) {
      const double* c = d.true_counts.data() + (n * T + t) * S * O;
      const double* lp = d.pred_log_probs.data() + (n * T + t) * S * O;
      std::vector<double> pooled_true(S * O), pooled_pred(S * O), pooled_count(S * O);  // (O, S) interleaved
      double jsd_sum = 0;
      for (int64_t s = 0; s < S; ++s) {
        double total = 0, lf = 0, dot = 0;
        std::vector<double> tc(O), pp(O);
        for (int64_t o = 0; o < O; ++o) {
          double v = c[s * O + o];
          total += v;
          lf += std::lgamma(v + 1);
          dot += v * lp[s * O + o];
          tc[o] = v;
          pp[o] = std::exp(lp[s * O + o]);
        }
        nll_sum_[t] += lf - std::lgamma(total + 1) - dot;
        jsd_sum += jensen_shannon(gaussian_smooth_reflect(tc, cfg_.smooth_sigma),
                                  gaussian_smooth_reflect(pp, cfg_.smooth_sigma));
        for (int64_t o = 0; o < O; ++o) {
          pooled_true[o * S + s] = total > 0 ? tc[o] / total : 0.0;
          pooled_pred[o * S + s] = pp[o];
          pooled_count[o * S + s] = tc[o];
        }
        ct_[t].push_back(std::log1p(total));
        cp_[t].push_back(d.pred_log_counts[(n * T + t) * S + s]);
      }
      jsd_[t].push_back(jsd_sum / S);
      for (int64_t z = 0; z < Z; ++z) {
        auto tb = bin_max(pooled_true, cfg_.bin_sizes[z]);
        auto cb = bin_max(pooled_count, cfg_.bin_sizes[z]);
        auto pb = bin_max(pooled_pred, cfg_.bin_sizes[z]);
        std::vector<double> lab(tb.size(), -1.0);
        for (size_t i = 0; i < tb.size(); ++i) {
          if (cb[i] >= cfg_.min_pos_count && tb[i] >= cfg_.min_pos_prob) lab[i] = 1;
          if (tb[i] <= cfg_.max_neg_prob) lab[i] = 0;
        }
        au_[t][z].push_back(masked_average_precision(lab, pb));
        pe_[t][z].push_back(pearson(tb, pb));
        sp_[t][z].push_back(spearman(tb, pb));
        ms_[t][z].push_back(mse(tb, pb));
      }
    }
  N_ += N;
}

ProfileMetrics ProfileMetricsAccumulator::finish() const {
  const int64_t N = N_, T = T_, S = S_, Z = static_cast<int64_t>(cfg_.bin_sizes.size());
  LP_CHECK(N >= 1, "profile_metrics: no examples");
  ProfileMetrics m;
  m.nll = nll_sum_;
  m.jsd.assign(T, 0.0);
  m.jsd_per_example.assign(N * T, kNaN);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = 0; t < T; ++t) m.jsd_per_example[n * T + t] = jsd_[t][n];
  m.auprc.assign(T, std::vector<double>(Z));
  m.pearson = m.spearman = m.mse = m.auprc;
  for (int64_t t = 0; t < T; ++t) {
    m.nll[t] /= static_cast<double>(N * S);
    m.jsd[t] = nanmean(jsd_[t]);
    for (int64_t z = 0; z < Z; ++z) {
      m.auprc[t][z] = nanmean(au_[t][z]);
      m.pearson[t][z] = nanmean(pe_[t][z]);
      m.spearman[t][z] = nanmean(sp_[t][z]);
      m.mse[t][z] = nanmean(ms_[t][z]);
    }
    m.count_pearson.push_back(pearson(ct_[t], cp_[t]));
    m.count_spearman.push_back(spearman(ct_[t], cp_[t]));
    m.count_mse.push_back(mse(ct_[t], cp_[t]));
  }
  return m;
}

ProfileMetrics profile_metrics(const ProfileData& d, const ProfileMetricsConfig& cfg) {
  LP_CHECK(d.N >= 1 && d.T >= 1 && d.S >= 1 && d.O >= 1, "profile_metrics: empty dimensions N=", d.N, " T=", d.T,
           " S=", d.S, " O=", d.O);
  ProfileMetricsAccumulator acc(d.T, d.S, d.O, cfg);
  acc.add(d);
  return acc.finish();
}

nlohmann::json ProfileMetrics::to_json(const std::vector<int64_t>& bin_sizes) const {
  auto vec = [](const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v) a.push_back(num(x));
    return a;
  };
  nlohmann::json j = {{"nll", vec(nll)},
                      {"jsd", vec(jsd)},
                      {"count_pearson", vec(count_pearson)},
                      {"count_spearman", vec(count_spearman)},
                      {"count_mse", vec(count_mse)}};
  for (size_t z = 0; z < bin_sizes.size(); ++z) {
    std::vector<double> a, p, s, e;
    for (size_t t = 0; t < auprc.size(); ++t) {
      a.push_back(auprc[t][z]);
      p.push_back(pearson[t][z]);
      s.push_back(spearman[t][z]);
      e.push_back(mse[t][z]);
    }
    std::string b = std::to_string(bin_sizes[z]);
    j["auprc_bin" + b] = vec(a);
    j["pearson_bin" + b] = vec(p);
    j["spearman_bin" + b] = vec(s);
    j["mse_bin" + b] = vec(e);
  }
  return j;
}

}  // namespace lowpass::eval
