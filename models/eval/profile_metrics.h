// Profile metrics (REFERENCE §4.2): multinomial NLL, Jensen–Shannon divergence of σ=3
// reflect-smoothed profiles, binned auPRC (bins 1/4/10, strands pooled), Pearson/Spearman/MSE of
// binned probabilities, and total-count Pearson/Spearman/MSE of log(1 + counts).
// Legend: N examples, T tasks, S strands, O output length. Test: build/tests/lowpass_tests -ts=eval
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowpass::eval {

// Flat row-major arrays with explicit dimensions.
struct ProfileData {
  int64_t N = 0, T = 0, S = 0, O = 0;
  std::vector<double> true_counts;     // (N, T, S, O) raw counts
  std::vector<double> pred_log_probs;  // (N, T, S, O) log softmax over O
  std::vector<double> pred_log_counts; // (N, T, S) predicted log counts
};

// scipy.ndimage.gaussian_filter1d(x, sigma, mode='reflect', truncate=1.0) of one track.
std::vector<double> gaussian_smooth_reflect(const std::vector<double>& x, double sigma, double truncate = 1.0);
// Natural-log Jensen–Shannon divergence of two non-negative vectors (each renormalised; NaN if a sum is 0).
double jensen_shannon(const std::vector<double>& p, const std::vector<double>& q);
// Max-pool bins of `bin` along a vector (zero-padded to a multiple of bin).
std::vector<double> bin_max(const std::vector<double>& x, int64_t bin);
// sklearn average precision ignoring labels other than 0/1 (the reference's auprc_score).
double masked_average_precision(const std::vector<double>& y, const std::vector<double>& score);

struct ProfileMetricsConfig {
  std::vector<int64_t> bin_sizes{1, 4, 10};
  double smooth_sigma = 3.0;
  double min_pos_prob = 0.15, max_neg_prob = 0.05;
  double min_pos_count = 3;
};

struct ProfileMetrics {
  std::vector<double> nll;  // (T): mean over examples and strands
  std::vector<double> jsd;  // (T): nan-mean over examples of the strand-averaged JSD
  std::vector<std::vector<double>> auprc, pearson, spearman, mse;  // (T, Z) nan-means over examples
  std::vector<double> count_pearson, count_spearman, count_mse;   // (T)
  std::vector<double> jsd_per_example;  // (N, T)
  nlohmann::json to_json(const std::vector<int64_t>& bin_sizes) const;
};

ProfileMetrics profile_metrics(const ProfileData& d, const ProfileMetricsConfig& cfg = {});

// The same metrics over examples given a batch of rows at a time (evaluate streams its npz through it): add()
// computes each example's metrics and keeps only small per-example numbers (JSD, the binned scores and the count
// pairs, O(N·T·(S + 4·Z)) doubles), finish() takes the means and the count correlations. The sums run in example
// order, so any batching gives the same doubles as profile_metrics over the whole arrays (which is one add()).
class ProfileMetricsAccumulator {
 public:
  ProfileMetricsAccumulator(int64_t T, int64_t S, int64_t O, ProfileMetricsConfig cfg = {});
  void add(const ProfileData& batch);  // batch.N >= 0 rows of the same T, S, O
  int64_t examples() const { return N_; }
  ProfileMetrics finish() const;       // Error when no example was added

 private:
  int64_t T_, S_, O_, N_ = 0;
  ProfileMetricsConfig cfg_;
  std::vector<double> nll_sum_;                                    // (T)
  std::vector<std::vector<double>> jsd_;                           // (T, N)
  std::vector<std::vector<std::vector<double>>> au_, pe_, sp_, ms_;  // (T, Z, N)
  std::vector<std::vector<double>> ct_, cp_;                       // (T, N·S): log(1 + true total), predicted
};

}  // namespace lowpass::eval
