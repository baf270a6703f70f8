// Small statistics used by the metrics: average ranks, Pearson/Spearman, one-sided Wilcoxon
// signed-rank and Mann–Whitney U tests (scipy's 'auto' choice of exact vs normal approximation).
// Test: build/tests/lowpass_tests -ts=eval
#pragma once
#include <vector>

namespace lowpass::eval {

std::vector<double> average_ranks(const std::vector<double>& x);  // 1-based, ties averaged
double pearson(const std::vector<double>& a, const std::vector<double>& b);   // NaN if a variance is 0
double spearman(const std::vector<double>& a, const std::vector<double>& b);  // Pearson of average ranks
double mse(const std::vector<double>& a, const std::vector<double>& b);

// p-value of H1: the x − y differences are shifted above 0 (scipy.stats.wilcoxon(x, y,
// alternative='greater'), zero_method 'wilcox': zero differences dropped). Exact when n ≤ 50 and
// no ties, else normal approximation with tie correction (no continuity correction, scipy default).
double wilcoxon_greater(const std::vector<double>& x, const std::vector<double>& y);
// p-value of H1: x stochastically greater than y (scipy.stats.mannwhitneyu(x, y,
// alternative='greater')): exact when both sizes < 8 and no ties, else normal approximation with
// tie and continuity correction.
double mannwhitney_greater(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace lowpass::eval
