// The attribution metrics of `lowpass evaluate` (docs/evaluation.md) over examples given one at a time, as evaluate
// reads its attribution files in row chunks: per example, the actual scores' (hyp ⊙ one-hot) entropy / HF share /
// motif fraction and the seed consistency (continuous Jaccard, cosine) within and across two sets of models.
// Legend: L positions; tracks are row-major (4, L) float64, masks (L). Test: build/tests/lowpass_tests -ts=eval
#pragma once
#include <cstdint>
#include <vector>

namespace lowpass::eval {

// One example's metrics of its actual scores (4, L): entropy, HF share with cut-off K (Σ_b |actual| per position) and
// the fraction of Σ_b |actual| inside the mask's sites (NaN without a mask).
struct ExampleAttr {
  double entropy = 0, hf_share = 0, motif_fraction = 0;
};
ExampleAttr example_attr(const std::vector<double>& actual, int64_t L, int64_t K, const std::vector<uint8_t>* mask);

// Per example: the mean over model pairs of the continuous Jaccard and of the cosine similarity.
struct PairSimilarity {
  std::vector<double> jaccard, cosine;
};

// What the whole-set statistics need, in the order the examples were added.
struct AttrPerExample {
  std::vector<ExampleAttr> attr;            // --attr: of its actual scores
  std::vector<double> summit_spearman;      // --attr with summit: the finite Spearmans with the distance to L/2
  PairSimilarity a, b, ab;                  // pairs within set A, within set B, and (a of A, b of B)
  std::vector<ExampleAttr> attr_a, attr_b;  // with the one-hot: each model's actual scores, mean over the set
};

// add() takes each example's metrics at once and keeps only per-example numbers and, for overlap_auprc, Σ_b |actual|
// and the mask per position of --attr (9 bytes a position). Sums over models run in the order given and examples are
// kept in the order added, so the numbers do not depend on how the rows were chunked.
class AttrMetricsAccumulator {
 public:
  // summit: take summit_distance_spearman of --attr's actual scores with the summit at L/2; overlap: keep what
  // overlap_auprc needs (then every add() with hyp needs a mask).
  AttrMetricsAccumulator(int64_t L, int64_t K, bool summit, bool overlap);
  // One example: ohe its one-hot (null without one; needed by hyp and for attr_a/attr_b), mask its motif sites (null
  // without), hyp its --attr hypothetical scores (null without), set_a/set_b the hypothetical scores of each model of
  // the two sets (empty without; at least two each, set_b only with set_a).
  void add(const std::vector<double>* ohe, const std::vector<uint8_t>* mask, const std::vector<double>* hyp,
           const std::vector<const std::vector<double>*>& set_a, const std::vector<const std::vector<double>*>& set_b);
  const AttrPerExample& per_example() const { return r_; }
  // eval::overlap_auprc of --attr's actual scores over the examples added (NaN-free only with overlap).
  double overlap_auprc() const;

 private:
  int64_t L_, K_;
  bool summit_, overlap_;
  AttrPerExample r_;
  std::vector<double> magnitude_;  // (n, L) Σ_b |actual| of --attr
  std::vector<uint8_t> mask_;      // (n, L)
};

}  // namespace lowpass::eval
