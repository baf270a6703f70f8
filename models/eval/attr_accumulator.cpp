// evaluate's attribution metrics one example at a time; each quantity is the attr_metrics.h / fourier_metrics.h
// function of the whole-array computation. Test: build/tests/lowpass_tests -ts=eval
#include "models/eval/attr_accumulator.h"

#include <cassert>
#include <cmath>
#include <limits>

#include "engine/error.h"
#include "models/eval/attr_metrics.h"
#include "models/eval/binary_metrics.h"
#include "models/eval/fourier_metrics.h"

namespace lowpass::eval {

namespace {
std::vector<double> actual_scores(const std::vector<double>& hyp, const std::vector<double>& ohe) {
  LP_CHECK(hyp.size() == ohe.size(), "attribution metrics: ", hyp.size(), " scores for ", ohe.size(), " one-hot values");
  std::vector<double> act(hyp.size());
  for (size_t j = 0; j < hyp.size(); ++j) act[j] = hyp[j] * ohe[j];
  return act;
}
// Mean over the models of each one's metrics, summed in model order (the mean of the set, §4.3).
ExampleAttr set_mean(const std::vector<const std::vector<double>*>& set, const std::vector<double>& ohe,
                     const std::vector<uint8_t>* mask, int64_t L, int64_t K) {
  ExampleAttr m{0, 0, 0};
  for (const auto* t : set) {
    const ExampleAttr e = example_attr(actual_scores(*t, ohe), L, K, mask);
    m.entropy += e.entropy / set.size();
    m.hf_share += e.hf_share / set.size();
    m.motif_fraction += e.motif_fraction / set.size();
  }
  return m;
}
// Within one set: over pairs (i, j < i); across two: over every (i of u, j of v).
void add_similarity(PairSimilarity& s, const std::vector<const std::vector<double>*>& u,
                    const std::vector<const std::vector<double>*>* v, int64_t L) {
  double j = 0, cs = 0;
  int64_t n = 0;
  for (size_t a = 0; a < u.size(); ++a)
    for (size_t b = 0; b < (v ? v->size() : a); ++b) {
      const std::vector<double>& w = v ? *(*v)[b] : *u[b];
      j += continuous_jaccard(*u[a], w, L);
      cs += cosine_similarity(*u[a], w);
      ++n;
    }
  s.jaccard.push_back(j / static_cast<double>(n));
  s.cosine.push_back(cs / static_cast<double>(n));
}
}  // namespace

ExampleAttr example_attr(const std::vector<double>& actual, int64_t L, int64_t K, const std::vector<uint8_t>* mask) {
  ExampleAttr e;
  e.entropy = attribution_entropy(actual, L);
  e.hf_share = high_freq_share(position_magnitude(actual, L), K);
  e.motif_fraction = mask ? fraction_inside(actual, L, *mask) : std::numeric_limits<double>::quiet_NaN();
  return e;
}

AttrMetricsAccumulator::AttrMetricsAccumulator(int64_t L, int64_t K, bool summit, bool overlap)
    : L_(L), K_(K), summit_(summit), overlap_(overlap) {}

void AttrMetricsAccumulator::add(const std::vector<double>* ohe, const std::vector<uint8_t>* mask,
                                 const std::vector<double>* hyp, const std::vector<const std::vector<double>*>& set_a,
                                 const std::vector<const std::vector<double>*>& set_b) {
  assert((!hyp || ohe) && "AttrMetricsAccumulator::add: --attr's scores need the one-hot");
  assert((set_b.empty() || !set_a.empty()) && "AttrMetricsAccumulator::add: set B without set A");
  if (hyp) {
    const std::vector<double> act = actual_scores(*hyp, *ohe);
    r_.attr.push_back(example_attr(act, L_, K_, mask));
    if (overlap_) {
      LP_CHECK(mask && static_cast<int64_t>(mask->size()) == L_, "overlap_auprc: mask ", r_.attr.size() - 1, " has ",
               mask ? mask->size() : 0, " positions, expected ", L_);
      const std::vector<double> m = position_magnitude(act, L_);
      magnitude_.insert(magnitude_.end(), m.begin(), m.end());
      mask_.insert(mask_.end(), mask->begin(), mask->end());
    }
    if (summit_) {
      const double r = summit_distance_spearman(act, L_, {L_ / 2});
      if (std::isfinite(r)) r_.summit_spearman.push_back(r);
    }
  }
  if (!set_a.empty()) {
    add_similarity(r_.a, set_a, nullptr, L_);
    if (ohe) r_.attr_a.push_back(set_mean(set_a, *ohe, mask, L_, K_));
  }
  if (!set_b.empty()) {
    add_similarity(r_.b, set_b, nullptr, L_);
    add_similarity(r_.ab, set_a, &set_b, L_);
    if (ohe) r_.attr_b.push_back(set_mean(set_b, *ohe, mask, L_, K_));
  }
}

double AttrMetricsAccumulator::overlap_auprc() const {
  return auprc_trapezoid_sklearn(mask_, magnitude_);  // the byte-label form: no float64 copy of the labels
}

}  // namespace lowpass::eval
