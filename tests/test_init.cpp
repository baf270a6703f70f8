// Default initialisation: bounds and distribution (Kolmogorov–Smirnov against U(−b, b), moments),
// fan_in with groups, determinism per seed, BatchNorm constants.
// Run: build/tests/lowpass_tests -ts=init
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/init.h"

using namespace lowpass;

namespace {

// KS statistic of samples against U(-b, b).
double ks_uniform(std::vector<double> v, double b) {
  std::sort(v.begin(), v.end());
  const double n = static_cast<double>(v.size());
  double d = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    double cdf = std::clamp((v[i] + b) / (2 * b), 0.0, 1.0);
    d = std::max({d, (i + 1) / n - cdf, cdf - i / n});
  }
  return d;
}

void check_uniform(const Tensor& t, double b, const char* what) {
  auto v = t.to_vector<double>();
  INFO(std::string(what), " bound ", b, " n ", v.size());
  double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
  CHECK(lo >= -b);
  CHECK(hi <= b);
  const double n = static_cast<double>(v.size());
  if (n < 20) return;  // too few draws for distribution checks
  // KS critical value at alpha = 0.001: 1.95/sqrt(n). Fixed seeds, so this is deterministic.
  CHECK(ks_uniform(v, b) < 1.95 / std::sqrt(n));
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= n;
  for (double x : v) var += (x - mean) * (x - mean);
  var /= n - 1;
  CHECK(std::abs(mean) < 4 * b / std::sqrt(3 * n));            // sd of the mean: b/sqrt(3n)
  CHECK(var == doctest::Approx(b * b / 3).epsilon(8 / std::sqrt(n)));
  if (n > 1000) {  // the range is used up to its ends
    CHECK(lo < -b * (1 - 20 / n));
    CHECK(hi > b * (1 - 20 / n));
  }
}

}  // namespace

TEST_SUITE("init") {
TEST_CASE("fan_in follows torch.nn.init: in_channels/groups times kernel size") {
  CHECK(fan_in_of({64, 4, 21}) == 84);
  CHECK(fan_in_of({64, 64 / 4, 3}) == 48);  // groups = 4
  CHECK(fan_in_of({50, 1536}) == 1536);
  CHECK(fan_in_of({3, 1, 1}) == 1);
  CHECK_THROWS_AS(fan_in_of({7}), Error);
}

TEST_CASE("Conv1d and Linear: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))") {
  Context ctx(1, 123);
  struct Case { Shape w; const char* what; };
  for (Case c : {Case{{64, 64, 15}, "conv 64x64x15"}, Case{{64, 4, 21}, "first conv"}, Case{{8, 2, 5}, "grouped"},
                 Case{{1, 1, 1}, "1x1x1"}, Case{{50, 1536}, "linear"}, Case{{3, 7}, "small linear"}}) {
    Tensor w = Tensor::empty(ctx, c.w, DType::F64);
    Tensor b = Tensor::empty(ctx, {c.w[0]}, DType::F64);
    if (c.w.size() == 3) init_conv1d(ctx, w, b);
    else init_linear(ctx, w, b);
    const double bound = 1 / std::sqrt(static_cast<double>(fan_in_of(c.w)));
    check_uniform(w, bound, c.what);
    if (b.numel() >= 50) check_uniform(b, bound, c.what);
    for (double x : b.to_vector<double>()) CHECK(std::abs(x) <= bound);
  }
  // kaiming_uniform_(a=sqrt(5)) is that same bound (torch's expression, evaluated in double).
  Tensor w = Tensor::empty(ctx, {4, 6, 5});
  CHECK(kaiming_uniform_(w, std::sqrt(5.0), ctx.rng()) == doctest::Approx(1 / std::sqrt(30.0)).epsilon(1e-14));
  // He-uniform with a = 0: bound sqrt(6/fan_in).
  CHECK(kaiming_uniform_(w, 0.0, ctx.rng()) == doctest::Approx(std::sqrt(6.0 / 30)).epsilon(1e-14));
  Tensor bad = Tensor::empty(ctx, {5});
  Tensor none;
  CHECK_THROWS_AS(init_conv1d(ctx, bad, none), Error);
  Tensor wrong_bias = Tensor::empty(ctx, {3});
  Tensor cw = Tensor::empty(ctx, {4, 2, 3});
  CHECK_THROWS_AS(init_conv1d(ctx, cw, wrong_bias), Error);
  Tensor lw = Tensor::empty(ctx, {2, 3});
  init_linear(ctx, lw, none);  // no bias: fine
  for (double x : lw.to_vector<double>()) CHECK(std::abs(x) <= 1 / std::sqrt(3.0));
}

TEST_CASE("draws come from the Context's Rng: same seed, same values; float32 too") {
  auto draw = [](uint64_t seed) {
    Context ctx(1, seed);
    Tensor w = Tensor::empty(ctx, {16, 4, 21});
    Tensor b = Tensor::empty(ctx, {16});
    init_conv1d(ctx, w, b);
    auto v = w.to_vector<float>();
    auto bv = b.to_vector<float>();
    v.insert(v.end(), bv.begin(), bv.end());
    return v;
  };
  CHECK(draw(7) == draw(7));
  CHECK(draw(7) != draw(8));
  Context ctx(1, 9);
  Tensor w = Tensor::empty(ctx, {32, 32, 15});
  Tensor b = Tensor::empty(ctx, {32});
  init_conv1d(ctx, w, b);
  CHECK(w.dtype() == DType::F32);
  check_uniform(w, 1 / std::sqrt(480.0), "float32 conv");
}

TEST_CASE("BatchNorm: weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0") {
  Context ctx(1, 0);
  Tensor w = Tensor::uniform(ctx, {7}, -1, 1), b = Tensor::uniform(ctx, {7}, -1, 1);
  Tensor rm = Tensor::uniform(ctx, {7}, -1, 1), rv = Tensor::uniform(ctx, {7}, -1, 1);
  Tensor nbt = Tensor::full(ctx, {}, 5.0);
  init_batchnorm(w, b, rm, rv, nbt);
  for (int i = 0; i < 7; ++i) {
    CHECK(w.to_vector<float>()[i] == 1.0f);
    CHECK(b.to_vector<float>()[i] == 0.0f);
    CHECK(rm.to_vector<float>()[i] == 0.0f);
    CHECK(rv.to_vector<float>()[i] == 1.0f);
  }
  CHECK(nbt.item() == 0.0);
  Tensor none;
  init_batchnorm(w, b, none, none, none);  // affine only (no running stats)
}
}
