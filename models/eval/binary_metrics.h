// Binary classification metrics of one task (REFERENCE §4.2): accuracy (overall/positive/negative)
// at 0.5, auROC, auPRC as the reference's trapezoid over its PR curve and as average precision,
// the same corrected for negative downsampling, precision/recall at 0.5. Labels other than 0/1 are ignored.
// Test: build/tests/lowpass_tests -ts=eval
#pragma once
#include <vector>

#include <nlohmann/json.hpp>

namespace lowpass::eval {

struct BinaryMetrics {
  double accuracy = 0, pos_accuracy = 0, neg_accuracy = 0;
  double auroc = 0;
  double auprc = 0;              // sklearn.metrics.auc(recall, precision) over the reference's curve
  double ap_reference = 0;       // the reference's Σ (r_i − r_{i+1}) p_i over the same curve
  double average_precision = 0;  // sklearn.metrics.average_precision_score
  double precision = 0, recall = 0;  // at threshold 0.5 (the reference's "closest threshold ≥ 0.5")
  double corrected_auprc = 0, corrected_ap = 0, corrected_precision = 0;  // FP × neg_upsample_factor
  int64_t n_pos = 0, n_neg = 0;
  nlohmann::json to_json() const;
};

// y: labels (1, 0, anything else ignored); p: predicted probabilities in [0, 1].
BinaryMetrics binary_metrics(const std::vector<double>& y, const std::vector<double>& p,
                             double neg_upsample_factor = 1.0);

double roc_auc(const std::vector<double>& y, const std::vector<double>& score);  // y in {0,1}
// sklearn.metrics.average_precision_score (ties grouped); NaN without positives.
double average_precision(const std::vector<double>& y, const std::vector<double>& score);
// sklearn.metrics.auc(recall[:-1], precision[:-1]) of sklearn's precision_recall_curve (§4.5c).
double auprc_trapezoid_sklearn(const std::vector<double>& y, const std::vector<double>& score);
// The same for 0/1 labels as bytes (many positions: evaluate's motif overlap), equal to the double-label form, in
// 16 bytes a position (score, label pairs sorted in place, no merge buffer).
double auprc_trapezoid_sklearn(const std::vector<uint8_t>& y, const std::vector<double>& score);

}  // namespace lowpass::eval
