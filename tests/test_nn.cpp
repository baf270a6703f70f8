// Layer ops: batch norm (train/eval, running stats), max-pool, global average pool, (log-)softmax:
// forward vs plain loops; gradient and gradient-of-gradient vs finite differences in float64.
// Run: build/tests/lowpass_tests -ts=nn
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "kernels/cpu/nn.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;

namespace {
// Plain-loop batch norm over (B, C, L) (L = 1 for 2-d x) with the given statistics.
std::vector<double> bn_loop(const Tensor& x, const std::vector<double>& mu, const std::vector<double>& var,
                            const std::vector<double>& gamma, const std::vector<double>& beta, double eps) {
  int64_t B = x.size(0), C = x.size(1), L = x.dim() == 3 ? x.size(2) : 1;
  auto xv = x.to_vector<double>();
  std::vector<double> y(xv.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t l = 0; l < L; ++l) {
        int64_t i = (b * C + c) * L + l;
        y[i] = (xv[i] - mu[c]) / std::sqrt(var[c] + eps) * gamma[c] + beta[c];
      }
  return y;
}
void batch_stats(const Tensor& x, std::vector<double>& mu, std::vector<double>& var) {
  int64_t B = x.size(0), C = x.size(1), L = x.dim() == 3 ? x.size(2) : 1;
  auto xv = x.to_vector<double>();
  mu.assign(C, 0.0);
  var.assign(C, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t l = 0; l < L; ++l) mu[c] += xv[(b * C + c) * L + l];
    mu[c] /= static_cast<double>(B * L);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t l = 0; l < L; ++l) var[c] += std::pow(xv[(b * C + c) * L + l] - mu[c], 2);
    var[c] /= static_cast<double>(B * L);
  }
}
Tensor sq(const Tensor& t) { return mul(t, t); }
// Plain-loop training-mode input gradient: dx = γ/σ̂·(g − Σg/n − x̂·Σ(g·x̂)/n), x̂ = (x − μ)/σ̂, σ̂ = √(σ² + ε).
std::vector<double> bn_dx_loop(const Tensor& g, const Tensor& x, const std::vector<double>& gamma, double eps) {
  int64_t B = x.size(0), C = x.size(1), L = x.dim() == 3 ? x.size(2) : 1;
  auto gv = g.to_vector<double>(), xv = x.to_vector<double>();
  std::vector<double> mu, var, dx(xv.size());
  batch_stats(x, mu, var);
  const double n = static_cast<double>(B * L);
  for (int64_t c = 0; c < C; ++c) {
    const double sd = std::sqrt(var[c] + eps);
    double sg = 0, sgx = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t l = 0; l < L; ++l) {
        const int64_t i = (b * C + c) * L + l;
        sg += gv[i], sgx += gv[i] * (xv[i] - mu[c]) / sd;
      }
    for (int64_t b = 0; b < B; ++b)
      for (int64_t l = 0; l < L; ++l) {
        const int64_t i = (b * C + c) * L + l;
        dx[i] = (gamma.empty() ? 1.0 : gamma[c]) / sd * (gv[i] - sg / n - (xv[i] - mu[c]) / sd * sgx / n);
      }
  }
  return dx;
}
}  // namespace

TEST_SUITE("nn") {
TEST_CASE("batch_norm training forward and running statistics") {
  Context ctx(2, 21);
  for (Shape s : {Shape{4, 3, 7}, Shape{1, 2, 5}, Shape{3, 4, 1}, Shape{5, 3}, Shape{2, 1}}) {
    INFO("shape ", shape_str(s));
    Tensor x = add_scalar(rand64(ctx, s, -2.0, 2.0), 100.0);  // offset: tests the shifted statistics
    int64_t C = s[1], n = x.numel() / C;
    Tensor gamma = rand64(ctx, {C}, 0.5, 1.5), beta = rand64(ctx, {C});
    Tensor rm = rand64(ctx, {C}), rv = rand64(ctx, {C}, 0.5, 1.5);
    auto rm0 = rm.to_vector<double>(), rv0 = rv.to_vector<double>();
    std::vector<double> mu, var;
    batch_stats(x, mu, var);
    Tensor y = batch_norm(x, gamma, beta, rm, rv, true, 0.1, 1e-5);
    auto ref = bn_loop(x, mu, var, gamma.to_vector<double>(), beta.to_vector<double>(), 1e-5);
    auto yv = y.to_vector<double>();
    for (size_t i = 0; i < ref.size(); ++i) CHECK(yv[i] == doctest::Approx(ref[i]).epsilon(1e-9));
    auto rm1 = rm.to_vector<double>(), rv1 = rv.to_vector<double>();
    for (int64_t c = 0; c < C; ++c) {
      CHECK(rm1[c] == doctest::Approx(0.9 * rm0[c] + 0.1 * mu[c]).epsilon(1e-12));
      CHECK(rv1[c] == doctest::Approx(0.9 * rv0[c] + 0.1 * var[c] * n / (n - 1)).epsilon(1e-12));
    }
    // No gamma/beta, no running stats; float32 kernel agrees with float64.
    Tensor y2 = batch_norm(x, {}, {}, {}, {}, true);
    auto ref2 = bn_loop(x, mu, var, std::vector<double>(C, 1.0), std::vector<double>(C, 0.0), 1e-5);
    auto y2v = y2.to_vector<double>();
    for (size_t i = 0; i < ref2.size(); ++i) CHECK(y2v[i] == doctest::Approx(ref2[i]).epsilon(1e-9));
    Tensor x32 = x.to(DType::F32);
    auto y32 = batch_norm(x32, gamma.to(DType::F32), beta.to(DType::F32), {}, {}, true).to_vector<double>();
    for (size_t i = 0; i < ref.size(); ++i) CHECK(y32[i] == doctest::Approx(ref[i]).epsilon(1e-3));
  }
  Tensor one = rand64(ctx, {1, 3, 1});
  CHECK_THROWS_AS(batch_norm(one, {}, {}, {}, {}, true), Error);  // one value per channel
  Tensor x = rand64(ctx, {2, 3, 4});
  CHECK_THROWS_AS(batch_norm(x, rand64(ctx, {4}), {}, {}, {}, true), Error);
  CHECK_THROWS_AS(batch_norm(x, {}, {}, {}, {}, false), Error);  // eval without running stats
  CHECK_THROWS_AS(batch_norm(rand64(ctx, {5}), {}, {}, {}, {}, true), Error);
}

TEST_CASE("batch_norm training gradients flow through the batch statistics") {
  Context ctx(2, 22);
  for (Shape s : {Shape{3, 2, 5}, Shape{1, 3, 4}, Shape{4, 2, 1}, Shape{5, 3}, Shape{2, 1, 3}}) {
    INFO("shape ", shape_str(s));
    int64_t C = s[1];
    Tensor x = rand64(ctx, s, -2.0, 2.0);
    Tensor gamma = rand64(ctx, {C}, 0.5, 1.5), beta = rand64(ctx, {C});
    Fn f = [](auto& v) { return batch_norm(v[0], v[1], v[2], {}, {}, true, 0.1, 1e-3); };
    check_grad(ctx, f, {x, gamma, beta});            // fused first-order kernel
    check_gradgrad(ctx, f, {x, gamma, beta}, 1e-6, 1e-5);  // composed rule, second order
    Fn f2 = [](auto& v) { return sq(batch_norm(v[0], {}, {}, {}, {}, true, 0.1, 1e-3)); };
    check_grad(ctx, f2, {x});
    check_gradgrad(ctx, f2, {x});
  }
}

TEST_CASE("batch_norm fused backward equals the composed rule") {
  Context ctx(2, 23);
  for (DType dt : {DType::F64, DType::F32}) {
    Tensor x = rand64(ctx, {3, 4, 37}, -3.0, 3.0).to(dt).detach();
    Tensor gamma = rand64(ctx, {4}, 0.5, 1.5).to(dt).detach(), beta = rand64(ctx, {4}).to(dt).detach();
    Tensor g = rand64(ctx, {3, 4, 37}).to(dt).detach();
    auto run = [&](bool create_graph) {
      auto xs = leaves({x, gamma, beta});
      Tensor y = batch_norm(xs[0], xs[1], xs[2], {}, {}, true);
      return grad({y}, xs, {g}, create_graph);
    };
    auto fused = run(false), composed = run(true);
    // dx: under create_graph it is batch_norm_input_grad, whose value is the same fused kernel, so both are held to
    // the plain loop (comparing them with each other could not fail); dgamma, dbeta: composed from ops.
    const auto dx_ref = bn_dx_loop(g, x, gamma.to_vector<double>(), 1e-5);
    for (int k = 0; k < 3; ++k) {
      double e = rel_err(fused[k].to_vector<double>(), k == 0 ? dx_ref : composed[k].to_vector<double>());
      INFO("input ", k, " dtype ", dtype_name(dt));
      CHECK(e < (dt == DType::F64 ? 1e-12 : 1e-5));
    }
    CHECK(rel_err(composed[0].to_vector<double>(), dx_ref) < (dt == DType::F64 ? 1e-12 : 1e-5));
  }
}

// batch_norm_input_grad with the statistics recomputed from x (detached: its rule accounts for their dependence on x).
Tensor bn_input_grad_of(const Tensor& g, const Tensor& x, const Tensor& gamma, double eps) {
  Tensor mu, is;
  {
    NoGradGuard ng;
    const std::vector<int64_t> ax = x.dim() == 3 ? std::vector<int64_t>{0, 2} : std::vector<int64_t>{0};
    mu = mean(x, ax);
    Tensor xc = sub(x, reshape(mu, x.dim() == 3 ? Shape{1, x.size(1), 1} : Shape{1, x.size(1)}));
    is = rsqrt(add_scalar(mean(mul(xc, xc), ax), eps));
  }
  return batch_norm_input_grad(g, x, gamma, mu, is, eps);
}

TEST_CASE("batch_norm_input_grad: its fused rule (batch norm's second derivatives) is the derivative of dx(g, x, gamma)") {
  Context ctx(2, 24);
  for (Shape s : {Shape{3, 2, 5}, Shape{1, 3, 4}, Shape{4, 2, 1}, Shape{5, 3}, Shape{2, 1, 3}}) {
    INFO("shape ", shape_str(s));
    const int64_t C = s[1];
    Tensor x = add_scalar(rand64(ctx, s, -2.0, 2.0), 3.0), g = rand64(ctx, s), gamma = rand64(ctx, {C}, 0.5, 1.5);
    // first order: the fused rule, for g, x and gamma (and without gamma); the statistics follow x
    Fn f = [](auto& v) { return bn_input_grad_of(v[0], v[1], v[2], 1e-3); };
    check_grad(ctx, f, {g, x, gamma});
    Fn f1 = [](auto& v) { return bn_input_grad_of(v[0], v[1], Tensor(), 1e-3); };
    check_grad(ctx, f1, {g, x});
    // second order of dx (batch norm's third derivatives): the rule composed from ops
    check_gradgrad(ctx, f, {g, x, gamma}, 1e-6, 1e-5);
  }
  // The value is batch norm's input gradient (the plain loop: batch_norm's own first-order backward runs the same
  // kernel, so it would be no reference), and float32 agrees with float64.
  Tensor x = rand64(ctx, {3, 4, 37}, -3.0, 3.0), g = rand64(ctx, {3, 4, 37}), gamma = rand64(ctx, {4}, 0.5, 1.5);
  const auto dx_ref = bn_dx_loop(g, x, gamma.to_vector<double>(), 1e-5);
  CHECK(rel_err(bn_input_grad_of(g, x, gamma, 1e-5).to_vector<double>(), dx_ref) < 1e-12);
  CHECK(rel_err(bn_input_grad_of(g, x, Tensor(), 1e-5).to_vector<double>(), bn_dx_loop(g, x, {}, 1e-5)) < 1e-12);
  // The fused rule in float32 against float64, through the double backward of batch norm itself.
  auto second = [&](DType dt) {
    auto v = leaves({x.to(dt), gamma.to(dt)});
    Tensor y = batch_norm(v[0], v[1], {}, {}, {}, true, 0.1, 1e-5);
    Tensor dx = grad({y}, {v[0]}, {g.to(dt)}, true)[0];
    Tensor h = sum_all(mul(mul(dx, dx), x.to(dt)));
    std::vector<double> out;
    for (const Tensor& t : grad({h}, v)) for (double d : t.to_vector<double>()) out.push_back(d);
    return out;
  };
  CHECK(rel_err(second(DType::F32), second(DType::F64)) < 1e-4);
  CHECK_THROWS_AS(batch_norm_input_grad(g, rand64(ctx, {3, 4, 36}), gamma, gamma, gamma, 1e-5), Error);
  CHECK_THROWS_AS(batch_norm_input_grad(g, x, rand64(ctx, {3}), gamma, gamma, 1e-5), Error);
}

TEST_CASE("batch_norm and max_pool1d give identical bits for 1 and 2 threads") {
  auto run = [](int threads) {
    Context ctx(threads, 28);
    Tensor x = Tensor::randn(ctx, {5, 7, 333});
    Tensor gamma = Tensor::uniform(ctx, {7}, 0.5, 1.5), beta = Tensor::randn(ctx, {7});
    Tensor g = Tensor::randn(ctx, {5, 7, 333});
    auto xs = leaves({x, gamma, beta});
    Tensor y = batch_norm(xs[0], xs[1], xs[2], {}, {}, true);
    auto d = grad({y}, xs, {g});
    std::vector<float> all = y.to_vector<float>();
    for (auto& t : d) for (float v : t.to_vector<float>()) all.push_back(v);
    for (float v : max_pool1d(x, 3, 2).to_vector<float>()) all.push_back(v);
    return all;
  };
  CHECK(run(1) == run(2));
}

TEST_CASE("batch_norm eval mode uses running statistics") {
  Context ctx(2, 24);
  for (Shape s : {Shape{2, 3, 5}, Shape{1, 2, 1}, Shape{4, 3}}) {
    INFO("shape ", shape_str(s));
    int64_t C = s[1];
    Tensor x = rand64(ctx, s, -2.0, 2.0);
    Tensor gamma = rand64(ctx, {C}, 0.5, 1.5), beta = rand64(ctx, {C});
    Tensor rm = rand64(ctx, {C}), rv = rand64(ctx, {C}, 0.5, 1.5);
    auto rm0 = rm.to_vector<double>(), rv0 = rv.to_vector<double>();
    Tensor y = batch_norm(x, gamma, beta, rm, rv, false, 0.1, 1e-5);
    auto ref = bn_loop(x, rm0, rv0, gamma.to_vector<double>(), beta.to_vector<double>(), 1e-5);
    auto yv = y.to_vector<double>();
    for (size_t i = 0; i < ref.size(); ++i) CHECK(yv[i] == doctest::Approx(ref[i]).epsilon(1e-12));
    CHECK(rm.to_vector<double>() == rm0);  // untouched in eval mode
    CHECK(rv.to_vector<double>() == rv0);
    Fn f = [rm, rv](auto& v) { return sq(batch_norm(v[0], v[1], v[2], rm, rv, false)); };
    check_grad(ctx, f, {x, gamma, beta});
    check_gradgrad(ctx, f, {x, gamma, beta});
  }
}

TEST_CASE("max_pool1d keeps a NaN of its window (first, middle or last), as PyTorch does") {
  Context ctx(1, 25);
  const double nan = std::nan("");
  for (int at = 0; at < 3; ++at) {
    std::vector<double> v{1.0, 5.0, 2.0, 0.5, 0.25, 0.125};
    v[at] = nan;
    auto y = max_pool1d(Tensor::from_vector(ctx, {1, 1, 6}, v), 3, 3).to_vector<double>();
    CHECK(std::isnan(y[0]));
    CHECK(y[1] == 0.5);
  }
}

TEST_CASE("max_pool1d routes gradients to the first maximum") {
  Context ctx(2, 25);
  struct Case { Shape s; int64_t k, stride; };
  for (auto c : std::vector<Case>{{{2, 3, 8}, 3, 2}, {{1, 1, 1}, 1, 1}, {{2, 2, 9}, 2, 1}, {{1, 2, 10}, 2, 3},
                                  {{3, 1, 7}, 7, 7}, {{2, 2, 11}, 4, 4}}) {
    INFO("shape ", shape_str(c.s), " k ", c.k, " stride ", c.stride);
    Tensor x = rand64(ctx, c.s);
    Tensor y = max_pool1d(x, c.k, c.stride);
    int64_t L = c.s[2], Lo = (L - c.k) / c.stride + 1, rows = c.s[0] * c.s[1];
    REQUIRE(y.shape() == Shape{c.s[0], c.s[1], Lo});
    auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < Lo; ++j) {
        double m = -1e300;
        for (int64_t t = 0; t < c.k; ++t) m = std::max(m, xv[r * L + j * c.stride + t]);
        CHECK(yv[r * Lo + j] == m);
      }
    int64_t k = c.k, st = c.stride;
    check_grad(ctx, [k, st](auto& v) { return max_pool1d(v[0], k, st); }, {x});
    check_gradgrad(ctx, [k, st](auto& v) { return sq(max_pool1d(v[0], k, st)); }, {x});
    // third order through scatter -> gather -> scatter
    check_gradgrad(ctx, [k, st](auto& v) {
      auto xs = v;
      Tensor y = sum_all(mul(sq(max_pool1d(xs[0], k, st)), max_pool1d(xs[0], k, st)));
      return grad({y}, {xs[0]}, {}, true)[0];
    }, {x});
  }
  // ties: the gradient goes to the first maximum only
  Tensor t = Tensor::from_vector(ctx, {1, 1, 4}, std::vector<double>{1.0, 3.0, 3.0, 0.0});
  t.set_requires_grad(true);
  Tensor y = max_pool1d(t, 4, 1);
  CHECK(y.item() == 3.0);
  auto g = grad({y}, {t})[0].to_vector<double>();
  CHECK(g == std::vector<double>{0, 1, 0, 0});
  // overlapping windows accumulate
  Tensor u = Tensor::from_vector(ctx, {1, 1, 3}, std::vector<double>{0.0, 5.0, 1.0});
  u.set_requires_grad(true);
  Tensor z = sum_all(max_pool1d(u, 2, 1));
  CHECK(grad({z}, {u})[0].to_vector<double>() == std::vector<double>{0, 2, 0});
  CHECK_THROWS_AS(max_pool1d(rand64(ctx, {1, 1, 3}), 4, 1), Error);
  CHECK_THROWS_AS(max_pool1d(rand64(ctx, {1, 3}), 1, 1), Error);
  CHECK_THROWS_AS(max_pool1d(rand64(ctx, {1, 1, 3}), 2, 0), Error);
}

TEST_CASE("DeepLIFT rule kernels: rescale (ReLU, max-pool) and the max-pool seed follow their formulas") {
  Context ctx(2, 5);
  // Three pairs (x; r): Δin = 0.5, 0 (fallback), 1e-12 (below eps: fallback).
  const Tensor in = Tensor::from_vector(ctx, {6}, std::vector<double>{1.0, 0.3, 0.2, 0.5, 0.3, 0.2 - 1e-12});
  // Δout = 0.8, 0.2, −0.4
  const Tensor out = Tensor::from_vector(ctx, {6}, std::vector<double>{0.9, 0.4, -0.1, 0.1, 0.2, 0.3});
  const Tensor g = Tensor::from_vector(ctx, {6}, std::vector<double>{2.0, 3.0, 4.0, -1.0, 5.0, 6.0});
  const Tensor reg = Tensor::from_vector(ctx, {6}, std::vector<double>{11.0, 12.0, 13.0, 14.0, 15.0, 16.0});
  const Tensor U = Tensor::from_vector(ctx, {3}, std::vector<double>{0.25, 7.0, 8.0});
  Tensor res = Tensor::empty(ctx, {6}, DType::F64);
  cpu::deeplift_rescale(in, g, out, reg, 1e-10, res);  // ReLU: g·Δout/Δin
  auto r = res.to_vector<double>();
  CHECK(r[0] == doctest::Approx(2.0 * 0.8 / 0.5));
  CHECK(r[3] == doctest::Approx(-1.0 * 0.8 / 0.5));
  CHECK(r[1] == 12.0);
  CHECK(r[4] == 15.0);
  CHECK(r[2] == 13.0);
  CHECK(r[5] == 16.0);
  cpu::deeplift_rescale(in, U, Tensor(), reg, 1e-10, res);  // max-pool: U/Δin for both halves
  r = res.to_vector<double>();
  CHECK(r[0] == doctest::Approx(0.5));
  CHECK(r[3] == doctest::Approx(0.5));
  CHECK(r[1] == 12.0);
  CHECK(r[5] == 16.0);
  Tensor G = Tensor::empty(ctx, {6}, DType::F64);
  cpu::deeplift_pool_seed(out, g, G);  // G = [g_x·(max(y, y0) − y0); g_r·(y − max(y, y0))]
  auto gv = G.to_vector<double>();
  CHECK(gv[0] == doctest::Approx(2.0 * 0.8));  // y 0.9 > y0 0.1
  CHECK(gv[3] == doctest::Approx(0.0));
  CHECK(gv[1] == doctest::Approx(3.0 * 0.2));  // y 0.4 > y0 0.2
  CHECK(gv[4] == doctest::Approx(0.0));
  CHECK(gv[2] == doctest::Approx(0.0));        // y −0.1 < y0 0.3
  CHECK(gv[5] == doctest::Approx(6.0 * -0.4));
}

TEST_CASE("global_avg_pool1d") {
  Context ctx(2, 26);
  Tensor x = rand64(ctx, {2, 3, 7});
  auto y = global_avg_pool1d(x).to_vector<double>();
  auto xv = x.to_vector<double>();
  for (int64_t r = 0; r < 6; ++r) {
    double s = 0;
    for (int64_t l = 0; l < 7; ++l) s += xv[r * 7 + l];
    CHECK(y[r] == doctest::Approx(s / 7).epsilon(1e-12));
  }
  check_grad(ctx, [](auto& v) { return global_avg_pool1d(v[0]); }, {x});
  check_gradgrad(ctx, [](auto& v) { return sq(global_avg_pool1d(v[0])); }, {x});
  CHECK_THROWS_AS(global_avg_pool1d(rand64(ctx, {2, 3})), Error);
}

TEST_CASE("dropout: kept elements scaled by 1/(1-p), the rest 0, the rate as asked, gradient = the mask") {
  Context ctx(2, 29);
  for (double p : {0.1, 0.5, 0.8}) {
    INFO("p ", p);
    Tensor x = rand64(ctx, {200, 500}, 0.5, 1.5);  // never 0: a dropped element is told by its 0
    Tensor y = dropout(x, p, ctx);
    const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
    int64_t zeros = 0;
    double sx = 0, sy = 0;
    for (size_t i = 0; i < xv.size(); ++i) {
      if (yv[i] == 0) {
        ++zeros;
      } else {
        CHECK(yv[i] == doctest::Approx(xv[i] / (1 - p)).epsilon(1e-15));
      }
      sx += xv[i], sy += yv[i];
    }
    const double n = static_cast<double>(xv.size()), sd = std::sqrt(n * p * (1 - p));
    CHECK(std::abs(static_cast<double>(zeros) - n * p) < 5 * sd);
    CHECK(sy / sx == doctest::Approx(1.0).epsilon(0.01));
    // The gradient is the mask (y / x where kept), through mul: recorded, unlike the mask itself.
    Tensor xl = x.clone();
    xl.set_requires_grad(true);
    Tensor yl = dropout(xl, p, ctx);
    REQUIRE(yl.requires_grad());
    const auto g = grad({sum_all(yl)}, {xl}, {}, false)[0].to_vector<double>(), ylv = yl.detach().to_vector<double>();
    for (size_t i = 0; i < g.size(); i += 97) CHECK(g[i] == doctest::Approx(ylv[i] / xv[i]).epsilon(1e-12));
  }
  Tensor x = rand64(ctx, {3, 4}, -1, 1);
  CHECK(dropout(x, 0.0, ctx).to_vector<double>() == x.to_vector<double>());
  CHECK_THROWS_AS(dropout(x, 1.0, ctx), Error);
  CHECK_THROWS_AS(dropout(x, -0.1, ctx), Error);
}

TEST_CASE("dropout: gradient and gradient of gradient against finite differences with the mask held fixed") {
  // The mask comes from the generator: each evaluation reseeds it, so every evaluation draws the same mask.
  Context ctx(2, 30), dctx(1, 0);
  for (Shape s : {Shape{1}, Shape{7}, Shape{3, 2, 5}}) {
    for (double p : {0.2, 0.5}) {
      INFO("shape ", shape_str(s), " p ", p);
      Tensor x = rand64(ctx, s, -2.0, 2.0);
      Fn f = [&dctx, p](auto& v) {
        dctx.rng().seed(41);
        return mul(dropout(v[0], p, dctx), v[0]);  // times x: the second derivative is 2·mask, not 0
      };
      check_grad(ctx, f, {x});
      check_gradgrad(ctx, f, {x});
    }
  }
}

TEST_CASE("log_softmax and softmax rows with infinities and NaN (pinned; the CUDA kernels match: test_cuda.cpp)") {
  Context ctx(1, 1);
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  // Rows: all -inf, one -inf, +inf with a finite value, NaN with a finite value.
  const Tensor x = Tensor::from_vector(ctx, {4, 2}, std::vector<double>{-inf, -inf, 0, -inf, inf, 1, nan, 1});
  auto same = [](const std::vector<double>& got, const std::vector<double>& want) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("element ", i, " got ", got[i], " want ", want[i]);
      CHECK(((std::isnan(got[i]) && std::isnan(want[i])) || got[i] == want[i]));
    }
  };
  for (DType t : {DType::F64, DType::F32}) {
    const Tensor xt = x.to(t);
    same(log_softmax(xt, 1).to_vector<double>(), {nan, nan, 0, -inf, nan, -inf, nan, nan});
    same(softmax(xt, 1).to_vector<double>(), {nan, nan, 1, 0, nan, 0, nan, nan});
  }
}

TEST_CASE("log_softmax and softmax over any dim") {
  Context ctx(2, 27);
  for (auto [s_, d_] : std::vector<std::pair<Shape, int64_t>>{
           {{3, 5}, 1}, {{3, 5}, 0}, {{2, 3, 4}, 1}, {{2, 3, 4}, -1}, {{1, 1}, 1}, {{4, 1, 2}, 1}}) {
    auto s = s_; auto d = d_;  // named copies: clang < 16 cannot capture structured bindings
    INFO("shape ", shape_str(s), " dim ", d);
    Tensor x = add_scalar(rand64(ctx, s, -3.0, 3.0), 800.0);  // exp(800) overflows: must be stable
    int64_t dd = d < 0 ? d + static_cast<int64_t>(s.size()) : d;
    int64_t outer = 1, n = s[dd], inner = 1;
    for (int64_t k = 0; k < dd; ++k) outer *= s[k];
    for (size_t k = dd + 1; k < s.size(); ++k) inner *= s[k];
    auto xv = x.to_vector<double>();
    auto ls = log_softmax(x, d).to_vector<double>(), sm = softmax(x, d).to_vector<double>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        double tot = 0;
        for (int64_t j = 0; j < n; ++j) tot += std::exp(xv[(o * n + j) * inner + i] - 800.0);
        for (int64_t j = 0; j < n; ++j) {
          int64_t f = (o * n + j) * inner + i;
          double ref = xv[f] - 800.0 - std::log(tot);
          CHECK(ls[f] == doctest::Approx(ref).epsilon(1e-12));
          CHECK(sm[f] == doctest::Approx(std::exp(ref)).epsilon(1e-12));
        }
      }
    Tensor xs = rand64(ctx, s, -2.0, 2.0);
    check_grad(ctx, [d](auto& v) { return log_softmax(v[0], d); }, {xs});
    check_gradgrad(ctx, [d](auto& v) { return log_softmax(v[0], d); }, {xs});
    check_grad(ctx, [d](auto& v) { return softmax(v[0], d); }, {xs});
    check_gradgrad(ctx, [d](auto& v) { return softmax(v[0], d); }, {xs});
  }
  CHECK_THROWS_AS(log_softmax(rand64(ctx, {2, 3}), 2), Error);
}
}
