// Reductions & broadcasting: forward vs loops, gradients and gradients of gradients.
// Run: build/tests/lowpass_tests -ts=reduce
#include <doctest/doctest.h>

#include <algorithm>

#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;

TEST_SUITE("reduce") {
TEST_CASE("sum and mean over axes") {
  Context ctx(2, 5);
  Tensor x = rand64(ctx, {2, 3, 4});
  auto xv = x.to_vector<double>();
  auto s02 = sum(x, {0, 2}).to_vector<double>();
  REQUIRE(s02.size() == 3);
  for (int c = 0; c < 3; ++c) {
    double r = 0;
    for (int b = 0; b < 2; ++b)
      for (int l = 0; l < 4; ++l) r += xv[(b * 3 + c) * 4 + l];
    CHECK(s02[c] == doctest::Approx(r).epsilon(1e-12));
  }
  CHECK(mean(x, {-1}, true).shape() == Shape{2, 3, 1});
  CHECK(sum_all(x).item() == doctest::Approx([&] { double s = 0; for (double v : xv) s += v; return s; }()));
  for (std::vector<int64_t> axes : {std::vector<int64_t>{0}, {1}, {2}, {0, 2}, {1, 2}, {0, 1, 2}}) {
    Fn f = [axes](auto& v) { return mul(mean(v[0], axes, true), sum(square(v[0]), axes, true)); };
    check_grad(ctx, f, {x});
    check_gradgrad(ctx, f, {x});
  }
}

TEST_CASE("broadcast_to and sum_to are adjoint") {
  Context ctx(2, 6);
  Tensor a = rand64(ctx, {3, 1});
  Fn f = [](auto& v) { return square(broadcast_to(v[0], {2, 3, 5})); };
  check_grad(ctx, f, {a});
  check_gradgrad(ctx, f, {a});
  Tensor b = rand64(ctx, {2, 3, 5});
  Fn g = [](auto& v) { return square(sum_to(v[0], {3, 1})); };
  check_grad(ctx, g, {b});
  check_gradgrad(ctx, g, {b});
}
TEST_CASE("sum and mean without keepdim, on axes of length 1, negative and repeated axes, and sum_all/mean_all") {
  Context ctx(2, 7);
  struct Case { Shape s; std::vector<int64_t> axes; };
  for (const Case& c : std::vector<Case>{{{1, 5, 1}, {0}}, {{1, 5, 1}, {2}}, {{1, 5, 1}, {0, 2}}, {{3, 1, 7}, {-1}},
                                         {{3, 1, 7}, {1, -3}}, {{2, 3, 4}, {2, 2}}, {{1}, {0}}, {{4, 1}, {}}}) {
    INFO("shape ", shape_str(c.s), " axes ", c.axes.size());
    Tensor x = rand64(ctx, c.s);
    const auto xv = x.to_vector<double>();
    // forward against a loop: the flat index with the summed axes dropped
    std::vector<int64_t> ax;
    for (int64_t a : c.axes) {
      const int64_t k = a < 0 ? a + static_cast<int64_t>(c.s.size()) : a;
      if (std::find(ax.begin(), ax.end(), k) == ax.end()) ax.push_back(k);
    }
    Shape kept;
    int64_t n = 1;
    for (int64_t d = 0; d < static_cast<int64_t>(c.s.size()); ++d) {
      if (std::find(ax.begin(), ax.end(), d) == ax.end()) kept.push_back(c.s[static_cast<size_t>(d)]);
      else n *= c.s[static_cast<size_t>(d)];
    }
    std::vector<double> want(static_cast<size_t>(shape_numel(kept)), 0.0);
    for (int64_t f = 0; f < x.numel(); ++f) {
      int64_t rem = f, out = 0, stride = 1;
      for (int64_t d = static_cast<int64_t>(c.s.size()) - 1; d >= 0; --d) {
        const int64_t i = rem % c.s[static_cast<size_t>(d)];
        rem /= c.s[static_cast<size_t>(d)];
        if (std::find(ax.begin(), ax.end(), d) != ax.end()) continue;
        out += i * stride;
        stride *= c.s[static_cast<size_t>(d)];
      }
      want[static_cast<size_t>(out)] += xv[static_cast<size_t>(f)];
    }
    Tensor y = sum(x, c.axes), m = mean(x, c.axes);
    REQUIRE(y.shape() == kept);
    const auto yv = y.to_vector<double>(), mv = m.to_vector<double>();
    for (size_t i = 0; i < want.size(); ++i) {
      CHECK(yv[i] == doctest::Approx(want[i]).epsilon(1e-13));
      CHECK(mv[i] == doctest::Approx(want[i] / static_cast<double>(n)).epsilon(1e-13));
    }
    const auto axes = c.axes;
    Fn f = [axes](auto& v) { return mul(sum(v[0], axes), mean(square(v[0]), axes)); };
    check_grad(ctx, f, {x});
    check_gradgrad(ctx, f, {x});
  }
  Tensor x = rand64(ctx, {2, 1, 3});
  Fn f = [](auto& v) { return mul(sum_all(v[0]), mean_all(mul(v[0], v[0]))); };
  CHECK(sum_all(x).shape() == Shape{});
  check_grad(ctx, f, {x});
  check_gradgrad(ctx, f, {x});
  // broadcast_to with new leading axes and a middle axis, sum_to back to a shape with a leading 1
  Tensor a = rand64(ctx, {1, 4, 1});
  Fn g = [](auto& v) { return square(broadcast_to(v[0], {2, 3, 4, 5})); };
  check_grad(ctx, g, {a});
  check_gradgrad(ctx, g, {a});
  Tensor b = rand64(ctx, {3, 4, 5});
  Fn h = [](auto& v) { return square(sum_to(v[0], {1, 4, 1})); };
  check_grad(ctx, h, {b});
  check_gradgrad(ctx, h, {b});
}
}
