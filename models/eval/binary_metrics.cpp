// Binary metrics. The reference's PR curve: sort by prediction ascending; at index i the "positive"
// set is everything strictly after i; precision = TP/(TP + f·FP) (1 when empty), recall = TP/P.
// Test: build/tests/lowpass_tests -ts=eval
#include "models/eval/binary_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>
#include <utility>

#include "engine/error.h"
#include "models/eval/stats.h"

namespace lowpass::eval {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// |trapezoid| of y over x (sklearn.metrics.auc: x monotone in either direction).
double trapezoid(const std::vector<double>& x, const std::vector<double>& y) {
  double s = 0;
  for (size_t i = 0; i + 1 < x.size(); ++i) s += (x[i + 1] - x[i]) * (y[i] + y[i + 1]) / 2;
  return std::fabs(s);
}

struct RefCurve {
  std::vector<double> precision, recall, threshold;
};
RefCurve reference_curve(const std::vector<double>& y, const std::vector<double>& p, double f) {
  const size_t n = y.size();
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  double num_tp = 0;
  for (double v : y) num_tp += v;
  RefCurve c;
  double tp_cum = 0, tn_cum = 0;
  for (size_t i = 0; i < n; ++i) {
    double t = y[idx[i]];
    tp_cum += t;
    tn_cum += 1 - t;
    double tp_above = (i + 1 < n) ? num_tp - tp_cum : 0.0;
    double samp_above = static_cast<double>(n - 1 - i);
    double fp_above = samp_above - tp_above;
    double fn_below = static_cast<double>(i + 1) - tn_cum;
    double pd = tp_above + fp_above * f, rd = tp_above + fn_below;
    c.precision.push_back(pd == 0 ? 1.0 : tp_above / pd);
    c.recall.push_back(rd == 0 ? 1.0 : tp_above / rd);
    c.threshold.push_back(p[idx[i]]);
  }
  return c;
}
std::pair<double, double> at_threshold(const RefCurve& c, double thr) {
  for (size_t i = 0; i < c.threshold.size(); ++i)
    if (c.threshold[i] >= thr) return {c.precision[i], c.recall[i]};
  return {0.0, 0.0};
}
double ref_ap(const RefCurve& c) {
  double s = 0;
  for (size_t i = 0; i + 1 < c.precision.size(); ++i) s += (c.recall[i] - c.recall[i + 1]) * c.precision[i];
  return s;
}

// sklearn's precision_recall_curve points, by decreasing threshold (one per distinct score): `pairs` (score, label)
// sorted by decreasing score (the order inside a group of equal scores does not matter: tp and fp are read at the
// group's end), `P` the sum of the labels. point(precision, recall) for each; recall is NaN without positives.
template <class Label, class Point>
void sk_pr_sweep(const std::vector<std::pair<double, Label>>& pairs, double P, Point point) {
  double tp = 0, fp = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const double t = std::is_same_v<Label, uint8_t> ? double(pairs[i].second != 0) : double(pairs[i].second);
    tp += t;
    fp += 1 - t;
    if (i + 1 < pairs.size() && pairs[i + 1].first == pairs[i].first) continue;
    point(tp + fp > 0 ? tp / (tp + fp) : 0.0, P > 0 ? tp / P : kNaN);
  }
}

// The trapezoid of precision over recall along the sweep (trapezoid() of the points, in the same order).
template <class Label>
double sk_auprc(const std::vector<std::pair<double, Label>>& pairs, double P) {
  if (pairs.empty() || !(P > 0)) return kNaN;
  double s = 0, prev_prec = 0, prev_rec = 0;
  bool first = true;
  sk_pr_sweep(pairs, P, [&](double prec, double rec) {
    if (!first) s += (rec - prev_rec) * (prev_prec + prec) / 2;
    first = false;
    prev_prec = prec, prev_rec = rec;
  });
  return std::fabs(s);
}

// (score, label) pairs of double labels by decreasing score, stably (a NaN score compares false both ways: stable
// order keeps the result what it has always been), and the labels' sum.
std::vector<std::pair<double, double>> sorted_pairs(const std::vector<double>& y, const std::vector<double>& s,
                                                    double& P) {
  std::vector<std::pair<double, double>> p(y.size());
  P = 0;
  for (size_t i = 0; i < y.size(); ++i) p[i] = {s[i], y[i]}, P += y[i];
  std::stable_sort(p.begin(), p.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return p;
}
}  // namespace

double roc_auc(const std::vector<double>& y, const std::vector<double>& score) {
  LP_CHECK(y.size() == score.size(), "roc_auc: ", y.size(), " labels for ", score.size(), " scores");
  auto r = average_ranks(score);
  double npos = 0, rsum = 0;
  for (size_t i = 0; i < y.size(); ++i)
    if (y[i] == 1) { npos += 1; rsum += r[i]; }
  double nneg = static_cast<double>(y.size()) - npos;
  if (npos == 0 || nneg == 0) return kNaN;
  return (rsum - npos * (npos + 1) / 2) / (npos * nneg);
}

double average_precision(const std::vector<double>& y, const std::vector<double>& score) {
  LP_CHECK(y.size() == score.size(), "average_precision: ", y.size(), " labels for ", score.size(), " scores");
  double P;
  const auto pairs = sorted_pairs(y, score, P);
  if (pairs.empty() || !(P > 0)) return kNaN;
  double s = 0, prev = 0;
  sk_pr_sweep(pairs, P, [&](double prec, double rec) {
    s += (rec - prev) * prec;
    prev = rec;
  });
  return s;
}

double auprc_trapezoid_sklearn(const std::vector<double>& y, const std::vector<double>& score) {
  LP_CHECK(y.size() == score.size(), "auprc: ", y.size(), " labels for ", score.size(), " scores");
  // sklearn appends (precision 1, recall 0) after the highest threshold; [:-1] drops it again.
  // (Older sklearn also truncated after full recall; those points add no area.)
  double P;
  const auto pairs = sorted_pairs(y, score, P);  // before reading P (argument order is unspecified)
  return sk_auprc(pairs, P);
}

double auprc_trapezoid_sklearn(const std::vector<uint8_t>& y, const std::vector<double>& score) {
  LP_CHECK(y.size() == score.size(), "auprc: ", y.size(), " labels for ", score.size(), " scores");
  for (double v : score)
    if (std::isnan(v)) {  // NaN breaks the strict ordering std::sort needs: the general form, as it always ran
      std::vector<double> yd(y.begin(), y.end());
      return auprc_trapezoid_sklearn(yd, score);
    }
  // Without NaN an unstable sort gives the same points (order inside a group of equal scores does not matter) and
  // needs no merge buffer.
  std::vector<std::pair<double, uint8_t>> p(y.size());
  double P = 0;
  for (size_t i = 0; i < y.size(); ++i) p[i] = {score[i], y[i]}, P += y[i] != 0;
  std::sort(p.begin(), p.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return sk_auprc(p, P);
}

BinaryMetrics binary_metrics(const std::vector<double>& y_in, const std::vector<double>& p_in,
                             double neg_upsample_factor) {
  LP_CHECK(y_in.size() == p_in.size(), "binary_metrics: ", y_in.size(), " labels for ", p_in.size(),
           " predictions");
  LP_CHECK(neg_upsample_factor >= 1.0, "binary_metrics: neg_upsample_factor must be >= 1, got ",
           neg_upsample_factor);
  std::vector<double> y, p;
  for (size_t i = 0; i < y_in.size(); ++i)
    if (y_in[i] == 0 || y_in[i] == 1) {
      LP_CHECK(std::isfinite(p_in[i]), "binary_metrics: prediction ", i, " is not finite");
      y.push_back(y_in[i]);
      p.push_back(p_in[i]);
    }
  BinaryMetrics m;
  const size_t n = y.size();
  if (n == 0) {
    m.accuracy = m.pos_accuracy = m.neg_accuracy = m.auroc = m.auprc = m.ap_reference = kNaN;
    m.average_precision = m.precision = m.recall = m.corrected_auprc = m.corrected_ap = kNaN;
    m.corrected_precision = kNaN;
    return m;
  }
  double correct = 0, pc = 0, nc = 0;
  for (size_t i = 0; i < n; ++i) {
    double r = std::nearbyint(p[i]);  // numpy round: half to even
    bool ok = r == y[i];
    correct += ok;
    if (y[i] == 1) { ++m.n_pos; pc += ok; } else { ++m.n_neg; nc += ok; }
  }
  m.accuracy = correct / n;
  m.pos_accuracy = m.n_pos ? pc / m.n_pos : kNaN;
  m.neg_accuracy = m.n_neg ? nc / m.n_neg : kNaN;
  m.auroc = roc_auc(y, p);
  RefCurve c = reference_curve(y, p, 1.0);
  std::tie(m.precision, m.recall) = at_threshold(c, 0.5);
  m.ap_reference = ref_ap(c);
  m.auprc = trapezoid(c.recall, c.precision);
  RefCurve cc = reference_curve(y, p, neg_upsample_factor);
  m.corrected_precision = at_threshold(cc, 0.5).first;
  m.corrected_ap = ref_ap(cc);
  m.corrected_auprc = trapezoid(cc.recall, cc.precision);
  m.average_precision = average_precision(y, p);
  return m;
}

nlohmann::json BinaryMetrics::to_json() const {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"accuracy", num(accuracy)},       {"pos_accuracy", num(pos_accuracy)},
          {"neg_accuracy", num(neg_accuracy)}, {"auroc", num(auroc)},
          {"auprc", num(auprc)},             {"ap_reference", num(ap_reference)},
          {"average_precision", num(average_precision)}, {"precision", num(precision)},
          {"recall", num(recall)},           {"corrected_auprc", num(corrected_auprc)},
          {"corrected_ap", num(corrected_ap)}, {"corrected_precision", num(corrected_precision)},
          {"n_pos", n_pos},                  {"n_neg", n_neg}};
}

}  // namespace lowpass::eval
