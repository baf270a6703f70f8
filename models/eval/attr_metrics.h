// Attribution metrics (REFERENCE §4.3, §4.5b–c, §4.5g): continuous Jaccard and cosine similarity of
// (4, L) tracks, entropy of the per-position |attribution| distribution, Spearman with distance to
// the nearest summit, base-ranked overlap auPRC, fraction of |attribution| inside marked sites.
// Tracks are row-major (4, L). Test: build/tests/lowpass_tests -ts=eval
#pragma once
#include <cstdint>
#include <vector>

namespace lowpass::eval {

// Σ_l Σ_b min(|u|,|v|)·sgn u·sgn v / Σ_b max(|u|,|v|) after L1-normalising each position's 4-vector
// (all-zero positions left as is; positions with a zero denominator contribute 0). Range [−L, L].
double continuous_jaccard(const std::vector<double>& u, const std::vector<double>& v, int64_t L,
                          bool normalise_positions = true);
double cosine_similarity(const std::vector<double>& u, const std::vector<double>& v);
// Mean over all pairs i < j of sim(tracks[i], tracks[j]) (the per-example seed-consistency score).
double mean_pairwise_jaccard(const std::vector<std::vector<double>>& tracks, int64_t L);

// Σ_b |score| per position, (4, L) -> (L).
std::vector<double> position_magnitude(const std::vector<double>& track, int64_t L);
// H = −Σ p log2 p with p_l ∝ Σ_b |score| + 0.001.
double attribution_entropy(const std::vector<double>& track, int64_t L, double pseudocount = 0.001);
// Spearman(Σ_b |score|_l, min_s |l − summit_s|); NaN without summits.
double summit_distance_spearman(const std::vector<double>& track, int64_t L, const std::vector<int64_t>& summits);
// Σ_{l in mask} Σ_b |score| / Σ_l Σ_b |score| (NaN if all zero). mask (L), nonzero = inside.
double fraction_inside(const std::vector<double>& track, int64_t L, const std::vector<uint8_t>& mask);
// Rank all bases of all tracks by |importance| (Σ_b |score| per position); label = mask;
// sklearn.auc(recall[:-1], precision[:-1]) of precision_recall_curve.
double overlap_auprc(const std::vector<std::vector<double>>& tracks, int64_t L,
                     const std::vector<std::vector<uint8_t>>& masks);

}  // namespace lowpass::eval
