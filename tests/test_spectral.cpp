// Spectral ops (gaussian_kernel, smooth_gaussian, rfft_real/imag + adjoints, rfft_magnitude) vs
// plain loops / an O(L²) DFT, with gradient and gradient-of-gradient checks, and the Fourier prior
// (REFERENCE §1.2) composed from ops. Run: build/tests/lowpass_tests -ts=spectral
#include <doctest/doctest.h>

#include <cmath>

#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;

namespace {
// Direct DFT of each row of x (R, L): re/im (R, L/2+1).
void dft_loop(const std::vector<double>& x, int64_t L, std::vector<double>& re, std::vector<double>& im) {
  int64_t R = static_cast<int64_t>(x.size()) / L, F = L / 2 + 1;
  re.assign(R * F, 0.0);
  im.assign(R * F, 0.0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < F; ++k)
      for (int64_t n = 0; n < L; ++n) {
        double th = 2 * M_PI * static_cast<double>((k * n) % L) / static_cast<double>(L);
        re[r * F + k] += x[r * L + n] * std::cos(th);
        im[r * F + k] -= x[r * L + n] * std::sin(th);
      }
}
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double a : v) m = std::max(m, std::abs(a));
  return m;
}
Tensor sq(const Tensor& t) { return mul(t, t); }

// Fourier-prior weights over the bins k = 1..L/2 (REFERENCE §1.2 step 7).
std::vector<double> prior_weights(int64_t L, int64_t K, double s) {
  std::vector<double> w;
  for (int64_t k = 1; k <= L / 2; ++k) w.push_back(k <= K ? 1.0 : 1.0 / (1.0 + std::pow(static_cast<double>(k - K), s)));
  return w;
}

// The Fourier prior from ops: attr (B, 4, L) -> mean over rows of 1 − Σ_k w_k m_k / Σ_j m_j.
Tensor fourier_prior(const Tensor& attr, int64_t K, double softness, double sigma) {
  int64_t L = attr.size(2), F = L / 2 + 1;
  Tensor a = sum(abs(attr), {1});                       // (B, L)
  Tensor m = rfft_magnitude(smooth_gaussian(a, sigma));  // (B, F)
  Tensor s = sum(m, {1}, true);                          // (B, 1), DC included
  Tensor norm = div(m, add(s, eq_scalar(s.detach(), 0.0)));
  Tensor hi = slice(norm, 1, 1, F - 1);                  // drop DC: bins 1..L/2
  Tensor w = Tensor::from_vector(attr.ctx(), {F - 1}, prior_weights(L, K, softness)).to(attr.dtype());
  Tensor score = sum(mul(hi, w), {1});
  return mean_all(add_scalar(neg(score), 1.0));
}
}  // namespace

TEST_SUITE("spectral") {
TEST_CASE("gaussian_kernel matches scipy's truncated kernel") {
  auto k3 = gaussian_kernel(3.0);
  std::vector<double> ref = {0.106289, 0.140321, 0.165770, 0.175240, 0.165770, 0.140321, 0.106289};
  REQUIRE(k3.size() == 7);
  for (size_t i = 0; i < 7; ++i) CHECK(k3[i] == doctest::Approx(ref[i]).epsilon(5e-6));
  CHECK(gaussian_kernel(0.0) == std::vector<double>{1.0});
  CHECK(gaussian_kernel(0.4).size() == 1);  // radius int(0.4 + 0.5) = 0
  for (double sigma : {0.6, 1.0, 2.5, 7.3}) {
    auto k = gaussian_kernel(sigma);
    int64_t r = static_cast<int64_t>(sigma + 0.5);
    REQUIRE(static_cast<int64_t>(k.size()) == 2 * r + 1);
    double s = 0;
    for (int64_t i = -r; i <= r; ++i) s += std::exp(-0.5 * i * i / (sigma * sigma));
    for (int64_t i = -r; i <= r; ++i) CHECK(k[i + r] == doctest::Approx(std::exp(-0.5 * i * i / (sigma * sigma)) / s));
  }
  CHECK_THROWS_AS(gaussian_kernel(-1.0), Error);
  CHECK_THROWS_AS(gaussian_kernel(NAN), Error);
}

TEST_CASE("smooth_gaussian: zero-padded correlation, self-adjoint") {
  Context ctx(2, 31);
  for (int64_t L : {1, 2, 5, 7, 20}) {
    for (double sigma : {1.0, 3.0}) {
      INFO("L ", L, " sigma ", sigma);
      Tensor x = rand64(ctx, {3, L});
      auto y = smooth_gaussian(x, sigma).to_vector<double>();
      auto xv = x.to_vector<double>();
      auto k = gaussian_kernel(sigma);
      int64_t r = static_cast<int64_t>(k.size()) / 2;
      for (int64_t row = 0; row < 3; ++row)
        for (int64_t n = 0; n < L; ++n) {
          double s = 0;
          for (int64_t j = -r; j <= r; ++j)
            if (n + j >= 0 && n + j < L) s += k[j + r] * xv[row * L + n + j];
          CHECK(y[row * L + n] == doctest::Approx(s).epsilon(1e-13));
        }
      // <S x, z> = <x, S z> exactly up to rounding (edges included).
      Tensor z = rand64(ctx, {3, L});
      double lhs = sum_all(mul(smooth_gaussian(x, sigma), z)).item();
      double rhs = sum_all(mul(x, smooth_gaussian(z, sigma))).item();
      CHECK(lhs == doctest::Approx(rhs).epsilon(1e-13));
      check_grad(ctx, [sigma](auto& v) { return smooth_gaussian(v[0], sigma); }, {x});
      check_gradgrad(ctx, [sigma](auto& v) { return sq(smooth_gaussian(v[0], sigma)); }, {x});
    }
  }
  Tensor x = rand64(ctx, {2, 1, 9});
  CHECK(smooth_gaussian(x, 0.0).to_vector<double>() == x.to_vector<double>());
  auto f32 = smooth_gaussian(x.to(DType::F32), 3.0).to_vector<double>();
  auto f64 = smooth_gaussian(x, 3.0).to_vector<double>();
  for (size_t i = 0; i < f64.size(); ++i) CHECK(f32[i] == doctest::Approx(f64[i]).epsilon(1e-5));
}

TEST_CASE("rfft_real / rfft_imag match a direct DFT") {
  Context ctx(2, 32);
  for (int64_t L : {1, 2, 3, 7, 8, 11, 13, 64, 1000, 1346}) {
    for (int64_t R : {1, 3, 4}) {
      INFO("L ", L, " rows ", R);
      Tensor x = rand64(ctx, {R, 1, L});
      std::vector<double> re, im;
      dft_loop(x.to_vector<double>(), L, re, im);
      Tensor tr = rfft_real(x), ti = rfft_imag(x);
      REQUIRE(tr.shape() == Shape{R, 1, L / 2 + 1});
      double scale = std::max(1.0, max_abs(re));
      auto trv = tr.to_vector<double>(), tiv = ti.to_vector<double>();
      for (size_t i = 0; i < re.size(); ++i) {
        CHECK(std::abs(trv[i] - re[i]) < 1e-11 * scale);
        CHECK(std::abs(tiv[i] - im[i]) < 1e-11 * scale);
      }
      // float32: computed in double, rounded once
      auto r32 = rfft_real(x.to(DType::F32)).to_vector<double>();
      for (size_t i = 0; i < re.size(); ++i) CHECK(std::abs(r32[i] - re[i]) < 1e-5 * scale);
      // magnitude
      auto mv = rfft_magnitude(x).to_vector<double>();
      for (size_t i = 0; i < re.size(); ++i) CHECK(std::abs(mv[i] - std::hypot(re[i], im[i])) < 1e-11 * scale);
      // adjoints: <rfft_real(x), g> = <x, rfft_real_adjoint(g)> and the direct formula
      Tensor g = rand64(ctx, {R, 1, L / 2 + 1});
      auto ar = rfft_real_adjoint(g, L).to_vector<double>(), ai = rfft_imag_adjoint(g, L).to_vector<double>();
      auto gv = g.to_vector<double>();
      int64_t F = L / 2 + 1;
      for (int64_t row = 0; row < R; ++row)
        for (int64_t n = 0; n < L; n += std::max<int64_t>(1, L / 37)) {
          double sr = 0, si = 0;
          for (int64_t k = 0; k < F; ++k) {
            double th = 2 * M_PI * static_cast<double>((k * n) % L) / static_cast<double>(L);
            sr += gv[row * F + k] * std::cos(th);
            si -= gv[row * F + k] * std::sin(th);
          }
          CHECK(std::abs(ar[row * L + n] - sr) < 1e-11 * std::max<double>(1.0, F));
          CHECK(std::abs(ai[row * L + n] - si) < 1e-11 * std::max<double>(1.0, F));
        }
    }
  }
  CHECK_THROWS_AS(rfft_real_adjoint(rand64(ctx, {2, 4}), 8), Error);  // needs 5 bins
  CHECK_THROWS_AS(rfft_real(rand64(ctx, {2, 0})), Error);
}

TEST_CASE("spectral kernels give identical bits for 1 and 2 threads") {
  auto run = [](int threads) {
    Context ctx(threads, 37);
    std::vector<float> all;
    for (int64_t L : {1000, 1346}) {
      Tensor x = Tensor::randn(ctx, {9, L});
      x.set_requires_grad(true);
      Tensor m = rfft_magnitude(smooth_gaussian(x, 3.0));
      Tensor g = Tensor::randn(ctx, m.shape());
      for (float v : m.to_vector<float>()) all.push_back(v);
      for (float v : grad({m}, {x}, {g})[0].to_vector<float>()) all.push_back(v);
    }
    return all;
  };
  CHECK(run(1) == run(2));
}

TEST_CASE("rfft gradients and gradients of gradients") {
  Context ctx(2, 33);
  for (int64_t L : {1, 2, 7, 8, 11}) {
    INFO("L ", L);
    Tensor x = rand64(ctx, {2, L});
    Tensor g = rand64(ctx, {2, L / 2 + 1});
    check_grad(ctx, [](auto& v) { return rfft_real(v[0]); }, {x});
    check_grad(ctx, [](auto& v) { return rfft_imag(v[0]); }, {x});
    check_gradgrad(ctx, [](auto& v) { return sq(rfft_real(v[0])); }, {x});
    check_gradgrad(ctx, [](auto& v) { return sq(rfft_imag(v[0])); }, {x});
    check_grad(ctx, [L](auto& v) { return rfft_real_adjoint(v[0], L); }, {g});
    check_grad(ctx, [L](auto& v) { return rfft_imag_adjoint(v[0], L); }, {g});
    check_gradgrad(ctx, [L](auto& v) { return sq(add(rfft_real_adjoint(v[0], L), rfft_imag_adjoint(v[0], L))); }, {g});
    // L = 1: |X_0| = |x_0|, kinked at 0, so x is kept away from 0 there
    Tensor xm = L > 1 ? x : mul(rand64(ctx, {2, 1}, 0.3, 1.0), sign(x));
    check_grad(ctx, [](auto& v) { return rfft_magnitude(v[0]); }, {xm});
    check_gradgrad(ctx, [](auto& v) { return rfft_magnitude(v[0]); }, {xm});
    check_gradgrad(ctx, [](auto& v) { return mul(rfft_magnitude(v[0]), rfft_magnitude(v[0])); }, {xm});
  }
}

TEST_CASE("rfft_magnitude fused first-order backward equals the composed rule") {
  Context ctx(2, 36);
  for (int64_t L : {5, 1000, 1346}) {
    for (DType dt : {DType::F64, DType::F32}) {
      INFO("L ", L, " ", dtype_name(dt));
      Tensor x = rand64(ctx, {3, L}).to(dt).detach();
      Tensor g = rand64(ctx, {3, L / 2 + 1}).to(dt).detach();
      auto run = [&](bool create_graph) {
        auto xs = leaves({x});
        return grad({rfft_magnitude(xs[0])}, xs, {g}, create_graph)[0].to_vector<double>();
      };
      CHECK(rel_err(run(false), run(true)) < (dt == DType::F64 ? 1e-12 : 1e-5));
    }
  }
}

TEST_CASE("rfft_magnitude gradient is 0 where the magnitude is 0") {
  Context ctx(2, 34);
  // x = (1, -1, 1, -1): only the Nyquist bin is nonzero; a zero row has every bin 0.
  Tensor x = Tensor::from_vector(ctx, {2, 4}, std::vector<double>{1, -1, 1, -1, 0, 0, 0, 0});
  x.set_requires_grad(true);
  Tensor m = rfft_magnitude(x);
  auto mv = m.to_vector<double>();
  for (size_t i = 0; i < 6; ++i) CHECK(mv[i] == doctest::Approx(i == 2 ? 4.0 : 0.0).epsilon(1e-14));
  Tensor g = Tensor::ones(ctx, {2, 3}, DType::F64);
  // d|X_2|/dx_n = cos(πn)·sign(X_2) = (1, -1, 1, -1); zero bins contribute 0 (both backward paths).
  const std::vector<double> want = {1, -1, 1, -1, 0, 0, 0, 0};
  auto d1 = grad({m}, {x}, {g}, false)[0].to_vector<double>();
  auto dx = grad({m}, {x}, {g}, true);
  auto dv = dx[0].to_vector<double>();
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(d1[i] == doctest::Approx(want[i]).epsilon(1e-14));
    CHECK(dv[i] == doctest::Approx(want[i]).epsilon(1e-14));
  }
  Tensor h = sum_all(mul(dx[0], dx[0]));
  auto d2 = grad({h}, {x})[0].to_vector<double>();
  for (double v : d2) CHECK(std::isfinite(v));
}

TEST_CASE("Fourier prior composed from ops: weights, value, gradients") {
  // Weight values from REFERENCE §1.2 (K = 150, L = 1000, softness 0.2).
  auto w = prior_weights(1000, 150, 0.2);
  REQUIRE(w.size() == 500);
  CHECK(w[149] == 1.0);                                    // k = 150
  CHECK(w[150] == doctest::Approx(0.5).epsilon(1e-12));    // k = 151
  CHECK(w[151] == doctest::Approx(0.465).epsilon(1e-3));   // k = 152
  CHECK(w[499] == doctest::Approx(0.237).epsilon(2e-3));   // k = 500

  Context ctx(2, 35);
  const int64_t B = 2, L = 12, K = 2;
  // Attribution away from 0 (abs kink), one row of a third example all zero.
  Tensor attr = mul(rand64(ctx, {B, 4, L}, 0.2, 1.0), sign(rand64(ctx, {B, 4, L})));
  // Value vs a plain loop with the direct DFT.
  {
    auto av = attr.to_vector<double>();
    auto k = gaussian_kernel(1.0);
    auto wk = prior_weights(L, K, 0.2);
    double total = 0;
    for (int64_t b = 0; b < B; ++b) {
      std::vector<double> a(L, 0.0), sm(L, 0.0);
      for (int64_t c = 0; c < 4; ++c)
        for (int64_t l = 0; l < L; ++l) a[l] += std::abs(av[(b * 4 + c) * L + l]);
      for (int64_t n = 0; n < L; ++n)
        for (int64_t j = -1; j <= 1; ++j)
          if (n + j >= 0 && n + j < L) sm[n] += k[j + 1] * a[n + j];
      std::vector<double> re, im;
      dft_loop(sm, L, re, im);
      double s = 0, score = 0;
      for (int64_t f = 0; f <= L / 2; ++f) s += std::hypot(re[f], im[f]);
      for (int64_t f = 1; f <= L / 2; ++f) score += wk[f - 1] * std::hypot(re[f], im[f]) / s;
      total += 1 - score;
    }
    CHECK(fourier_prior(attr, K, 0.2, 1.0).item() == doctest::Approx(total / B).epsilon(1e-12));
  }
  Fn f = [K](auto& v) { return fourier_prior(v[0], K, 0.2, 1.0); };
  check_grad(ctx, f, {attr});
  check_gradgrad(ctx, f, {attr});
  // An all-zero attribution: loss 1 (normaliser 0 -> 1), finite zero gradient.
  Tensor zero = Tensor::zeros(ctx, {1, 4, L}, DType::F64);
  zero.set_requires_grad(true);
  Tensor loss = fourier_prior(zero, K, 0.2, 1.0);
  CHECK(loss.item() == 1.0);
  auto gz = grad({loss}, {zero})[0].to_vector<double>();
  for (double v : gz) CHECK(v == 0.0);
}
}
