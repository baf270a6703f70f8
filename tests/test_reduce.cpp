// Reductions & broadcasting: forward vs loops, gradients and gradients of gradients.
// Run: build/tests/lowpass_tests -ts=reduce
#include <doctest/doctest.h>

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
}
