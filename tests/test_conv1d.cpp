// conv1d, conv1d_input_grad, conv1d_weight_grad: every kernel family against plain loops written from the
// definition (y = Σ w·x, dx = Σ w·dy, dw = Σ dy·x at s = t + k·d - pad_left), and the ops' gradients and
// gradients of gradients against finite differences in float64. Run: build/tests/lowpass_tests -ts=conv1d
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/conv1d.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;
using cpu::ConvAlgo;

namespace {

struct Cfg {
  int64_t B, Cin, Cout, L, K, d, pl, pr, G;
  Conv1dOpts opts() const { return {d, pl, pr, G}; }
  int64_t Lout() const { return L + pl + pr - d * (K - 1); }
};

std::string cfg_str(const Cfg& c) {
  return detail::concat("B", c.B, " Cin", c.Cin, " Cout", c.Cout, " L", c.L, " K", c.K, " d", c.d, " pad", c.pl,
                        "/", c.pr, " G", c.G);
}

// All three products of the definition, by one scatter loop over (b, o, t, c, k).
struct Ref {
  std::vector<double> y, dx, dw;
};
Ref reference(const Cfg& c, const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& bias,
              const std::vector<double>& dy) {
  const int64_t Lo = c.Lout(), Cg = c.Cin / c.G, Og = c.Cout / c.G;
  Ref r{std::vector<double>(size_t(c.B * c.Cout * Lo), 0.0), std::vector<double>(size_t(c.B * c.Cin * c.L), 0.0),
        std::vector<double>(size_t(c.Cout * Cg * c.K), 0.0)};
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t o = 0; o < c.Cout; ++o)
      for (int64_t t = 0; t < Lo; ++t) {
        const size_t yi = size_t((b * c.Cout + o) * Lo + t);
        if (!bias.empty()) r.y[yi] += bias[size_t(o)];
        for (int64_t ci = 0; ci < Cg; ++ci)
          for (int64_t k = 0; k < c.K; ++k) {
            const int64_t s = t + k * c.d - c.pl;
            if (s < 0 || s >= c.L) continue;
            const size_t xi = size_t((b * c.Cin + (o / Og) * Cg + ci) * c.L + s), wi = size_t((o * Cg + ci) * c.K + k);
            r.y[yi] += w[wi] * x[xi];
            if (!dy.empty()) {
              r.dx[xi] += w[wi] * dy[yi];
              r.dw[wi] += dy[yi] * x[xi];
            }
          }
      }
  return r;
}

double max_rel(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double scale = 1e-30, err = 0;
  for (double v : want) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    err = std::max(err, std::abs(got[i] - want[i]));
  }
  return err / scale;
}

Tensor nan_tensor(Context& ctx, const Shape& s, DType t) {
  return Tensor::full(ctx, s, std::numeric_limits<double>::quiet_NaN(), t);
}

const std::vector<Cfg> small_cfgs = {
    {2, 3, 5, 11, 3, 1, 0, 0, 1},   // valid
    {1, 4, 8, 1, 1, 1, 0, 0, 1},    // length 1, K 1
    {1, 2, 3, 1, 3, 1, 1, 1, 1},    // length 1, 'same'
    {3, 4, 6, 9, 3, 2, 2, 1, 2},    // groups 2, asymmetric padding
    {2, 6, 9, 13, 2, 3, 0, 4, 3},   // groups 3, even K, right padding only
    {1, 3, 4, 70, 2, 64, 0, 0, 1},  // dilation 64, valid
    {2, 2, 2, 5, 3, 64, 64, 64, 1}, // dilation 64, 'same' on a short input
    {2, 6, 6, 7, 3, 1, 1, 1, 6},    // depthwise
    {1, 2, 3, 4, 4, 1, 5, 0, 1},    // padding larger than the input
};

const std::vector<Cfg> kernel_cfgs = {
    {2, 16, 24, 150, 5, 2, 4, 4, 1},     {2, 64, 64, 101, 15, 1, 7, 7, 1},  {2, 4, 64, 97, 21, 1, 10, 10, 1},
    {1, 64, 4, 60, 21, 1, 10, 10, 1},    {2, 8, 70, 200, 3, 8, 8, 8, 1},    {2, 32, 130, 50, 3, 1, 1, 1, 2},
    {3, 5, 7, 47, 3, 16, 16, 16, 1},     {1, 3, 9, 385, 1, 1, 0, 0, 1},     {2, 12, 16, 49, 3, 1, 0, 0, 1},
    {1, 64, 64, 1346, 3, 64, 64, 64, 1}, {1, 1, 1, 1, 1, 1, 0, 0, 1},       {2, 6, 12, 33, 4, 5, 9, 6, 3},
    // the narrow tiles (O ≤ 4): BPNet's profile head (valid, K = 75), and odd O, dilation, wide padding
    {2, 64, 2, 300, 75, 1, 0, 0, 1},     {3, 16, 3, 120, 75, 2, 70, 80, 1}, {2, 8, 1, 40, 9, 1, 4, 4, 1},
    {1, 10, 8, 37, 7, 3, 0, 0, 2},
};

std::vector<ConvAlgo> algos() {
  std::vector<ConvAlgo> r{ConvAlgo::Reference, ConvAlgo::Im2colEigen, ConvAlgo::Auto};
  if (cpu::conv_algo_available(ConvAlgo::Im2colBlas)) r.push_back(ConvAlgo::Im2colBlas);
  if (cpu::conv_algo_available(ConvAlgo::Direct)) r.push_back(ConvAlgo::Direct);
  return r;
}

}  // namespace

TEST_SUITE("conv1d") {
TEST_CASE("Conv1dOpts::same keeps the length") {
  for (int64_t k : {1, 2, 3, 4, 15, 21})
    for (int64_t d : {1, 2, 64}) {
      Conv1dOpts o = Conv1dOpts::same(k, d);
      CHECK(o.pad_left + o.pad_right == d * (k - 1));
      CHECK(o.pad_right - o.pad_left >= 0);
      CHECK(o.pad_right - o.pad_left <= 1);
      if (k % 2 == 1) CHECK(o.pad_left == d * (k - 1) / 2);
    }
  CHECK_THROWS_AS(Conv1dOpts::same(0), Error);
}

TEST_CASE("every kernel family matches the plain loops (forward, input grad, weight grad)") {
  Context ctx(2, 11);
  std::vector<Cfg> cfgs = small_cfgs;
  cfgs.insert(cfgs.end(), kernel_cfgs.begin(), kernel_cfgs.end());
  for (DType dt : {DType::F32, DType::F64})
    for (const Cfg& c : cfgs) {
      const int64_t Cg = c.Cin / c.G;
      Tensor x = Tensor::uniform(ctx, {c.B, c.Cin, c.L}, -1, 1, dt);
      Tensor w = Tensor::uniform(ctx, {c.Cout, Cg, c.K}, -1, 1, dt);
      Tensor bias = Tensor::uniform(ctx, {c.Cout}, -1, 1, dt);
      Tensor dy = Tensor::uniform(ctx, {c.B, c.Cout, c.Lout()}, -1, 1, dt);
      Ref r = reference(c, x.to_vector<double>(), w.to_vector<double>(), bias.to_vector<double>(),
                        dy.to_vector<double>());
      const double tol = dt == DType::F32 ? 2e-5 * std::sqrt(double(Cg * c.K * std::max<int64_t>(c.B, 1))) : 1e-12;
      for (ConvAlgo a : algos()) {
        if (a == ConvAlgo::Direct && dt != DType::F32) continue;
        if (a == ConvAlgo::Im2colBlas && dt != DType::F32) continue;
        INFO(cfg_str(c), " ", dtype_name(dt), " ", cpu::conv_algo_name(a));
        Tensor y = nan_tensor(ctx, {c.B, c.Cout, c.Lout()}, dt);
        cpu::conv1d_fwd_cpu(x, w, bias, y, c.opts(), a);
        CHECK(max_rel(y.to_vector<double>(), r.y) < tol);
        Tensor dx = nan_tensor(ctx, {c.B, c.Cin, c.L}, dt);
        cpu::conv1d_bwd_input_cpu(dy, w, dx, c.opts(), a);
        CHECK(max_rel(dx.to_vector<double>(), r.dx) < tol);
        Tensor dw = nan_tensor(ctx, {c.Cout, Cg, c.K}, dt);
        cpu::conv1d_bwd_weight_cpu(x, dy, dw, c.opts(), a);
        CHECK(max_rel(dw.to_vector<double>(), r.dw) < tol * std::sqrt(double(c.Lout())));
      }
    }
}

TEST_CASE("conv1d op forward matches the plain loop, with and without bias") {
  Context ctx(2, 12);
  for (const Cfg& c : small_cfgs) {
    INFO(cfg_str(c));
    Tensor x = rand64(ctx, {c.B, c.Cin, c.L});
    Tensor w = rand64(ctx, {c.Cout, c.Cin / c.G, c.K});
    Tensor b = rand64(ctx, {c.Cout});
    Ref r = reference(c, x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(), {});
    Tensor y = conv1d(x, w, b, c.opts());
    CHECK(y.shape() == Shape{c.B, c.Cout, c.Lout()});
    CHECK(max_rel(y.to_vector<double>(), r.y) < 1e-12);
    Ref r0 = reference(c, x.to_vector<double>(), w.to_vector<double>(), {}, {});
    CHECK(max_rel(conv1d(x, w, Tensor(), c.opts()).to_vector<double>(), r0.y) < 1e-12);
  }
}

TEST_CASE("conv1d_relu: the fused inference pass has the bits of relu(conv1d) + residual; under grad, the ops") {
  Context ctx(2, 31);
  auto bits_equal = [](const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    const float *p = a.data<float>(), *q = b.data<float>();
    return std::memcmp(p, q, sizeof(float) * size_t(a.numel())) == 0;
  };
  std::vector<Cfg> cfgs = kernel_cfgs;
  cfgs.insert(cfgs.end(), small_cfgs.begin(), small_cfgs.end());
  // the trunk's layers: one-hot in (K 21), 64 → 64 dilated, tile − 1 / tile / tile + 1 positions (48, 384 per item)
  for (int64_t L : {47, 48, 49, 383, 384, 385, 846}) cfgs.push_back({3, 64, 64, L, 3, 4, 4, 4, 1});
  cfgs.push_back({2, 4, 64, 846, 21, 1, 10, 10, 1});
  for (const Cfg& c : cfgs) {
    INFO(cfg_str(c));
    Tensor x = cast(rand64(ctx, {c.B, c.Cin, c.L}), DType::F32);
    Tensor w = cast(rand64(ctx, {c.Cout, c.Cin / c.G, c.K}), DType::F32);
    Tensor b = cast(rand64(ctx, {c.Cout}), DType::F32);
    Tensor r = cast(rand64(ctx, {c.B, c.Cout, c.Lout()}), DType::F32);
    if (x.numel() > 2) {  // NaN canaries: a NaN stays NaN through relu and the sum (an all-NaN column of y)
      x.data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
      r.data<float>()[r.numel() - 1] = std::numeric_limits<float>::quiet_NaN();
    }
    NoGradGuard ng;
    const Tensor composed = relu(conv1d(x, w, b, c.opts()));
    CHECK(bits_equal(conv1d_relu(x, w, b, c.opts()), composed));
    CHECK(bits_equal(conv1d_relu(x, w, b, c.opts(), r), add(composed, r)));
    CHECK(bits_equal(conv1d_relu(x, w, Tensor(), c.opts(), r), add(relu(conv1d(x, w, Tensor(), c.opts())), r)));
  }
  // negative values become +0 (never −0), as relu makes them
  {
    NoGradGuard ng;
    Tensor x = Tensor::ones(ctx, {1, 2, 5}, DType::F32), w = Tensor::zeros(ctx, {3, 2, 1}, DType::F32);
    Tensor b = Tensor::full(ctx, {3}, -0.5, DType::F32);
    const Tensor y = conv1d_relu(x, w, b, {});
    for (float v : y.to_vector<float>()) CHECK(!std::signbit(v));
    CHECK(bits_equal(y, relu(conv1d(x, w, b, {}))));
  }
  // Grad mode with inputs that need a gradient: the ops composed, with their gradients (float64 too)
  for (DType dt : {DType::F32, DType::F64}) {
    const Cfg c{2, 5, 6, 20, 3, 2, 2, 2, 1};
    Tensor x = cast(rand64(ctx, {c.B, c.Cin, c.L}), dt), w = cast(rand64(ctx, {c.Cout, c.Cin, c.K}), dt);
    Tensor b = cast(rand64(ctx, {c.Cout}), dt), r = cast(rand64(ctx, {c.B, c.Cout, c.L}), dt);
    x.set_requires_grad(true), w.set_requires_grad(true), r.set_requires_grad(true);
    EnableGradGuard on(true);
    Tensor y1 = conv1d_relu(x, w, b, c.opts(), r), y2 = add(relu(conv1d(x, w, b, c.opts())), r);
    CHECK(y1.requires_grad());
    CHECK(max_rel(y1.to_vector<double>(), y2.to_vector<double>()) == 0.0);
    const auto g1 = grad({y1}, {x, w, r}, {Tensor::ones(ctx, y1.shape(), dt)});
    const auto g2 = grad({y2}, {x, w, r}, {Tensor::ones(ctx, y2.shape(), dt)});
    for (size_t i = 0; i < g1.size(); ++i) CHECK(max_rel(g1[i].to_vector<double>(), g2[i].to_vector<double>()) == 0.0);
  }
  // Shapes are checked on the fused path as conv1d checks them
  {
    NoGradGuard ng;
    Tensor x = Tensor::ones(ctx, {1, 2, 5}, DType::F32), w = Tensor::ones(ctx, {3, 2, 1}, DType::F32);
    CHECK_THROWS_AS(conv1d_relu(x, w, Tensor(), {}, Tensor::ones(ctx, {1, 3, 4}, DType::F32)), Error);
    CHECK_THROWS_AS(conv1d_relu(x, Tensor::ones(ctx, {3, 4, 1}, DType::F32), Tensor(), {}), Error);
  }
}

TEST_CASE("gradients and gradients of gradients of the three ops") {
  Context ctx(2, 13);
  for (const Cfg& c : small_cfgs) {
    INFO(cfg_str(c));
    const Conv1dOpts o = c.opts();
    const int64_t L = c.L, K = c.K;
    Tensor x = rand64(ctx, {c.B, c.Cin, c.L});
    Tensor w = rand64(ctx, {c.Cout, c.Cin / c.G, c.K});
    Tensor b = rand64(ctx, {c.Cout});
    Tensor dy = rand64(ctx, {c.B, c.Cout, c.Lout()});
    Fn f_conv = [o](const std::vector<Tensor>& v) { return conv1d(v[0], v[1], v[2], o); };
    // A non-linear function of the output so that the second derivative wrt each input is exercised.
    Fn f_conv_sq = [o](const std::vector<Tensor>& v) { return square(conv1d(v[0], v[1], v[2], o)); };
    Fn f_in = [o, L](const std::vector<Tensor>& v) { return square(conv1d_input_grad(v[0], v[1], L, o)); };
    Fn f_w = [o, K](const std::vector<Tensor>& v) { return square(conv1d_weight_grad(v[0], v[1], K, o)); };
    check_grad(ctx, f_conv, {x, w, b});
    check_gradgrad(ctx, f_conv, {x, w, b});
    check_grad(ctx, f_conv_sq, {x, w, b});
    check_gradgrad(ctx, f_conv_sq, {x, w, b});
    check_grad(ctx, f_in, {dy, w});
    check_gradgrad(ctx, f_in, {dy, w});
    check_grad(ctx, f_w, {x, dy});
    check_gradgrad(ctx, f_w, {x, dy});
  }
}

TEST_CASE("the prior's chain: gradient of an input gradient reaches the weights") {
  // h(w) = Σ (d<conv(x,w)², v>/dx)²: needs conv1d_input_grad's and conv1d_weight_grad's rules together.
  Context ctx(2, 14);
  Cfg c{2, 3, 4, 9, 3, 2, 2, 2, 1};
  Tensor x0 = rand64(ctx, {c.B, c.Cin, c.L});
  Tensor w = rand64(ctx, {c.Cout, c.Cin, c.K});
  Tensor v = rand64(ctx, {c.B, c.Cout, c.Lout()});
  Fn f = [&](const std::vector<Tensor>& in) {
    EnableGradGuard eg(true);
    Tensor y = square(conv1d(in[0], in[1], Tensor(), c.opts()));
    Tensor gx = grad({y}, {in[0]}, {v}, true)[0];
    return mul(gx, in[0]);
  };
  check_grad(ctx, f, {x0, w});
}

TEST_CASE("one-hot input: gather and scatter paths equal the dense paths") {
  Context ctx(2, 15);
  for (Cfg c : std::vector<Cfg>{{3, 4, 64, 200, 21, 1, 10, 10, 1},
                                {2, 4, 13, 31, 5, 3, 0, 2, 1},
                                {1, 4, 8, 1, 3, 1, 1, 1, 1},
                                {2, 4, 64, 300, 21, 1, 0, 0, 1}})
    for (DType dt : {DType::F32, DType::F64}) {
      INFO(cfg_str(c), " ", dtype_name(dt));
      // Random one-hot columns with about 10% all-zero (N) columns.
      std::vector<double> xv(size_t(c.B * c.Cin * c.L), 0.0);
      for (int64_t b = 0; b < c.B; ++b)
        for (int64_t l = 0; l < c.L; ++l) {
          int64_t ch = ctx.rng().randint(0, c.Cin + 1);
          if (ctx.rng().uniform() < 0.1 || ch == c.Cin) continue;
          xv[size_t((b * c.Cin + ch) * c.L + l)] = 1.0;
        }
      Tensor x = Tensor::from_vector(ctx, {c.B, c.Cin, c.L}, xv).to(dt);
      std::vector<int8_t> codes;
      REQUIRE(cpu::onehot_codes(x, codes));
      Tensor w = Tensor::uniform(ctx, {c.Cout, c.Cin, c.K}, -1, 1, dt);
      Tensor bias = Tensor::uniform(ctx, {c.Cout}, -1, 1, dt);
      Tensor dy = Tensor::uniform(ctx, {c.B, c.Cout, c.Lout()}, -1, 1, dt);
      Ref r = reference(c, xv, w.to_vector<double>(), bias.to_vector<double>(), dy.to_vector<double>());
      const double tol = dt == DType::F32 ? 1e-5 : 1e-12;
      Tensor yg = nan_tensor(ctx, {c.B, c.Cout, c.Lout()}, dt), yd = nan_tensor(ctx, {c.B, c.Cout, c.Lout()}, dt);
      cpu::conv1d_fwd_cpu(x, w, bias, yg, c.opts(), ConvAlgo::Gather);
      cpu::conv1d_fwd_cpu(x, w, bias, yd, c.opts(), ConvAlgo::Im2colEigen);
      CHECK(max_rel(yg.to_vector<double>(), r.y) < tol);
      CHECK(max_rel(yg.to_vector<double>(), yd.to_vector<double>()) < tol);
      Tensor dwg = nan_tensor(ctx, {c.Cout, c.Cin, c.K}, dt), dwd = nan_tensor(ctx, {c.Cout, c.Cin, c.K}, dt);
      cpu::conv1d_bwd_weight_cpu(x, dy, dwg, c.opts(), ConvAlgo::Gather);
      cpu::conv1d_bwd_weight_cpu(x, dy, dwd, c.opts(), ConvAlgo::Im2colEigen);
      CHECK(max_rel(dwg.to_vector<double>(), r.dw) < tol * 10);
      CHECK(max_rel(dwg.to_vector<double>(), dwd.to_vector<double>()) < tol * 10);
      // The op picks the gather by itself; results equal the plain loop.
      CHECK(max_rel(conv1d(x, w, bias, c.opts()).to_vector<double>(), r.y) < tol);
      CHECK(max_rel(conv1d_weight_grad(x, dy, c.K, c.opts()).to_vector<double>(), r.dw) < tol * 10);
    }
}

TEST_CASE("one-hot detection refuses what is not one-hot") {
  Context ctx(1, 16);
  std::vector<int8_t> codes;
  std::vector<double> v(2 * 4 * 5, 0.0);
  v[3] = 1.0;  // (0, 0, 3)
  Tensor ok = Tensor::from_vector(ctx, {2, 4, 5}, v);
  REQUIRE(cpu::onehot_codes(ok, codes));
  CHECK(codes[3] == 0);
  CHECK(codes[0] == -1);
  auto two = v;
  two[5 + 3] = 1.0;  // channel 1, same column: two ones
  CHECK_FALSE(cpu::onehot_codes(Tensor::from_vector(ctx, {2, 4, 5}, two), codes));
  auto half = v;
  half[7] = 0.5;
  CHECK_FALSE(cpu::onehot_codes(Tensor::from_vector(ctx, {2, 4, 5}, half), codes));
  Tensor w = rand64(ctx, {3, 4, 2});
  Tensor y = Tensor::zeros(ctx, {2, 3, 4}, DType::F64);
  CHECK_THROWS_AS(cpu::conv1d_fwd_cpu(Tensor::from_vector(ctx, {2, 4, 5}, half), w, Tensor(), y, {}, ConvAlgo::Gather),
                  Error);
}

TEST_CASE("gradient of the weight gradient with a one-hot input (the prior's double backward)") {
  Context ctx(2, 17);
  Cfg c{2, 4, 5, 12, 3, 2, 2, 2, 1};
  std::vector<double> xv(size_t(c.B * c.Cin * c.L), 0.0);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t l = 0; l < c.L; ++l) xv[size_t((b * c.Cin + ctx.rng().randint(0, c.Cin)) * c.L + l)] = 1.0;
  Tensor x = Tensor::from_vector(ctx, {c.B, c.Cin, c.L}, xv);
  Tensor dy = rand64(ctx, {c.B, c.Cout, c.Lout()});
  const Conv1dOpts o = c.opts();
  Fn f = [o, c](const std::vector<Tensor>& v) { return square(conv1d_weight_grad(v[0], v[1], c.K, o)); };
  check_grad(ctx, f, {x, dy});
  check_gradgrad(ctx, f, {x, dy});
}

TEST_CASE("results are deterministic for a fixed thread count; forward is independent of it") {
  Context ctx2(2, 18), ctx1(1, 18);
  for (Cfg c : {Cfg{5, 16, 32, 301, 5, 3, 6, 6, 1}, Cfg{5, 16, 2, 301, 75, 1, 0, 0, 1}}) {
  INFO(cfg_str(c));
  Tensor x = Tensor::uniform(ctx2, {c.B, c.Cin, c.L}, -1, 1);
  Tensor w = Tensor::uniform(ctx2, {c.Cout, c.Cin, c.K}, -1, 1);
  Tensor dy = Tensor::uniform(ctx2, {c.B, c.Cout, c.Lout()}, -1, 1);
  for (ConvAlgo a : algos()) {
    INFO(cpu::conv_algo_name(a));
    Tensor dw1 = Tensor::zeros(ctx2, w.shape()), dw2 = Tensor::zeros(ctx2, w.shape());
    cpu::conv1d_bwd_weight_cpu(x, dy, dw1, c.opts(), a);
    cpu::conv1d_bwd_weight_cpu(x, dy, dw2, c.opts(), a);
    CHECK(dw1.to_vector<float>() == dw2.to_vector<float>());
    Tensor y2 = Tensor::zeros(ctx2, dy.shape());
    cpu::conv1d_fwd_cpu(x, w, Tensor(), y2, c.opts(), a);
    Tensor x1 = Tensor::zeros(ctx1, x.shape()), w1 = Tensor::zeros(ctx1, w.shape());
    x1.copy_(x);
    w1.copy_(w);
    Tensor y1 = Tensor::zeros(ctx1, dy.shape());
    cpu::conv1d_fwd_cpu(x1, w1, Tensor(), y1, c.opts(), a);
    CHECK(y1.to_vector<float>() == y2.to_vector<float>());
  }
  }
}

TEST_CASE("bad shapes and options throw lowpass::Error") {
  Context ctx(1, 19);
  Tensor x = rand64(ctx, {2, 4, 10});
  Tensor w = rand64(ctx, {6, 4, 3});
  CHECK_THROWS_AS(conv1d(rand64(ctx, {4, 10}), w, Tensor()), Error);                 // 2-D input
  CHECK_THROWS_AS(conv1d(x, rand64(ctx, {6, 3, 3}), Tensor()), Error);               // channel mismatch
  CHECK_THROWS_AS(conv1d(x, w, rand64(ctx, {5})), Error);                            // bias size
  CHECK_THROWS_AS(conv1d(x, w, Tensor(), {0, 0, 0, 1}), Error);                      // dilation 0
  CHECK_THROWS_AS(conv1d(x, w, Tensor(), {1, -1, 0, 1}), Error);                     // negative padding
  CHECK_THROWS_AS(conv1d(x, w, Tensor(), {1, 0, 0, 3}), Error);                      // groups do not divide
  CHECK_THROWS_AS(conv1d(x, rand64(ctx, {6, 4, 11}), Tensor()), Error);              // kernel longer than input
  CHECK_THROWS_AS(conv1d(x, w.to(DType::F32), Tensor()), Error);                     // dtype mismatch
  CHECK_THROWS_AS(conv1d_input_grad(rand64(ctx, {2, 6, 7}), w, 10, {}), Error);      // wrong dy length
  CHECK_THROWS_AS(conv1d_weight_grad(x, rand64(ctx, {3, 6, 8}), 3, {}), Error);      // batch mismatch
  CHECK_THROWS_AS(conv1d_weight_grad(x, rand64(ctx, {2, 6, 8}), 4, {}), Error);      // wrong K for lengths
}
}
