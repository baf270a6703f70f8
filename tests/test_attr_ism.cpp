// fastISM (models/arch/mutant_forward.h) against whole forward passes: the mutants' outputs (both heads) and the ISM
// scores of every target, on random-weight models of both architectures at awkward geometries (windows clipped and
// shifted at both ends, a profile window as wide as the output, N bases, every control mode), float64 and float32.
// Run: build/tests/lowpass_tests -ts=attr -tc="*fastISM*"
#include <doctest/doctest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "models/arch/mutant_forward.h"
#include "models/attr/attribute.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using test::max_abs;
using test::max_abs_diff;

namespace {

// Tolerance: |fast − full| ≤ 1e-5·max|full scores| + 8·ε·F, ε the dtype's epsilon and F = max over examples of
// Σ |seed ⊙ output| at x. A score is f(mutant) − f(x), a difference of two sums of rounded outputs; in either path each
// sum is off by ~ε·F (float32: a profile model's counts carry the raw control totals, |log counts| ~ 50, so F ~ 100
// while scores are ~1e-3), and nothing computed in the dtype can do better. The first term allows for reordered sums
// inside the window convs (another kernel or blocking for the narrower shapes; measured 0 here and on the yeast model).
// An off-by-one window misses a changed position: errors of the order of a score (test: plant one and see it fail).
double eps(DType t) { return t == DType::F64 ? 0x1p-52 : 0x1p-23; }

Tensor onehot(Context& ctx, int64_t B, int64_t L, DType t) {  // N (all-zero) columns at l % 13 == 5
  std::vector<double> x(static_cast<size_t>(B * 4 * L), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l)
      if (l % 13 != 5) x[(b * 4 + ctx.rng().randint(0, 4)) * L + l] = 1.0;
  Tensor r = Tensor::from_vector(ctx, {B, 4, L}, x);
  return t == DType::F64 ? r : cast(r, t);
}

const char* dtype_json(DType t) { return t == DType::F64 ? "float64" : "float32"; }

std::unique_ptr<Model> profile_model(Context& ctx, DType t, int64_t I, std::vector<int64_t> k, std::vector<int64_t> d,
                                     int64_t kp, const char* controls, int64_t tasks) {
  nlohmann::json j = {{"type", "profile"}, {"dtype", dtype_json(t)}, {"input_length", I}, {"num_tasks", tasks},
                      {"num_strands", 2}, {"controls", controls}, {"dil_conv_filter_sizes", k},
                      {"dil_conv_dilations", d}, {"dil_conv_depths", std::vector<int64_t>(k.size(), 6)},
                      {"prof_conv_kernel_size", kp}};
  return make_model(j, ctx);
}

std::unique_ptr<Model> binary_model(Context& ctx, DType t, int64_t L, std::vector<int64_t> k, int64_t pool,
                                    int64_t stride) {
  nlohmann::json j = {{"type", "binary"}, {"dtype", dtype_json(t)}, {"input_length", L}, {"num_tasks", 2},
                      {"conv_depths", std::vector<int64_t>(k.size(), 6)}, {"conv_filter_sizes", k},
                      {"max_pool_size", pool}, {"max_pool_stride", stride}, {"fc_sizes", {9, 5}}};
  auto m = make_model(j, ctx);
  for (auto& [name, v] : m->buffers()) {  // a non-trivial eval-mode batch norm
    if (name.find("running_mean") != std::string::npos) v.copy_(Tensor::uniform(ctx, v.shape(), -0.2, 0.2, v.dtype()));
    if (name.find("running_var") != std::string::npos) v.copy_(Tensor::uniform(ctx, v.shape(), 0.5, 1.5, v.dtype()));
  }
  return m;
}

Tensor control_for(Context& ctx, const Model& m, int64_t B) {
  const Shape s = control_shape(m, B);
  if (s.empty()) return {};
  Tensor c = Tensor::uniform(ctx, s, 0.0, 4.0, DType::F64);
  double* p = c.data<double>();
  for (int64_t i = 0; i < c.numel(); ++i) p[i] = std::floor(p[i]);
  return m.dtype() == DType::F64 ? c : cast(c, m.dtype());
}

// Every mutant's outputs from MutantForward::run against forward on the mutated sequence, in one batch per call.
void check_outputs(Model& m, const Tensor& x, const Tensor& control) {
  NoGradGuard ng;
  const int64_t L = x.size(2);
  const Tensor x0 = slice(x, 0, 0, 1), c0 = control.defined() ? slice(control, 0, 0, 1) : Tensor();
  auto fast = m.mutant_forward(x0, c0);
  REQUIRE(fast != nullptr);
  std::vector<int64_t> pos;
  std::vector<int> base;
  for (int64_t l = 0; l < L; ++l) pos.push_back(l), base.push_back(static_cast<int>((l * 7 + 3) % 4));
  const int64_t N = static_cast<int64_t>(pos.size());
  std::vector<double> xv = x0.to_vector<double>(), rows;
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> r = xv;
    for (int c = 0; c < 4; ++c) r[c * L + pos[n]] = c == base[n] ? 1.0 : 0.0;
    rows.insert(rows.end(), r.begin(), r.end());
  }
  Tensor xs = Tensor::from_vector(x.ctx(), {N, 4, L}, rows);
  if (x.dtype() != DType::F64) xs = cast(xs, x.dtype());
  const Tensor cs = c0.defined() ? index_select(c0, 0, std::vector<int64_t>(static_cast<size_t>(N), 0)) : Tensor();
  const ModelOutput want = m.forward(xs, cs, false), got = fast->run(pos, base, true);
  if (m.type() == "binary") {
    CHECK(max_abs_diff(got.logits, want.logits) <= 8 * eps(m.dtype()) * max_abs(want.logits));
  } else {
    CHECK(max_abs_diff(got.profile_logits, want.profile_logits) <= 8 * eps(m.dtype()) * max_abs(want.profile_logits));
    CHECK(max_abs_diff(got.log_counts, want.log_counts) <= 8 * eps(m.dtype()) * max_abs(want.log_counts));
  }
  const ModelOutput ref = m.forward(x0, c0, false);  // reference() is forward's f(x), bit for bit
  const Tensor& a = m.type() == "binary" ? ref.logits : ref.log_counts;
  const Tensor& b = m.type() == "binary" ? fast->reference().logits : fast->reference().log_counts;
  CHECK(max_abs_diff(a, b) == 0.0);
}

// ISM scores of the fast path against the full path (ism_full) for each target; batches of 5 mutants (awkward).
void check_ism(Model& m, const Tensor& x, const Tensor& control, const std::vector<std::string>& targets) {
  for (const auto& t : targets) {
    INFO("target ", t);
    attr::AttrOptions o;
    o.method = "ism";
    o.target = attr::parse_target(t);
    o.max_batch = 5;
    const attr::AttrResult fast = attr::attribute(m, x, control, o);
    o.ism_full = true;
    o.max_batch = 64;
    const attr::AttrResult full = attr::attribute(m, x, control, o);
    const double scale = max_abs(full.hyp), err = max_abs_diff(fast.hyp, full.hyp);
    double F = 0;  // max over examples of Σ |seed ⊙ output|
    {
      NoGradGuard ng;
      const auto [y, seed] = attr::target_seed(m.forward(x, control, false), o.target);
      const auto yv = y.to_vector<double>(), sv = seed.to_vector<double>();
      const size_t per = yv.size() / static_cast<size_t>(x.size(0));
      for (size_t b = 0; b < static_cast<size_t>(x.size(0)); ++b) {
        double f = 0;
        for (size_t i = 0; i < per; ++i) f += std::fabs(yv[b * per + i] * sv[b * per + i]);
        F = std::max(F, f);
      }
    }
    INFO("max |fast - full| ", err, " of max |full| ", scale, "; F ", F);
    CHECK(scale > 1e-6);
    CHECK(err <= 1e-5 * scale + 8 * eps(m.dtype()) * F);
    CHECK(max_abs_diff(fast.actual, mul(fast.hyp, x)) == 0.0);
  }
}

}  // namespace

TEST_SUITE("attr") {
TEST_CASE("fastISM: SpliceBase's host copy and its index_select path equal a plain loop") {
  Context ctx(2, 29);
  const int64_t C = 3, Lb = 11, w = 4, len = 9;
  const Tensor base = Tensor::uniform(ctx, {1, C, Lb}, -1.0, 1.0, DType::F64);
  const std::vector<int64_t> ws{-2, 0, 3, 7, 9, 20}, st{-5, -1, 2, 4, 6, 15};  // windows and reads off both ends
  const int64_t N = static_cast<int64_t>(st.size());
  const Tensor win = Tensor::uniform(ctx, {N, C, w}, 2.0, 3.0, DType::F64);
  const auto bv = base.to_vector<double>(), wv = win.to_vector<double>();
  for (bool host : {true, false}) {
    INFO("host copy ", host);
    for (bool with_win : {true, false}) {
      const auto got = SpliceBase(base, host).gather(with_win ? win : Tensor(), ws, st, len).to_vector<double>();
      REQUIRE(got.size() == static_cast<size_t>(N * C * len));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t j = 0; j < len; ++j) {
            const int64_t q = st[n] + j;
            double want = 0;  // outside [0, Lb): zero, window or not
            if (q >= 0 && q < Lb) want = with_win && q >= ws[n] && q < ws[n] + w ? wv[(n * C + c) * w + q - ws[n]]
                                                                                 : bv[c * Lb + q];
            CHECK(got[(n * C + c) * len + j] == want);
          }
    }
  }
}

TEST_CASE("fastISM: profile model mutants and ISM scores equal whole forward passes") {
  for (DType dt : {DType::F64, DType::F32}) {
    INFO(dtype_name(dt));
    Context ctx(1, 31);
    struct Geo {
      int64_t I;
      std::vector<int64_t> k, d;
      int64_t kp;
      const char* controls;
      int64_t tasks;
    };
    // 61: odd, windows shifted at both ends; 40: the profile window (29 + 4) is wider than the output (8);
    // 23: one layer, the trunk window is most of the input; one task, shared and no controls.
    for (const Geo& g : {Geo{61, {5, 3, 3}, {1, 2, 4}, 9, "matched", 2}, Geo{40, {5, 3, 3}, {1, 4, 8}, 5, "shared", 2},
                         Geo{23, {7}, {2}, 3, "none", 1}, Geo{47, {3, 5, 3, 3}, {1, 1, 3, 5}, 4, "matched", 1}}) {
      INFO("input ", g.I, " controls ", g.controls);
      auto m = profile_model(ctx, dt, g.I, g.k, g.d, g.kp, g.controls, g.tasks);
      const Tensor x = onehot(ctx, 2, g.I, dt), c = control_for(ctx, *m, 2);
      check_outputs(*m, x, c);
      std::vector<std::string> targets{"profile", "profile_raw", "counts"};
      if (g.tasks > 1) targets.insert(targets.end(), {"profile:1", "counts:0", "profile_raw:1"});
      check_ism(*m, x, c, targets);
    }
  }
}

TEST_CASE("fastISM: binary model mutants and ISM scores equal whole forward passes") {
  for (DType dt : {DType::F64, DType::F32}) {
    INFO(dtype_name(dt));
    Context ctx(1, 37);
    struct Geo {
      int64_t L;
      std::vector<int64_t> k;
      int64_t pool, stride;
    };
    // 61: overlapping pool windows; 58: pool stride > size (positions no pool reads); 20: the windows of the last two
    // convs are clipped to the layer (7 → 8 and 4 positions); 9: one conv.
    for (const Geo& g :
         {Geo{61, {7, 5, 3}, 8, 6}, Geo{58, {5, 5, 3}, 4, 7}, Geo{20, {7, 7, 5}, 2, 2}, Geo{9, {4}, 3, 2}}) {
      INFO("length ", g.L);
      auto m = binary_model(ctx, dt, g.L, g.k, g.pool, g.stride);
      const Tensor x = onehot(ctx, 2, g.L, dt);
      check_outputs(*m, x, Tensor());
      check_ism(*m, x, Tensor(), {"logits", "logits:1"});
    }
  }
}
}
