// Element-wise ops: forward vs plain loops, gradient and gradient-of-gradient vs finite differences.
// Run: build/tests/lowpass_tests -ts=elementwise
#include <doctest/doctest.h>

#include <cmath>

#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;

TEST_SUITE("elementwise") {
TEST_CASE("unary forward matches std:: functions") {
  Context ctx(2, 1);
  Tensor x = rand64(ctx, {3, 7}, 0.1, 3.0);
  auto xv = x.to_vector<double>();
  struct Case { const char* name; Tensor (*op)(const Tensor&); double (*ref)(double); };
  Case cases[] = {
      {"exp", exp, [](double v) { return std::exp(v); }},
      {"log", log, [](double v) { return std::log(v); }},
      {"log1p", log1p, [](double v) { return std::log1p(v); }},
      {"sqrt", sqrt, [](double v) { return std::sqrt(v); }},
      {"rsqrt", rsqrt, [](double v) { return 1 / std::sqrt(v); }},
      {"sigmoid", sigmoid, [](double v) { return 1 / (1 + std::exp(-v)); }},
      {"softplus", softplus, [](double v) { return std::log(1 + std::exp(v)); }},
      {"lgamma", lgamma, [](double v) { return std::lgamma(v); }},
      {"square", square, [](double v) { return v * v; }},
  };
  for (auto& c : cases) {
    auto y = c.op(x).to_vector<double>();
    for (size_t i = 0; i < y.size(); ++i) {
      INFO(c.name, " at ", xv[i]);
      CHECK(y[i] == doctest::Approx(c.ref(xv[i])).epsilon(1e-12));
    }
  }
  // relu keeps NaN (a NaN that reaches a ReLU must not come out as a finite 0) and infinities.
  const double nan = std::nan(""), inf = HUGE_VAL;
  auto r = relu(Tensor::from_vector(ctx, {6}, std::vector<double>{nan, -1.5, 0.0, 2.5, inf, -inf})).to_vector<double>();
  CHECK(std::isnan(r[0]));
  CHECK(r[1] == 0.0);
  CHECK(r[2] == 0.0);
  CHECK(r[3] == 2.5);
  CHECK(r[4] == inf);
  CHECK(r[5] == 0.0);
  auto rf = relu(Tensor::from_vector(ctx, {40}, std::vector<float>(40, static_cast<float>(nan)))).to_vector<float>();
  for (float v : rf) CHECK(std::isnan(v));  // the vectorised float loop too
  // Its backward passes the gradient where the input is NaN (PyTorch's threshold_backward on the NaN output).
  auto rm = relu_mask(Tensor::from_vector(ctx, {3}, std::vector<double>{2.0, 3.0, 4.0}),
                      Tensor::from_vector(ctx, {3}, std::vector<double>{nan, -1.0, 1.0})).to_vector<double>();
  CHECK((rm[0] == 2.0 && rm[1] == 0.0 && rm[2] == 4.0));
  // digamma: finite difference of lgamma
  auto d = digamma(x).to_vector<double>();
  for (size_t i = 0; i < d.size(); ++i)
    CHECK(d[i] == doctest::Approx((std::lgamma(xv[i] + 1e-6) - std::lgamma(xv[i] - 1e-6)) / 2e-6).epsilon(1e-6));
}

TEST_CASE("unary gradients and gradients of gradients") {
  Context ctx(2, 2);
  for (Shape s : {Shape{1}, Shape{5}, Shape{2, 3, 7}}) {
    Tensor pos = rand64(ctx, s, 0.2, 2.5);
    Tensor any = rand64(ctx, s, -2.0, 2.0);
    std::vector<std::pair<const char*, Fn>> fns = {
        {"exp", [](auto& v) { return exp(v[0]); }},
        {"log", [](auto& v) { return log(v[0]); }},
        {"log1p", [](auto& v) { return log1p(v[0]); }},
        {"sqrt", [](auto& v) { return sqrt(v[0]); }},
        {"rsqrt", [](auto& v) { return rsqrt(v[0]); }},
        {"sigmoid", [](auto& v) { return sigmoid(v[0]); }},
        {"softplus", [](auto& v) { return softplus(v[0]); }},
        {"lgamma", [](auto& v) { return lgamma(v[0]); }},
        {"square", [](auto& v) { return square(v[0]); }},
        {"pow1.5", [](auto& v) { return pow_scalar(v[0], 1.5); }},
        {"scalars", [](auto& v) { return add_scalar(mul_scalar(v[0], -3.0), 2.0); }},
    };
    for (auto& [name_, f_] : fns) {
      auto& name = name_; auto& f = f_;  // named copies: clang < 16 cannot capture structured bindings
      INFO(name, " shape ", shape_str(s));
      check_grad(ctx, f, {pos});
      check_gradgrad(ctx, f, {pos});
    }
    // Kinked ops: inputs kept away from 0.
    Tensor away = mul(rand64(ctx, s, 0.3, 1.0), sign(any));
    for (auto& [name_, f_] : std::vector<std::pair<const char*, Fn>>{
             {"abs", [](auto& v) { return mul(abs(v[0]), v[0]); }},
             {"relu", [](auto& v) { return mul(relu(v[0]), v[0]); }},
             {"neg", [](auto& v) { return mul(neg(v[0]), v[0]); }}}) {
      auto& name = name_; auto& f = f_;  // named copies: clang < 16 cannot capture structured bindings
      INFO(name);
      check_grad(ctx, f, {away});
      check_gradgrad(ctx, f, {away});
    }
  }
}

TEST_CASE("binary broadcasting ops") {
  Context ctx(2, 3);
  std::vector<std::pair<Shape, Shape>> shapes = {
      {{4, 3}, {4, 3}}, {{2, 3, 5}, {3, 1}}, {{2, 3, 5}, {1}}, {{1}, {2, 4}}, {{3, 1, 4}, {1, 5, 1}}};
  for (auto& [sa_, sb_] : shapes) {
    auto& sa = sa_; auto& sb = sb_;  // named copies: clang < 16 cannot capture structured bindings
    Tensor a = rand64(ctx, sa, 0.5, 2.0), b = rand64(ctx, sb, 0.5, 2.0);
    // forward vs a plain loop through broadcast indices
    Tensor y = div(sub(mul(a, b), b), add(a, b));
    Shape os = y.shape();
    auto av = a.to_vector<double>(), bv = b.to_vector<double>(), yv = y.to_vector<double>();
    auto index = [&](const Shape& s, int64_t flat) {
      int64_t nd = static_cast<int64_t>(os.size()), off = 0, stride = 1, rem = flat;
      std::vector<int64_t> idx(nd);
      for (int64_t d = nd - 1; d >= 0; --d) { idx[d] = rem % os[d]; rem /= os[d]; }
      for (int64_t d = static_cast<int64_t>(s.size()) - 1, o = nd - 1; d >= 0; --d, --o) {
        off += (s[d] == 1 ? 0 : idx[o]) * stride;
        stride *= s[d];
      }
      return off;
    };
    for (int64_t i = 0; i < y.numel(); ++i) {
      double va = av[index(sa, i)], vb = bv[index(sb, i)];
      CHECK(yv[i] == doctest::Approx((va * vb - vb) / (va + vb)).epsilon(1e-12));
    }
    Fn f = [](auto& v) { return div(sub(mul(v[0], v[1]), v[1]), add(v[0], v[1])); };
    INFO(shape_str(sa), " with ", shape_str(sb));
    check_grad(ctx, f, {a, b});
    check_gradgrad(ctx, f, {a, b});
  }
}

TEST_CASE("pow_scalar's exponents, lgamma/digamma off [0.2, 2.5], cast: gradients and gradients of gradients") {
  Context ctx(2, 5);
  for (Shape s : {Shape{1}, Shape{7}, Shape{2, 1, 5}}) {
    INFO("shape ", shape_str(s));
    Tensor any = rand64(ctx, s, -2.0, 2.0), pos = rand64(ctx, s, 0.3, 2.5);
    // p = 2 and p = 1 take their own backward branches; integer p on negative inputs; negative and fractional p.
    for (auto [p_, x_] : std::vector<std::pair<double, Tensor>>{
             {2.0, any}, {3.0, any}, {1.0, any}, {-1.0, pos}, {0.5, pos}, {-2.5, pos}}) {
      auto p = p_; auto& x = x_;  // named copies: clang < 16 cannot capture structured bindings
      INFO("p ", p);
      auto xv = x.to_vector<double>(), yv = pow_scalar(x, p).to_vector<double>();
      for (size_t i = 0; i < xv.size(); ++i) CHECK(yv[i] == doctest::Approx(std::pow(xv[i], p)).epsilon(1e-14));
      // times (1 + x): at p = 1 the op alone is linear (its second derivative 0 whatever the rule), and x^p·x is
      // constant at p = −1
      Fn f = [p](auto& v) { return mul(pow_scalar(v[0], p), add_scalar(v[0], 1.0)); };
      check_grad(ctx, f, {x});
      check_gradgrad(ctx, f, {x});
    }
    // p = 0: the constant 1, whose gradient is 0 everywhere, at a = 0 too (0 · a^-1 was NaN there), as PyTorch's
    {
      std::vector<double> v = any.to_vector<double>();
      v[0] = 0.0;
      auto lv0 = leaves({Tensor::from_vector(ctx, s, v)});
      const std::vector<double> g0 = grad({sum_all(pow_scalar(lv0[0], 0.0))}, lv0)[0].to_vector<double>();
      for (double gi : g0) CHECK(gi == 0.0);
    }
    // lgamma on negative non-integers (log|Γ|, derivative ψ through the reflection) and past digamma's recurrence
    // (x >= 6: the asymptotic series); digamma's own gradient is trigamma, whose gradient throws.
    Tensor neg_x = add_scalar(rand64(ctx, s, 0.15, 0.85), -3.0), big = rand64(ctx, s, 4.0, 60.0);
    for (const Tensor& x : {neg_x, big}) {
      Fn f = [](auto& v) { return lgamma(v[0]); };
      check_grad(ctx, f, {x});
      check_gradgrad(ctx, f, {x});
      check_grad(ctx, [](auto& v) { return digamma(v[0]); }, {x});
    }
    auto lv = leaves({big});
    Tensor d1 = grad({sum_all(digamma(lv[0]))}, lv, {}, true)[0];  // trigamma(x), recorded
    CHECK_THROWS_AS(grad({sum_all(d1)}, lv), Error);
    // cast f64 -> f32 -> f64: the gradient is cast back; float32 rounding (~6e-8) over eps 1e-2 bounds the error
    Fn fc = [](auto& v) { return cast(square(cast(v[0], DType::F32)), DType::F64); };
    check_grad(ctx, fc, {any}, 1e-2, 1e-5);
    check_gradgrad(ctx, fc, {any}, 1e-2, 1e-5);
  }
}

TEST_CASE("digamma and trigamma in float64 against closed forms, both sides of the recurrence (to 1e-14)") {
  // ψ(1) = −γ, ψ(1/2) = −γ − 2 ln 2, ψ(1/4) = −γ − π/2 − 3 ln 2, ψ(x − 1) = ψ(x) − 1/(x − 1), ψ(n) = H(n−1) − γ;
  // ψ1(1) = π²/6, ψ1(1/2) = π²/2, ψ1(1/4) = π² + 8G (Catalan's G), ψ1(x − 1) = ψ1(x) + 1/(x − 1)²,
  // ψ1(n) = π²/6 − Σ_{k<n} 1/k². The recurrence reaches the asymptotic series from below; 6, 7, 10, 40 start on it.
  // Until this test the series was cut after x⁻¹⁰ (ψ) and x⁻⁹ (ψ1) at x ≥ 6: ~1e-10 and ~1e-9 relative errors.
  const double gamma = 0.57721566490153286061, catalan = 0.91596559417721901505, pi2 = M_PI * M_PI;
  std::vector<double> x = {1.0, 0.5, 0.25, -0.5, -1.5};
  std::vector<double> psi = {-gamma, -gamma - 2 * std::log(2.0), -gamma - M_PI / 2 - 3 * std::log(2.0)};
  std::vector<double> psi1 = {pi2 / 6, pi2 / 2, pi2 + 8 * catalan};
  psi.push_back(psi[1] + 2), psi1.push_back(psi1[1] + 4);    // −1/2 from 1/2
  psi.push_back(psi[3] + 1 / 1.5), psi1.push_back(psi1[3] + 1 / 2.25);  // −3/2 from −1/2
  for (int n : {2, 6, 7, 10, 40}) {
    double h = 0, h2 = 0;
    for (int k = 1; k < n; ++k) h += 1.0 / k, h2 += 1.0 / (double(k) * k);
    x.push_back(n), psi.push_back(h - gamma), psi1.push_back(pi2 / 6 - h2);
  }
  Context ctx(1, 8);
  const Tensor t = Tensor::from_vector(ctx, {static_cast<int64_t>(x.size())}, x);
  const auto d = digamma(t).to_vector<double>(), tg = trigamma(t).to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("x ", x[i]);
    CHECK(d[i] == doctest::Approx(psi[i]).epsilon(1e-14));
    CHECK(tg[i] == doctest::Approx(psi1[i]).epsilon(1e-14));
  }
}

TEST_CASE("float32 runs the same kernels") {
  Context ctx(2, 4);
  Tensor a = Tensor::uniform(ctx, {3, 1000}, -1, 1), b = Tensor::uniform(ctx, {1000}, -1, 1);
  auto y = mul(a, b).to_vector<float>();
  auto av = a.to_vector<float>(), bv = b.to_vector<float>();
  for (size_t i = 0; i < y.size(); ++i) CHECK(y[i] == av[i] * bv[i % 1000]);
}
}
