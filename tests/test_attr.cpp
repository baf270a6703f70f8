// Attributions: dinucleotide shuffle (exact counts, seeded), gradients, DeepLIFT/DeepSHAP
// (summation-to-delta, captum fixture), ISM vs brute force, integrated gradients, fold-ensemble means.
// Run: build/tests/lowpass_tests -ts=attr
#include <doctest/doctest.h>

#include <map>

#include "models/attr/dinuc_shuffle.h"
#include "models/attr/marginalize.h"
#include "models/attr/model_dir.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using test::max_abs;
using test::max_abs_diff;

namespace {
std::map<std::string, int> dinucs(const std::string& s) {
  std::map<std::string, int> m;
  for (size_t i = 0; i + 1 < s.size(); ++i) m[s.substr(i, 2)]++;
  return m;
}
}  // namespace

TEST_SUITE("attr") {
TEST_CASE("dinucleotide shuffle preserves dinucleotide counts exactly and is seeded") {
  Rng rng(7);
  std::string alpha = "ACGT";
  for (int64_t L : {1, 2, 3, 5, 50, 1000}) {
    std::string s;
    for (int64_t i = 0; i < L; ++i) s += alpha[rng.randint(0, 4)];
    if (L >= 50) s[10] = 'N';
    bool changed = false;
    for (int rep = 0; rep < 5; ++rep) {
      std::string t = dinuc_shuffle(s, rng);
      INFO("L=", L, " ", s.substr(0, 60), " -> ", t.substr(0, 60));
      REQUIRE(t.size() == s.size());
      CHECK(dinucs(t) == dinucs(s));
      CHECK(t.front() == s.front());
      CHECK(t.back() == s.back());
      changed = changed || t != s;
    }
    if (L >= 50) CHECK(changed);
  }
  Rng a(123), b(123);
  std::string s = "ACGTTGCAAGGCTTACGATCGATCGGGATTACA";
  CHECK(dinuc_shuffle(s, a) == dinuc_shuffle(s, b));
}

TEST_CASE("dinucleotide shuffle is uniform over Eulerian paths on a small case") {
  // AACCA: edges A->A, A->C, C->C, C->A starting at A ending at A. Paths with the same counts:
  // AACCA and ACCAA... enumerate by sampling and check every distinct result has counts preserved
  // and that both arrangements appear with roughly equal frequency.
  Rng rng(1);
  std::map<std::string, int> seen;
  for (int i = 0; i < 4000; ++i) seen[dinuc_shuffle("AACCA", rng)]++;
  CHECK(seen.size() == 2);
  for (auto& [k, v] : seen) {
    CHECK(dinucs(k) == dinucs("AACCA"));
    CHECK(v > 1700);
  }
}

TEST_CASE("one-hot shuffles keep N columns and reject non-one-hot input") {
  Context ctx(1, 3);
  const int64_t L = 41;
  std::vector<float> x(2 * 4 * L, 0.f);
  Rng r(5);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t l = 0; l < L; ++l)
      if (l != 7) x[(b * 4 + r.randint(0, 4)) * L + l] = 1.f;
  Tensor t = Tensor::from_vector(ctx, {2, 4, L}, x);
  Rng rng(9);
  Tensor s = dinuc_shuffle_onehot(t, 3, rng);
  REQUIRE(s.shape() == Shape{6, 4, L});
  for (int64_t b = 0; b < 2; ++b) {
    auto orig = onehot_to_tokens(t, b);
    for (int64_t k = 0; k < 3; ++k) {
      auto sh = onehot_to_tokens(s, b * 3 + k);
      std::map<int, int> c1, c2;
      for (int64_t l = 0; l + 1 < L; ++l) { c1[orig[l] * 5 + orig[l + 1]]++; c2[sh[l] * 5 + sh[l + 1]]++; }
      CHECK(c1 == c2);
    }
  }
  x[0] = 0.5f;
  CHECK_THROWS_AS(dinuc_shuffle_onehot(Tensor::from_vector(ctx, {2, 4, L}, x), 2, rng), Error);
}
}

// ---------------- attribution methods on the two architectures ----------------
#include <cmath>

#include <nlohmann/json.hpp>

#include "engine/safetensors.h"
#include "models/attr/attribute.h"
#include "models/attr/deeplift.h"

namespace {
using lowpass::attr::AttrOptions;
using lowpass::attr::Target;

std::unique_ptr<Model> small_binary(Context& ctx, int64_t pool = 8, int64_t stride = 6) {
  nlohmann::json j = {{"type", "binary"}, {"dtype", "float64"}, {"input_length", 60}, {"num_tasks", 2},
                      {"conv_depths", {8, 8, 8}}, {"conv_filter_sizes", {7, 5, 3}}, {"max_pool_size", pool},
                      {"max_pool_stride", stride}, {"fc_sizes", {10, 6}}};
  auto m = make_model(j, ctx);
  for (auto& [k, v] : m->buffers()) {  // non-trivial eval-mode batch norm
    if (k.find("running_mean") != std::string::npos) v.copy_(Tensor::uniform(ctx, v.shape(), -0.2, 0.2, v.dtype()));
    if (k.find("running_var") != std::string::npos) v.copy_(Tensor::uniform(ctx, v.shape(), 0.5, 1.5, v.dtype()));
  }
  return m;
}
std::unique_ptr<Model> small_profile(Context& ctx) {
  nlohmann::json j = {{"type", "profile"}, {"dtype", "float64"}, {"input_length", 60}, {"output_length", 36},
                      {"num_tasks", 2}, {"num_strands", 2}, {"controls", "matched"},
                      {"dil_conv_filter_sizes", {5, 3, 3}}, {"dil_conv_dilations", {1, 2, 4}},
                      {"dil_conv_depths", {8, 8, 8}}, {"prof_conv_kernel_size", 9}};
  return make_model(j, ctx);
}
Tensor random_onehot(Context& ctx, int64_t B, int64_t L, bool with_n) {
  std::vector<double> x(B * 4 * L, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l)
      if (!(with_n && l % 17 == 3)) x[(b * 4 + ctx.rng().randint(0, 4)) * L + l] = 1.0;
  return Tensor::from_vector(ctx, {B, 4, L}, x);
}
Tensor random_control(Context& ctx, int64_t B) {
  Tensor c = Tensor::uniform(ctx, {B, 2, 2, 36}, 0.0, 4.0, DType::F64);
  double* p = c.data<double>();
  for (int64_t i = 0; i < c.numel(); ++i) p[i] = std::floor(p[i]);
  return c;
}
}  // namespace

TEST_SUITE("attr") {
TEST_CASE("input gradient equals central finite differences of the target (binary logits, profile, counts)") {
  Context ctx(1, 11);
  auto bin = small_binary(ctx);
  auto prof = small_profile(ctx);
  Tensor xb = random_onehot(ctx, 2, 60, true), xp = random_onehot(ctx, 2, 60, false), cp = random_control(ctx, 2);
  struct Case { Model* m; Tensor x, c; const char* target; };
  for (auto& cs : {Case{bin.get(), xb, Tensor(), "logits"}, Case{bin.get(), xb, Tensor(), "logits:1"},
                   Case{prof.get(), xp, cp, "profile"}, Case{prof.get(), xp, cp, "counts:0"},
                   Case{prof.get(), xp, cp, "profile_raw"}}) {
    INFO("target ", cs.target);
    Target t = attr::parse_target(cs.target);
    Tensor g = attr::input_gradient(*cs.m, cs.x, cs.c, t);
    Tensor seed = attr::target_seed(cs.m->forward(cs.x, cs.c, false), t).second;
    auto f = [&](const Tensor& x) {
      auto v = attr::target_values(*cs.m, x, cs.c, seed, t);
      double s = 0;
      for (double e : v) s += e;
      return s;
    };
    Tensor x = cs.x.clone();
    double* p = x.data<double>();
    auto gv = g.to_vector<double>();
    double worst = 0, scale = max_abs(g);
    for (int64_t i = 0; i < x.numel(); i += 7) {  // a spread of coordinates, both examples
      double old = p[i];
      p[i] = old + 1e-5;
      double fp = f(x);
      p[i] = old - 1e-5;
      double fm = f(x);
      p[i] = old;
      worst = std::max(worst, std::fabs((fp - fm) / 2e-5 - gv[i]));
    }
    CHECK(scale > 0);
    CHECK(worst < 1e-6 * std::max(1.0, scale));
  }
}

TEST_CASE("ISM equals brute-force single-mutant predictions, mean-centred, batched awkwardly") {
  Context ctx(1, 12);
  auto prof = small_profile(ctx);
  Tensor x = random_onehot(ctx, 2, 60, true), c = random_control(ctx, 2);
  AttrOptions o;
  o.method = "ism";
  o.target = attr::parse_target("profile:1");
  o.max_batch = 7;
  auto r = attr::attribute(*prof, x, c, o);
  Tensor seed = attr::target_seed(prof->forward(x, c, false), o.target).second;
  auto hv = r.hyp.to_vector<double>();
  for (int64_t b = 0; b < 2; ++b) {
    Tensor xb = slice(x, 0, b, 1).clone(), cb = slice(c, 0, b, 1).clone(), sb = slice(seed, 0, b, 1).clone();
    double f0 = attr::target_values(*prof, xb, cb, sb, o.target)[0];
    auto tok = onehot_to_tokens(x, b);
    for (int64_t l : {0, 3, 20, 59}) {  // 3 is an N position
      double d[4];
      for (int cc = 0; cc < 4; ++cc) {
        if (cc == tok[l]) { d[cc] = 0; continue; }
        Tensor m = xb.clone();
        double* p = m.data<double>();
        for (int k = 0; k < 4; ++k) p[k * 60 + l] = 0;
        p[cc * 60 + l] = 1;
        d[cc] = attr::target_values(*prof, m, cb, sb, o.target)[0] - f0;
      }
      double mean = (d[0] + d[1] + d[2] + d[3]) / 4;
      for (int cc = 0; cc < 4; ++cc) CHECK(hv[(b * 4 + cc) * 60 + l] == doctest::Approx(d[cc] - mean).epsilon(1e-9));
    }
  }
}

TEST_CASE("true DeepSHAP: summation-to-delta per example within 1e-3 relative, batching does not matter") {
  Context ctx(1, 13);
  auto bin = small_binary(ctx, 8, 6);  // overlapping max-pool windows
  auto prof = small_profile(ctx);
  Tensor xb = random_onehot(ctx, 3, 60, true), xp = random_onehot(ctx, 2, 60, false), cp = random_control(ctx, 2);
  AttrOptions o;
  o.method = "deepshap";
  o.refs = 5;
  for (const char* t : {"logits", "logits:0"}) {
    o.target = attr::parse_target(t);
    o.max_batch = 64;
    auto r = attr::attribute(*bin, xb, Tensor(), o);
    REQUIRE(r.delta_rel.size() == 3);
    for (double d : r.delta_rel) CHECK(d < 1e-3);
    o.max_batch = 3;
    auto r2 = attr::attribute(*bin, xb, Tensor(), o);
    CHECK(max_abs_diff(r.hyp, r2.hyp) < 1e-12);
    CHECK(max_abs(r.hyp) > 1e-6);
  }
  for (const char* t : {"profile", "counts", "profile_raw:1"}) {
    INFO(t);
    o.target = attr::parse_target(t);
    o.max_batch = 6;
    auto r = attr::attribute(*prof, xp, cp, o);
    for (double d : r.delta_rel) CHECK(d < 1e-3);
    // Without N bases, hyp ⊙ x carries all of it: Σ actual = f(x) − mean f(r).
    auto a = r.actual.to_vector<double>();
    Tensor seed = attr::target_seed(prof->forward(xp, cp, false), o.target).second;
    for (int64_t b = 0; b < 2; ++b) {
      double s = 0;
      for (int64_t i = 0; i < 4 * 60; ++i) s += a[b * 240 + i];
      Rng rng(o.seed + b);  // the same shuffles attribute() drew for example b
      Tensor refs = dinuc_shuffle_onehot(slice(xp, 0, b, 1), 5, rng);
      std::vector<int64_t> own(5, b);
      auto fr = attr::target_values(*prof, refs, index_select(cp, 0, own), index_select(seed, 0, own), o.target);
      double fx = attr::target_values(*prof, slice(xp, 0, b, 1), slice(cp, 0, b, 1), slice(seed, 0, b, 1), o.target)[0];
      double mean_fr = (fr[0] + fr[1] + fr[2] + fr[3] + fr[4]) / 5;
      CHECK(std::fabs(fx - mean_fr) > 1e-9);
      CHECK(s == doctest::Approx(fx - mean_fr).epsilon(1e-9));
    }
  }
}

TEST_CASE("DeepLIFT with each input run once equals the pairs' form bit for bit (ReLU model); max-pool is refused") {
  Context ctx(2, 23);
  auto prof = small_profile(ctx);
  const int64_t U = 3;
  Tensor xu = random_onehot(ctx, U, 60, true), cu = random_control(ctx, U);
  const std::vector<int64_t> owner = {0, 0, 1, 2, 2, 2, 1};  // unequal counts, not in order
  const int64_t P = static_cast<int64_t>(owner.size());
  Tensor r = random_onehot(ctx, P, 60, false);
  for (const std::string target : {"profile", "profile_raw:1", "counts"}) {
    CAPTURE(target);
    const Target t = attr::parse_target(target);
    const auto a = attr::deeplift_multipliers_shared(*prof, xu, r, owner, cu, t);
    const auto b = attr::deeplift_multipliers(*prof, index_select(xu, 0, owner), r, index_select(cu, 0, owner), t);
    CHECK(max_abs_diff(a.multipliers, b.multipliers) == 0.0);
    CHECK(a.f_x == b.f_x);
    CHECK(a.f_r == b.f_r);
  }
  auto bin = small_binary(ctx);
  CHECK_THROWS_WITH_AS(attr::deeplift_multipliers_shared(*bin, xu, r, owner, Tensor(), attr::parse_target("logits")),
                       doctest::Contains("ReLU models only"), Error);
  CHECK_THROWS_AS(attr::deeplift_multipliers_shared(*prof, xu, r, {0, 0, 1, 3, 2, 2, 1}, cu, Target{}), Error);
}

TEST_CASE("true DeepSHAP matches captum's DeepLiftShap on the same models and references") {
  Context ctx(1, 14);
  auto f = safetensors::load(ctx, "tests/fixtures/attr_deepshap.safetensors");
  for (std::string kind : {"binary", "profile"}) {
    INFO(kind);
    auto model = make_model(nlohmann::json::parse(f.metadata.at(kind)), ctx);
    std::map<std::string, Tensor> sd;
    for (auto& [k, e] : f.tensors)
      if (k.rfind(kind + "/state/", 0) == 0) sd[k.substr(kind.size() + 7)] = e.tensor;
    model->load_state_dict(sd);
    Tensor x = f.at(kind + "/x").tensor, refs = f.at(kind + "/refs").tensor;
    Tensor control = kind == "profile" ? f.at("profile/control").tensor : Tensor();
    const int64_t B = x.size(0), k = refs.size(0) / B;
    std::vector<int64_t> own(B * k);
    for (int64_t p = 0; p < B * k; ++p) own[p] = p / k;
    std::vector<std::pair<std::string, std::string>> targets = {{kind == "binary" ? "logits" : "profile", "/hyp"}};
    if (kind == "profile") targets.push_back({"counts", "/hyp_counts"});
    for (auto& [tname_, key_] : targets) {
      auto& tname = tname_; auto& key = key_;  // named copies: clang < 16 cannot capture structured bindings
      INFO(tname);
      auto dl = attr::deeplift_multipliers(*model, index_select(x, 0, own), refs,
                                           control.defined() ? index_select(control, 0, own) : Tensor(),
                                           attr::parse_target(tname));
      Tensor hyp = attr::combine_mult_and_diffref(dl.multipliers, refs, k);
      Tensor want = f.at(kind + key).tensor;
      CHECK(max_abs(want) > 1e-6);
      CHECK(max_abs_diff(hyp, want) < 1e-9 * std::max(1.0, max_abs(want)));
    }
  }
}

TEST_CASE("the paper's gradient 'DeepSHAP' is g − Σ r̄ g with r̄ the mean of seeded dinucleotide shuffles") {
  Context ctx(1, 15);
  auto bin = small_binary(ctx);
  Tensor x = random_onehot(ctx, 2, 60, true);
  AttrOptions o;
  o.method = "deepshap_ref";
  auto r = attr::attribute(*bin, x, Tensor(), o, /*first_index=*/5);
  Tensor g = attr::input_gradient(*bin, x, Tensor(), o.target);
  auto gv = g.to_vector<double>(), hv = r.hyp.to_vector<double>();
  for (int64_t b = 0; b < 2; ++b) {
    Rng rng(o.seed + 5 + b);
    auto refs = dinuc_shuffle_onehot(slice(x, 0, b, 1), 10, rng).to_vector<double>();
    for (int64_t l = 0; l < 60; ++l) {
      double rg = 0;
      for (int c = 0; c < 4; ++c) {
        double rbar = 0;
        for (int j = 0; j < 10; ++j) rbar += refs[(j * 4 + c) * 60 + l] / 10;
        rg += rbar * gv[(b * 4 + c) * 60 + l];
      }
      for (int c = 0; c < 4; ++c) CHECK(hv[(b * 4 + c) * 60 + l] == doctest::Approx(gv[(b * 4 + c) * 60 + l] - rg));
    }
  }
  // Batching and position in the stream: example 1 alone with first_index 6 gives the same scores.
  auto r1 = attr::attribute(*bin, slice(x, 0, 1, 1).clone(), Tensor(), o, 6);
  CHECK(max_abs_diff(r1.hyp, slice(r.hyp, 0, 1, 1).clone()) < 1e-12);
}

// Integrated gradients of the counts head with `steps` midpoints and no refinement (tolerance 0).
AttrOptions ig_counts(int64_t steps, int64_t max_batch) {
  AttrOptions o;
  o.method = "ig";
  o.target = attr::parse_target("counts");
  o.ig_steps = steps;
  o.ig_tolerance = 0;
  o.max_batch = max_batch;
  return o;
}

TEST_CASE("integrated gradients: completeness improves with steps; grad/gradxinput relations") {
  Context ctx(1, 16);
  auto prof = small_profile(ctx);
  Tensor x = random_onehot(ctx, 2, 60, false), c = random_control(ctx, 2);
  AttrOptions o = ig_counts(256, 50);
  auto r = attr::attribute(*prof, x, c, o);
  for (double d : r.delta_rel) CHECK(d < 1e-3);
  CHECK(r.steps == std::vector<int64_t>{256, 256});
  o.method = "grad";
  auto g = attr::attribute(*prof, x, c, o);
  o.method = "gradxinput";
  auto gx = attr::attribute(*prof, x, c, o);
  CHECK(max_abs_diff(gx.hyp, mul(g.hyp, x)) == 0.0);
  CHECK(max_abs_diff(gx.actual, g.actual) == 0.0);
  o.method = "nonsense";
  CHECK_THROWS_AS(attr::attribute(*prof, x, c, o), Error);
  CHECK_THROWS_AS(attr::parse_target("logit"), Error);
  CHECK_THROWS_AS(attr::parse_target("logits:x"), Error);
  o.method = "grad";
  o.target = attr::parse_target("logits");  // a profile model has no binary logits: the message lists its targets
  CHECK_THROWS_WITH_AS(attr::attribute(*prof, x, c, o),
                       doctest::Contains("its targets are profile[:t], profile_raw[:t] and counts[:t]"), Error);
}

// Counts the rows each forward pass of a wrapped model sees (the same parameters, so the same outputs).
class CountingModel : public Model {
 public:
  explicit CountingModel(Model& m) : m_(m) { params_ = m.parameters(), buffers_ = m.buffers(); }
  std::string type() const override { return m_.type(); }
  ModelOutput forward(const Tensor& x, const Tensor& control, bool training) override {
    rows += x.size(0), ++passes;
    return m_.forward(x, control, training);
  }
  int64_t input_length() const override { return m_.input_length(); }
  int64_t output_length() const override { return m_.output_length(); }
  int64_t tasks() const override { return m_.tasks(); }
  nlohmann::json config() const override { return m_.config(); }
  int64_t rows = 0, passes = 0;

 private:
  Model& m_;
};

TEST_CASE("attribute runs no forward pass it does not use: one per gradient, ig's f(x) from the seed's pass") {
  Context ctx(1, 21);
  auto prof = small_profile(ctx);
  CountingModel cm(*prof);
  const int64_t B = 3;
  Tensor x = random_onehot(ctx, B, 60, true), c = random_control(ctx, B);
  for (const std::string target : {"profile", "counts:1"}) {
    CAPTURE(target);
    const Target t = attr::parse_target(target);
    const Tensor g = attr::input_gradient(*prof, x, c, t);
    for (const std::string method : {"grad", "gradxinput", "deepshap_ref"}) {
      CAPTURE(method);
      AttrOptions o;
      o.method = method, o.target = t;
      cm.rows = 0, cm.passes = 0;
      auto r = attr::attribute(cm, x, c, o);
      CHECK(cm.passes == 1);  // the gradient's forward also gives the seed (it ran a second one for the seed)
      CHECK(cm.rows == B);
      if (method == "grad") CHECK(max_abs_diff(r.hyp, g) == 0.0);
      if (method == "gradxinput") CHECK(max_abs_diff(r.hyp, mul(g, x)) == 0.0);
    }
    AttrOptions o;
    o.method = "deepshap", o.target = t, o.refs = 4, o.max_batch = 64;
    cm.rows = 0;
    attr::attribute(cm, x, c, o);
    CHECK(cm.rows == B + B * 4);  // each input once and its references (a ReLU model: the shared form)
    o = ig_counts(8, 64);
    o.target = t;
    cm.rows = 0, cm.passes = 0;
    auto r = attr::attribute(cm, x, c, o);
    CHECK(cm.rows == B + B * 8 + B);  // f(x) and the seed in one pass, the path points, f(0)
    // f(x) − f(0) exactly as two separate passes give it
    Tensor seed;
    {
      NoGradGuard ng;
      seed = attr::target_seed(prof->forward(x, c, false), t).second;
    }
    const auto fx = attr::target_values(*prof, x, c, seed, t);
    const auto f0 = attr::target_values(*prof, mul_scalar(x, 0.0), c, seed, t);
    for (int64_t b = 0; b < B; ++b) CHECK(r.difference[b] == fx[b] - f0[b]);
  }
}

TEST_CASE("integrated gradients: an example above the tolerance is redone with 3x the points, reusing the old ones") {
  Context ctx(1, 16);
  auto prof = small_profile(ctx);
  Tensor x = random_onehot(ctx, 3, 60, false), c = random_control(ctx, 3);
  AttrOptions o = ig_counts(2, 7);
  auto coarse = attr::attribute(*prof, x, c, o);
  CHECK(coarse.steps == std::vector<int64_t>{2, 2, 2});
  o.ig_tolerance = 2e-3;
  o.ig_max_steps = 2 * 27;
  auto r = attr::attribute(*prof, x, c, o);
  int64_t redone = 0;
  for (int64_t b = 0; b < 3; ++b) {
    INFO("example ", b, " steps ", r.steps[b], " error ", coarse.delta_rel[b], " -> ", r.delta_rel[b]);
    const int64_t m = r.steps[b];
    CHECK((m == 2 || m == 6 || m == 18 || m == 54));
    // Stopped because converged, or because 3m would pass the cap; refined only while above the tolerance.
    CHECK((r.delta_rel[b] <= o.ig_tolerance || m == 54));
    if (m > 2) CHECK(coarse.delta_rel[b] > o.ig_tolerance);
    redone += m > 2;
    // The refined scores equal a plain m-point run of that example alone (the nested midpoints give the same sum).
    AttrOptions plain = o;
    plain.ig_steps = m;
    plain.ig_tolerance = 0;
    auto one = attr::attribute(*prof, slice(x, 0, b, 1).clone(), slice(c, 0, b, 1).clone(), plain);
    CHECK(max_abs_diff(one.hyp, slice(r.hyp, 0, b, 1).clone()) < 1e-10);
    CHECK(one.delta_rel[0] == doctest::Approx(r.delta_rel[b]).epsilon(1e-6));
  }
  CHECK(redone >= 1);  // 2 points are far from converged
}

TEST_CASE("fold ensembles: attribute_mean and forward_mean average the models; the error is that of the mean") {
  Context ctx(1, 18);
  attr::ModelSet set;  // two profile models of the same architecture, different weights
  set.models.push_back(small_profile(ctx));
  set.models.push_back(small_profile(ctx));
  set.dirs = {"a", "b"};
  Tensor x = random_onehot(ctx, 3, 60, false), c = random_control(ctx, 3), c2 = random_control(ctx, 3);
  const std::vector<Tensor> cs{c, c2};  // each model its own control rows
  {
    NoGradGuard ng;
    const ModelOutput m = attr::forward_mean(set, x, cs), u = set.models[0]->forward(x, c, false),
                      v = set.models[1]->forward(x, c2, false);
    CHECK(max_abs_diff(u.log_counts, v.log_counts) > 1e-3);
    CHECK(max_abs_diff(m.log_counts, mul_scalar(add(u.log_counts, v.log_counts), 0.5)) < 1e-12);
    CHECK(max_abs_diff(m.profile_logits, mul_scalar(add(u.profile_logits, v.profile_logits), 0.5)) < 1e-12);
    CHECK_THROWS_AS(attr::forward_mean(set, x, {c}), Error);
  }
  for (const char* method : {"deepshap", "ig", "ism"}) {
    INFO(method);
    AttrOptions o = ig_counts(4, 7);
    o.method = method, o.refs = 3, o.ig_tolerance = 0.01, o.ig_max_steps = 36;
    const auto u = attr::attribute(*set.models[0], x, c, o, 5), v = attr::attribute(*set.models[1], x, c2, o, 5);
    const auto m = attr::attribute_mean(set.pointers(), x, cs, o, 5);
    CHECK(max_abs_diff(u.hyp, v.hyp) > 1e-4);
    CHECK(max_abs_diff(m.hyp, mul_scalar(add(u.hyp, v.hyp), 0.5)) < 1e-12);
    CHECK(max_abs_diff(m.actual, mul(m.hyp, x)) < 1e-12);
    REQUIRE(m.delta.size() == u.delta.size());
    for (size_t b = 0; b < m.delta.size(); ++b) {
      CHECK(m.delta[b] == doctest::Approx((u.delta[b] + v.delta[b]) / 2).epsilon(1e-12));
      CHECK(m.difference[b] == doctest::Approx((u.difference[b] + v.difference[b]) / 2).epsilon(1e-12));
      CHECK(m.delta_rel[b] == doctest::Approx(std::fabs(m.delta[b]) / std::fabs(m.difference[b])).epsilon(1e-12));
      CHECK(m.model_delta_rel[b] == std::max(u.delta_rel[b], v.delta_rel[b]));
      if (std::string(method) == "ig") {  // baseline 0, no N: Σ actual of the mean = mean difference + mean delta
        double s = 0;
        const auto a = m.actual.to_vector<double>();
        for (int64_t i = 0; i < 4 * 60; ++i) s += a[b * 240 + i];
        CHECK(s == doctest::Approx(m.difference[b] + m.delta[b]).epsilon(1e-9));
        CHECK(m.steps[b] == std::max(u.steps[b], v.steps[b]));
      }
    }
  }
  CHECK_THROWS_AS(attr::attribute_mean(set.pointers(), x, {c}, AttrOptions{}), Error);
}
}

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/npz.h"
#include "models/attr/model_dir.h"

TEST_SUITE("attr") {
TEST_CASE("model directories load config.json + weights; npz rows convert to tensors") {
  Context ctx(1, 17);
  auto m = small_binary(ctx);
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("lowpass_attr_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "config.json");
    f << nlohmann::json{{"model", {{"type", "binary"}, {"dtype", "float64"}, {"input_length", 60}, {"num_tasks", 2},
                                   {"conv_depths", {8, 8, 8}}, {"conv_filter_sizes", {7, 5, 3}}, {"max_pool_size", 8},
                                   {"max_pool_stride", 6}, {"fc_sizes", {10, 6}}}}}.dump();
  }
  safetensors::save((dir / "model.safetensors").string(), m->state_dict());
  Context ctx2(1, 99);  // different init seed: equal outputs only if the weights were loaded
  auto m2 = attr::load_model_dir(dir.string(), ctx2);
  Tensor x = random_onehot(ctx, 3, 60, true);
  NoGradGuard ng;
  CHECK(max_abs_diff(m->forward(x, Tensor(), false).logits, m2->forward(x, Tensor(), false).logits) < 1e-12);
  CHECK_THROWS_AS(attr::load_model_dir((dir / "nothing").string(), ctx2), Error);
  CHECK_THROWS_AS(attr::load_model_dir(dir.string(), ctx2, "missing.safetensors"), Error);
  // uint8 rows 1..2 of a (3, 4, 60) array.
  npy::Array a = npy::from_tensor(x, npy::NpyDType::U1);
  Tensor r = attr::array_rows(ctx, a, 1, 2, DType::F32, "x");
  CHECK(r.dtype() == DType::F32);
  CHECK(max_abs_diff(r, slice(x, 0, 1, 2)) == 0.0);
  CHECK_THROWS_AS(attr::array_rows(ctx, a, 2, 2, DType::F32, "x"), Error);
  // Model inputs must be finite: a NaN is named with its index (rows outside the NaN's row still read).
  npy::Array f = npy::from_tensor(x, npy::NpyDType::F4);
  const float nan = std::nanf("");
  std::memcpy(f.bytes.data() + ((2 * 4 + 3) * 60 + 17) * 4, &nan, 4);
  CHECK_NOTHROW(attr::array_rows(ctx, f, 0, 2, DType::F32, "x.npz:x", true));
  CHECK_THROWS_WITH_AS(attr::array_rows(ctx, f, 1, 2, DType::F32, "x.npz:x", true),
                       "x.npz:x: NaN at [2, 3, 17] (row 2); model inputs must be finite", Error);
  CHECK_NOTHROW(attr::array_rows(ctx, f, 1, 2, DType::F32, "x.npz:x"));  // other arrays (labels, scores) may hold NaN
  fs::remove_all(dir);
}
}

TEST_SUITE("attr") {
TEST_CASE("marginalize: consensus, a sequence written into one-hot rows, seeded shuffled backgrounds") {
  Context ctx(1, 19);
  Motif m;
  m.pwm = {{0.7, 0.1, 0.1, 0.1}, {0.1, 0.1, 0.1, 0.7}, {0.25, 0.25, 0.25, 0.25}, {0.1, 0.6, 0.2, 0.1}};
  CHECK(attr::consensus(m) == "ATAC");  // a tie takes the first of A C G T
  Tensor x = random_onehot(ctx, 3, 30, false);
  Tensor y = attr::insert_sequence(x, "gAnT", 5, "test");
  auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t l = 0; l < 30; ++l)
      for (int64_t b = 0; b < 4; ++b) {
        const size_t k = static_cast<size_t>((i * 4 + b) * 30 + l);
        if (l < 5 || l >= 9) CHECK(yv[k] == xv[k]);  // outside the insertion: unchanged
        else CHECK(yv[k] == ((l == 5 && b == 2) || (l == 6 && b == 0) || (l == 8 && b == 3) ? 1.0 : 0.0));  // N: zeros
      }
  CHECK_THROWS_WITH_AS(attr::insert_sequence(x, "ACU", 0, "m"), doctest::Contains("'U' at position 3"), Error);
  CHECK_THROWS_WITH_AS(attr::insert_sequence(x, "ACGT", 27, "m"), doctest::Contains("does not fit windows of 30"),
                       Error);
  // Shuffles keep each row's dinucleotides, depend on the row's index only (batching does not matter).
  Tensor bg = attr::background_rows(x, true, 5, 10);
  Tensor b2 = attr::background_rows(slice(x, 0, 1, 2).clone(), true, 5, 11);
  CHECK(max_abs_diff(slice(bg, 0, 1, 2).clone(), b2) == 0.0);
  CHECK(max_abs_diff(bg, x) > 0);
  for (int64_t i = 0; i < 3; ++i) {
    std::string a, b;
    for (auto t : onehot_to_tokens(x, i)) a.push_back("ACGTN"[t]);
    for (auto t : onehot_to_tokens(bg, i)) b.push_back("ACGTN"[t]);
    CHECK(dinucs(a) == dinucs(b));
  }
  CHECK(max_abs_diff(attr::background_rows(x, false, 5, 0), x) == 0.0);
  // N columns (padding of a short record) stay where they are; the runs between them keep their dinucleotides.
  Tensor xn = random_onehot(ctx, 2, 40, true);
  Tensor bn = attr::background_rows(xn, true, 9, 0);
  for (int64_t i = 0; i < 2; ++i) {
    const auto a = onehot_to_tokens(xn, i), b = onehot_to_tokens(bn, i);
    std::string sa, sb;
    for (size_t l = 0; l < a.size(); ++l) {
      CHECK((a[l] == 4) == (b[l] == 4));
      sa.push_back("ACGTN"[a[l]]), sb.push_back("ACGTN"[b[l]]);
    }
    CHECK(dinucs(sa) == dinucs(sb));
    CHECK(sa != sb);
  }
}
}
