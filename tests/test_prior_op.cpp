// The fused Fourier-prior op (engine/ops/prior.cpp): equal to the composed chain (values and gradients) on awkward
// sizes and row subsets, a zero row (denominator 1), gradient and gradient of gradient against central differences
// in float64; the CPU kernels' float32 gradient where D² leaves float32's range. Run: build/tests/lowpass_tests
// -ts=spectral -tc="*fused*"
#include <doctest/doctest.h>

#include <random>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/cpu/prior.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;

namespace {
std::vector<double> some_weights(int64_t kept, int64_t limit) {
  std::vector<double> w(static_cast<size_t>(kept), 1.0);
  for (int64_t i = limit; i < kept; ++i) w[static_cast<size_t>(i)] = 1.0 / (1.0 + std::pow(i - limit + 1.0, 0.2));
  return w;
}
}  // namespace

TEST_SUITE("spectral") {

TEST_CASE("fused Fourier prior equals the composed chain: values and gradients, awkward sizes and row subsets") {
  Context ctx(2, 71);
  struct Case { int64_t B, C, L; std::vector<int64_t> rows; double sigma; };
  const Case cases[] = {{3, 4, 2, {0, 2}, 3.0},   {1, 4, 3, {0}, 3.0},          {5, 4, 17, {1, 2, 4}, 3.0},
                        {4, 4, 64, {0, 1, 2, 3}, 3.0}, {6, 4, 61, {0, 5}, 1.0}, {2, 3, 100, {1}, 0.0},
                        {3, 4, 1346, {0, 2}, 3.0}};
  for (const Case& c : cases) {
    for (DType t : {DType::F64, DType::F32}) {
      INFO("B ", c.B, " C ", c.C, " L ", c.L, " rows ", c.rows.size(), " sigma ", c.sigma, " ", dtype_name(t));
      const double tol = t == DType::F64 ? 1e-12 : 2e-5;
      Tensor a = Tensor::uniform(ctx, {c.B, c.C, c.L}, -1, 1, t);
      if (c.B > 2) {  // a zero row: the sum of magnitudes is 0 and the denominator becomes 1
        Tensor z = Tensor::zeros(ctx, {1, c.C, c.L}, t);
        a = concat({slice(a, 0, 0, 2), z, slice(a, 0, 3, c.B - 3)}, 0);
      }
      a.set_requires_grad(true);
      auto w = some_weights(c.L / 2, std::max<int64_t>(1, c.L / 5));
      Tensor yf = fourier_prior_scores(a, c.rows, w, c.sigma), yc = fourier_prior_scores_composed(a, c.rows, w, c.sigma);
      REQUIRE(yf.shape() == Shape{static_cast<int64_t>(c.rows.size())});
      CHECK(rel_err(yf.to_vector<double>(), yc.to_vector<double>()) <= tol);
      Tensor v = Tensor::uniform(ctx, yf.shape(), 0.5, 1.5, t);
      auto gf = grad({yf}, {a}, {v}), gc = grad({yc}, {a}, {v});
      CHECK(rel_err(gf[0].to_vector<double>(), gc[0].to_vector<double>()) <= tol * 10);
    }
  }
  // No eligible rows: an empty result.
  Tensor a = Tensor::uniform(ctx, {2, 4, 10}, -1, 1, DType::F64);
  CHECK(fourier_prior_scores(a, {}, some_weights(5, 2), 3.0).numel() == 0);
  CHECK_THROWS_AS(fourier_prior_scores(a, {1, 0}, some_weights(5, 2), 3.0), Error);  // rows out of order
  CHECK_THROWS_AS(fourier_prior_scores(a, {0}, some_weights(4, 2), 3.0), Error);     // wrong weight count
}

TEST_CASE("fused Fourier prior: gradient and gradient of gradient against finite differences (float64)") {
  Context ctx(1, 72);
  for (int64_t L : {5, 16, 33}) {
    INFO("L ", L);
    auto w = some_weights(L / 2, 2);
    std::vector<int64_t> rows = {0, 2};
    Fn f = [&](const std::vector<Tensor>& xs) { return fourier_prior_scores(xs[0], rows, w, 1.0); };
    Tensor a = rand64(ctx, {3, 4, L}, -1, 1);
    check_grad(ctx, f, {a}, 1e-6, 1e-6);
    check_gradgrad(ctx, f, {a}, 1e-6, 1e-5);
  }
}

TEST_CASE("fused Fourier prior, CPU kernels: float32 values and gradients where D² overflows match float64") {
  // dm = −g·(w − N/D)/D: written as w/D − N/D², D² overflowed float32 for D > 1.8e19 and N/D² became 0, a finite,
  // wrong gradient. Rows scaled so that Σ|a| (the DC bin, no smoothing) is 1.2e19: |X|² stays in range, D ≈ 2e19
  // does not. The same float32 values in float64 are the reference; scale 1 is the control.
  Context ctx(1, 73);
  const int64_t B = 3, C = 4, L = 40, F = L / 2 + 1;
  std::vector<double> wf(static_cast<size_t>(F), 0.0);
  for (int64_t f = 1; f < F; ++f) wf[static_cast<size_t>(f)] = f < 6 ? 1.0 : 0.5;
  const std::vector<double> taps = {1.0};
  const std::vector<int64_t> rows = {0, 2};
  std::mt19937 rng(73);
  std::uniform_real_distribution<double> U(-1, 1);
  std::vector<double> raw(static_cast<size_t>(B * C * L));
  for (auto& v : raw) v = U(rng);
  auto rel = [](const std::vector<double>& got, const std::vector<double>& want) {  // no floor: gradients ~1e-20
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      REQUIRE(std::isfinite(got[i]));
      num += (got[i] - want[i]) * (got[i] - want[i]), den += want[i] * want[i];
    }
    REQUIRE(den > 0);
    return std::sqrt(num / den);
  };
  for (double sum : {0.0, 1.2e19}) {  // 0: the raw values (control)
    INFO("row sum of |a| ", sum);
    std::vector<double> a(raw);
    for (int64_t b = 0; b < B && sum > 0; ++b) {
      double s = 0;
      for (int64_t i = b * C * L; i < (b + 1) * C * L; ++i) s += std::abs(a[static_cast<size_t>(i)]);
      for (int64_t i = b * C * L; i < (b + 1) * C * L; ++i) a[static_cast<size_t>(i)] *= sum / s;
    }
    for (auto& v : a) v = double(static_cast<float>(v));  // the float32 inputs, exactly, in both runs
    std::vector<std::vector<double>> outs, grads, nds;
    for (DType t : {DType::F32, DType::F64}) {
      Tensor at = Tensor::from_vector(ctx, {B, C, L}, a).to(t);
      Tensor out = Tensor::empty(ctx, {2}, t), da = Tensor::empty(ctx, {B, C, L}, t);
      PriorSaved saved;
      cpu::fourier_prior_fwd(at, rows, wf, taps, out, saved);
      cpu::fourier_prior_bwd(at, rows, wf, taps, Tensor::from_vector(ctx, {2}, std::vector<double>{1.0, 0.7}).to(t),
                             saved, da);
      outs.push_back(out.to_vector<double>()), grads.push_back(da.to_vector<double>());
      nds.push_back(saved.nd.to_vector<double>());
    }
    if (sum > 0)
      for (int p = 0; p < 2; ++p) REQUIRE(nds[0][static_cast<size_t>(2 * p + 1)] > 1.85e19);  // D² overflows
    CHECK(rel(outs[0], outs[1]) <= 1e-5);
    CHECK(rel(grads[0], grads[1]) <= 1e-4);
  }
}

}  // TEST_SUITE
