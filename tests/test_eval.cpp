// Evaluation metrics vs hand computations and vs scikit-learn/scipy values in
// tests/fixtures/eval_fixture.json (written by tests/fixtures/make_eval_fixtures.py).
// Run: build/tests/lowpass_tests -ts=eval
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "models/eval/attr_accumulator.h"
#include "models/eval/attr_metrics.h"
#include "models/eval/binary_metrics.h"
#include "models/eval/fourier_metrics.h"
#include "models/eval/profile_metrics.h"
#include "models/eval/stats.h"
#include "engine/error.h"

using namespace lowpass::eval;
using nlohmann::json;

namespace {
json fixture() {
  std::ifstream f("tests/fixtures/eval_fixture.json");
  REQUIRE_MESSAGE(f.good(), "run from the repository root: tests/fixtures/eval_fixture.json not found");
  return json::parse(f);
}
std::vector<double> vd(const json& j) { return j.get<std::vector<double>>(); }
void close_vec(const std::vector<double>& a, const json& b, double tol = 1e-9) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("index ", i);
    if (b[i].is_null()) CHECK(std::isnan(a[i]));
    else CHECK(a[i] == doctest::Approx(b[i].get<double>()).epsilon(tol));
  }
}
}  // namespace

TEST_SUITE("eval") {
TEST_CASE("binary metrics by hand on a 4-example case") {
  // y = 1 1 0 0 with p = .9 .4 .6 .1: one positive ranked above both negatives, one between.
  // Built element by element: GCC 12.2 at -O3 -march=native (AVX-512) miscompiled the braced
  // initialiser here into {1, 1, 1, 1} (seen in gdb at the call; any later use of y hid it).
  std::vector<double> y, p;
  for (double v : {1.0, 1.0, 0.0, 0.0}) y.push_back(v);
  for (double v : {0.9, 0.4, 0.6, 0.1}) p.push_back(v);
  REQUIRE(y[2] == 0.0);
  auto m = binary_metrics(y, p);
  CHECK(m.accuracy == doctest::Approx(0.5));
  CHECK(m.auroc == doctest::Approx(0.75));
  // sklearn AP: thresholds .9 (P=1, R=.5), .6 (P=.5), .4 (P=2/3, R=1) -> .5*1 + .5*(2/3)
  CHECK(m.average_precision == doctest::Approx(0.5 + 1.0 / 3.0));
  // reference curve ascending .1 .4 .6 .9: above-sets {.4,.6,.9} {.6,.9} {.9} {}:
  // precision 2/3, 1/2, 1, 1; recall 1, .5, .5, 0; at 0.5 the first threshold >= .5 is .6 -> (1, .5)
  CHECK(m.precision == doctest::Approx(1.0));
  CHECK(m.recall == doctest::Approx(0.5));
  double trap = (1 - 0.5) * (2.0 / 3 + 0.5) / 2 + 0 + 0.5 * (1 + 1) / 2;
  CHECK(m.auprc == doctest::Approx(trap));
  CHECK(m.n_pos == 2);
  CHECK(m.n_neg == 2);
  // Labels other than 0/1 are ignored.
  auto m2 = binary_metrics({1, 1, -1, 0, 0}, {0.9, 0.4, 0.99, 0.6, 0.1});
  CHECK(m2.auroc == doctest::Approx(0.75));
  CHECK_THROWS_AS(binary_metrics({1, 0}, {0.5}), lowpass::Error);
}

TEST_CASE("binary metrics match scikit-learn and the reference's formulas") {
  auto f = fixture()["binary"];
  auto m = binary_metrics(vd(f["y"]), vd(f["p"]), f["factor"].get<double>());
  for (auto [name_, v_] : std::vector<std::pair<const char*, double>>{
           {"accuracy", m.accuracy}, {"pos_accuracy", m.pos_accuracy}, {"neg_accuracy", m.neg_accuracy},
           {"auroc", m.auroc}, {"average_precision", m.average_precision}, {"auprc", m.auprc},
           {"corrected_auprc", m.corrected_auprc}, {"ap_reference", m.ap_reference},
           {"precision", m.precision}, {"recall", m.recall}, {"corrected_precision", m.corrected_precision}}) {
    auto name = name_; auto v = v_;  // named copies: clang < 16 cannot capture structured bindings
    INFO(name);
    CHECK(v == doctest::Approx(f[name].get<double>()).epsilon(1e-10));
  }
  CHECK(m.corrected_auprc < m.auprc);  // more false positives can only lower precision
}

TEST_CASE("auPRC with byte labels equals the double-label form, ties and NaN included") {
  // evaluate's motif overlap ranks millions of positions with the byte-label form (pairs sorted in place); it must
  // give the sklearn-trapezoid value of the general form exactly: scores with many ties (rounded), a NaN (the general
  // form then runs), no positive (NaN), one position.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0, 1);
  for (int trial = 0; trial < 40; ++trial) {
    CAPTURE(trial);
    const size_t n = trial == 0 ? 1 : 1 + rng() % 5000;
    std::vector<uint8_t> yb(n);
    std::vector<double> yd(n), sc(n);
    for (size_t i = 0; i < n; ++i) {
      yb[i] = trial == 1 ? 0 : u(rng) < 0.2;
      yd[i] = yb[i];
      sc[i] = trial % 3 == 0 ? std::round(u(rng) * 20) / 20 : u(rng) + yb[i] * 0.3;
    }
    if (trial == 2) sc[n / 2] = NAN;
    const double got = auprc_trapezoid_sklearn(yb, sc), want = auprc_trapezoid_sklearn(yd, sc);
    if (std::isnan(want)) CHECK(std::isnan(got));
    else CHECK(got == want);
  }
  CHECK(std::isnan(auprc_trapezoid_sklearn(std::vector<uint8_t>{}, std::vector<double>{})));
}

TEST_CASE("statistics match scipy") {
  auto f = fixture()["stats"];
  CHECK(pearson(vd(f["a"]), vd(f["b"])) == doctest::Approx(f["pearson"].get<double>()).epsilon(1e-12));
  CHECK(spearman(vd(f["a"]), vd(f["bt"])) == doctest::Approx(f["spearman_ties"].get<double>()).epsilon(1e-12));
  CHECK(wilcoxon_greater(vd(f["x_small"]), vd(f["y_small"])) ==
        doctest::Approx(f["wilcoxon_small"].get<double>()).epsilon(1e-10));
  CHECK(wilcoxon_greater(vd(f["x_big"]), vd(f["y_big"])) ==
        doctest::Approx(f["wilcoxon_big"].get<double>()).epsilon(1e-8));
  auto xs = vd(f["x_small"]), ys = vd(f["y_small"]);
  CHECK(mannwhitney_greater({xs.begin(), xs.begin() + 6}, {ys.begin(), ys.begin() + 7}) ==
        doctest::Approx(f["mwu_small"].get<double>()).epsilon(1e-10));
  auto yb = vd(f["y_big"]);
  CHECK(mannwhitney_greater(vd(f["x_big"]), {yb.begin(), yb.begin() + 50}) ==
        doctest::Approx(f["mwu_big"].get<double>()).epsilon(1e-8));
  // Hand case: ranks of 10 20 20 30 are 1 2.5 2.5 4.
  auto r = average_ranks({10, 20, 20, 30});
  CHECK(r == std::vector<double>{1, 2.5, 2.5, 4});
  // Exact Wilcoxon: all 5 differences positive -> p = 1/32.
  CHECK(wilcoxon_greater({1, 2, 3, 4, 5}, {0, 0, 0, 0, 0}) == doctest::Approx(1.0 / 32));
  // Exact Mann–Whitney: x entirely above y (sizes 2, 2) -> p = 1/C(4,2).
  CHECK(mannwhitney_greater({3, 4}, {1, 2}) == doctest::Approx(1.0 / 6));
}

TEST_CASE("reflect Gaussian smoothing matches scipy.ndimage, including lengths shorter than the kernel") {
  auto f = fixture()["smooth"];
  for (auto& [L_, c_] : f.items()) {
    auto& L = L_; auto& c = c_;  // named copies: clang < 16 cannot capture structured bindings
    INFO("length ", L);
    close_vec(gaussian_smooth_reflect(vd(c["x"]), 3.0), c["y"], 1e-12);
  }
}

TEST_CASE("profile metrics match a numpy/scipy/sklearn computation") {
  auto f = fixture()["profile"];
  ProfileData d;
  d.N = f["N"];
  d.T = f["T"];
  d.S = f["S"];
  d.O = f["O"];
  d.true_counts = vd(f["counts"]);
  d.pred_log_probs = vd(f["logp"]);
  d.pred_log_counts = vd(f["logc"]);
  auto m = profile_metrics(d);
  close_vec(m.nll, f["nll"]);
  close_vec(m.jsd, f["jsd"], 1e-9);
  close_vec(m.count_pearson, f["count_pearson"]);
  close_vec(m.count_spearman, f["count_spearman"]);
  close_vec(m.count_mse, f["count_mse"]);
  std::vector<int64_t> bins{1, 4, 10};
  for (size_t z = 0; z < 3; ++z) {
    std::string b = std::to_string(bins[z]);
    INFO("bin ", b);
    std::vector<double> a, p, s, e;
    for (int64_t t = 0; t < d.T; ++t) {
      a.push_back(m.auprc[t][z]);
      p.push_back(m.pearson[t][z]);
      s.push_back(m.spearman[t][z]);
      e.push_back(m.mse[t][z]);
    }
    close_vec(a, f["auprc_bin" + b]);
    close_vec(p, f["pearson_bin" + b]);
    close_vec(s, f["spearman_bin" + b]);
    close_vec(e, f["mse_bin" + b]);
  }
  auto j = m.to_json(bins);
  CHECK(j.contains("auprc_bin10"));
  d.pred_log_counts.pop_back();
  CHECK_THROWS_AS(profile_metrics(d), lowpass::Error);
}

TEST_CASE("profile metrics added a batch at a time equal those over the whole arrays, double for double") {
  // The fixture's examples and a larger random set (counts with zeros, an all-zero example: NaN JSD and scores),
  // split into batches of 1, 3, 7 (not dividing N), N - 1 and N, and an empty batch on the way.
  auto f = fixture()["profile"];
  ProfileData fx;
  fx.N = f["N"], fx.T = f["T"], fx.S = f["S"], fx.O = f["O"];
  fx.true_counts = vd(f["counts"]);
  fx.pred_log_probs = vd(f["logp"]);
  fx.pred_log_counts = vd(f["logc"]);
  ProfileData rnd;
  rnd.N = 23, rnd.T = 2, rnd.S = 2, rnd.O = 37;
  uint64_t state = 12345;
  auto uni = [&state]() {  // splitmix64 -> [0, 1)
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
  };
  for (int64_t r = 0; r < rnd.N * rnd.T * rnd.S; ++r) {
    std::vector<double> logit(rnd.O);
    double mx = -1e300, se = 0;
    for (auto& v : logit) mx = std::max(mx, v = 4 * uni());
    for (double v : logit) se += std::exp(v - mx);
    for (int64_t o = 0; o < rnd.O; ++o) {
      const bool empty = r / (rnd.T * rnd.S) == 5;  // example 5 has no reads
      rnd.true_counts.push_back(empty ? 0.0 : std::floor(6 * uni() * uni()));
      rnd.pred_log_probs.push_back(logit[o] - mx - std::log(se));
    }
    rnd.pred_log_counts.push_back(3 * uni());
  }
  auto rows = [](const ProfileData& d, int64_t s, int64_t n) {
    ProfileData b;
    b.N = n, b.T = d.T, b.S = d.S, b.O = d.O;
    const int64_t per = d.T * d.S * d.O, pc = d.T * d.S;
    b.true_counts.assign(d.true_counts.begin() + s * per, d.true_counts.begin() + (s + n) * per);
    b.pred_log_probs.assign(d.pred_log_probs.begin() + s * per, d.pred_log_probs.begin() + (s + n) * per);
    b.pred_log_counts.assign(d.pred_log_counts.begin() + s * pc, d.pred_log_counts.begin() + (s + n) * pc);
    return b;
  };
  const std::vector<int64_t> bins{1, 4, 10};
  for (const ProfileData* d : {&fx, &rnd}) {
    const ProfileMetrics whole = profile_metrics(*d);
    const std::string want = whole.to_json(bins).dump();
    for (int64_t batch : {int64_t{1}, int64_t{3}, int64_t{7}, d->N - 1, d->N}) {
      INFO("N ", d->N, ", batch ", batch);
      ProfileMetricsAccumulator acc(d->T, d->S, d->O);
      for (int64_t s = 0; s < d->N; s += batch) {
        acc.add(rows(*d, s, std::min(batch, d->N - s)));
        if (s == 0) acc.add(rows(*d, 0, 0));
      }
      CHECK(acc.examples() == d->N);
      const ProfileMetrics got = acc.finish();
      CHECK(got.to_json(bins).dump() == want);
      CHECK(got.jsd_per_example.size() == whole.jsd_per_example.size());
      for (size_t i = 0; i < got.jsd_per_example.size(); ++i)
        CHECK((got.jsd_per_example[i] == whole.jsd_per_example[i] ||
               (std::isnan(got.jsd_per_example[i]) && std::isnan(whole.jsd_per_example[i]))));
    }
  }
  CHECK(std::isnan(profile_metrics(rnd).jsd_per_example[5 * rnd.T]));  // the example without reads
  ProfileMetricsAccumulator acc(rnd.T, rnd.S, rnd.O);
  CHECK_THROWS_WITH_AS(acc.finish(), doctest::Contains("no examples"), lowpass::Error);
  ProfileData other = rows(rnd, 0, 2);
  other.O = rnd.O - 1;
  CHECK_THROWS_WITH_AS(acc.add(other), doctest::Contains("a batch of (2, 2, 2, 36)"), lowpass::Error);
}

TEST_CASE("JSD by hand and edge cases") {
  // P = (1, 0), Q = (0, 1): M = (.5, .5), JSD = log 2.
  CHECK(jensen_shannon({1, 0}, {0, 1}) == doctest::Approx(std::log(2.0)));
  CHECK(jensen_shannon({2, 2}, {1, 1}) == doctest::Approx(0.0));
  CHECK(std::isnan(jensen_shannon({0, 0}, {1, 1})));
  CHECK(bin_max({1, 5, 2, 0, 7}, 2) == std::vector<double>{5, 2, 7});
}

TEST_CASE("attribution metrics match numpy/scipy/sklearn") {
  auto f = fixture()["attr"];
  int64_t L = f["L"];
  auto u = vd(f["u"]), v = vd(f["v"]);
  CHECK(continuous_jaccard(u, v, L) == doctest::Approx(f["jaccard"].get<double>()).epsilon(1e-12));
  CHECK(continuous_jaccard(u, u, L) == doctest::Approx(L - 1));  // position 3 is all zero
  CHECK(cosine_similarity(u, v) == doctest::Approx(f["cosine"].get<double>()).epsilon(1e-12));
  CHECK(attribution_entropy(u, L) == doctest::Approx(f["entropy"].get<double>()).epsilon(1e-12));
  CHECK(summit_distance_spearman(u, L, f["summits"].get<std::vector<int64_t>>()) ==
        doctest::Approx(f["summit_spearman"].get<double>()).epsilon(1e-12));
  CHECK(fraction_inside(u, L, f["mask0"].get<std::vector<uint8_t>>()) ==
        doctest::Approx(f["inside"].get<double>()).epsilon(1e-12));
  std::vector<std::vector<double>> tracks;
  for (auto& t : f["tracks"]) tracks.push_back(vd(t));
  auto masks = f["masks"].get<std::vector<std::vector<uint8_t>>>();
  CHECK(overlap_auprc(tracks, L, masks) == doctest::Approx(f["overlap_auprc"].get<double>()).epsilon(1e-10));
  // Hand cases: opposite signs give −L, a uniform track has entropy log2 L.
  std::vector<double> w(4 * 5, 0.0), nw(4 * 5, 0.0);
  for (int64_t l = 0; l < 5; ++l) { w[l] = 1; nw[l] = -2; }
  CHECK(continuous_jaccard(w, nw, 5) == doctest::Approx(-5.0));
  CHECK(attribution_entropy(w, 5) == doctest::Approx(std::log2(5.0)));
  CHECK(mean_pairwise_jaccard({w, w, nw}, 5) == doctest::Approx((5.0 - 5.0 - 5.0) / 3));
  CHECK_THROWS_AS(continuous_jaccard(w, {1, 2}, 5), lowpass::Error);
}

TEST_CASE("attribution metrics accumulated one example at a time equal the whole-set functions, double for double") {
  // evaluate streams its attribution files through AttrMetricsAccumulator; the numbers must be those of the
  // attr_metrics.h functions over whole arrays. Odd L, a set of 3 and one of 2, an all-zero track (cosine NaN).
  const int64_t N = 7, L = 13, K = 2;
  std::mt19937 rng(11);
  std::normal_distribution<double> g;
  auto track = [&] {
    std::vector<double> t(4 * L);
    for (auto& v : t) v = g(rng);
    return t;
  };
  std::vector<std::vector<double>> ohe(N, std::vector<double>(4 * L, 0.0)), hyp, acts;
  std::vector<std::vector<uint8_t>> masks(N, std::vector<uint8_t>(L, 0));
  std::vector<std::vector<std::vector<double>>> A(3), B(2);  // (model, example)
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t l = 0; l < L; ++l) {
      if (l != 5) ohe[i][(rng() % 4) * L + l] = 1;  // position 5 is an N
      masks[i][l] = (l + i) % 4 == 0;
    }
    hyp.push_back(track());
    std::vector<double> act(4 * L);
    for (int64_t j = 0; j < 4 * L; ++j) act[j] = hyp[i][j] * ohe[i][j];
    acts.push_back(act);
    for (auto& m : A) m.push_back(track());
    for (auto& m : B) m.push_back(track());
  }
  B[1][2].assign(4 * L, 0.0);
  AttrMetricsAccumulator acc(L, K, true, true);
  for (int64_t i = 0; i < N; ++i)
    acc.add(&ohe[i], &masks[i], &hyp[i], {&A[0][i], &A[1][i], &A[2][i]}, {&B[0][i], &B[1][i]});
  const AttrPerExample& pe = acc.per_example();
  REQUIRE(pe.attr.size() == N);
  REQUIRE(pe.attr_a.size() == N);
  REQUIRE(pe.ab.jaccard.size() == N);
  CHECK(acc.overlap_auprc() == overlap_auprc(acts, L, masks));
  auto same = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
  for (int64_t i = 0; i < N; ++i) {
    INFO("example ", i);
    CHECK(pe.attr[i].entropy == attribution_entropy(acts[i], L));
    CHECK(pe.attr[i].hf_share == lowpass::high_freq_share(position_magnitude(acts[i], L), K));
    CHECK(pe.attr[i].motif_fraction == fraction_inside(acts[i], L, masks[i]));
    CHECK(pe.summit_spearman[i] == summit_distance_spearman(acts[i], L, {L / 2}));
    CHECK(pe.a.jaccard[i] == mean_pairwise_jaccard({A[0][i], A[1][i], A[2][i]}, L));
    CHECK(pe.b.jaccard[i] == continuous_jaccard(B[1][i], B[0][i], L));
    CHECK(same(pe.b.cosine[i], cosine_similarity(B[1][i], B[0][i])));
    CHECK(std::isnan(pe.b.cosine[i]) == (i == 2));
    double j = 0, c = 0;
    for (const auto& a : A)
      for (const auto& b : B) {
        j += continuous_jaccard(a[i], b[i], L);
        c += cosine_similarity(a[i], b[i]);
      }
    CHECK(pe.ab.jaccard[i] == j / 6);
    CHECK(same(pe.ab.cosine[i], c / 6));
    double h = 0;
    for (const auto& m : B) {
      std::vector<double> act(4 * L);
      for (int64_t k = 0; k < 4 * L; ++k) act[k] = m[i][k] * ohe[i][k];
      h += fraction_inside(act, L, masks[i]) / 2;
    }
    CHECK(same(pe.attr_b[i].motif_fraction, h));
  }
  // Without a mask the motif fraction is NaN; without the one-hot there are no per-set attribution metrics.
  AttrMetricsAccumulator plain(L, K, false, false);
  plain.add(&ohe[0], nullptr, &hyp[0], {&A[0][0], &A[1][0]}, {});
  plain.add(nullptr, nullptr, nullptr, {&A[0][1], &A[1][1]}, {});
  CHECK(std::isnan(plain.per_example().attr[0].motif_fraction));
  CHECK(plain.per_example().summit_spearman.empty());
  CHECK(plain.per_example().attr_a.size() == 1);
  CHECK(plain.per_example().a.jaccard.size() == 2);
  CHECK(plain.per_example().b.jaccard.empty());
}
}
