// Shape ops (permute/transpose, flip, slice/pad, concat, index_select/index_add, center_crop):
// forward vs plain index loops; gradient and gradient-of-gradient vs finite differences (float64).
// Run: build/tests/lowpass_tests -ts=shape
#include <doctest/doctest.h>

#include <numeric>

#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;

namespace {
// Multi-index <-> flat offset for a contiguous shape.
std::vector<int64_t> unflat(const Shape& s, int64_t f) {
  std::vector<int64_t> idx(s.size());
  for (int64_t d = static_cast<int64_t>(s.size()) - 1; d >= 0; --d) {
    idx[d] = f % s[d];
    f /= s[d];
  }
  return idx;
}
int64_t flat(const Shape& s, const std::vector<int64_t>& idx) {
  int64_t f = 0;
  for (size_t d = 0; d < s.size(); ++d) f = f * s[d] + idx[d];
  return f;
}
// Nonlinear wrapper so that the gradient of the gradient is not trivially zero.
Tensor sq(const Tensor& t) { return mul(t, t); }
}  // namespace

TEST_SUITE("shape") {
TEST_CASE("permute and transpose") {
  Context ctx(2, 11);
  struct Case { Shape s; std::vector<int64_t> perm; };
  std::vector<Case> cases = {{{2, 3, 5}, {0, 2, 1}}, {{1, 7, 1}, {2, 0, 1}}, {{3, 4, 5, 2}, {3, 1, 0, 2}},
                             {{4, 1}, {1, 0}},        {{5}, {0}},          {{40, 37}, {1, 0}},
                             {{2, 33, 70}, {0, 2, 1}}, {{3, 2, 35, 34}, {2, 3, 0, 1}}};
  for (auto& c : cases) {
    INFO("shape ", shape_str(c.s));
    Tensor x = rand64(ctx, c.s);
    Tensor y = permute(x, c.perm);
    auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
    Shape os(c.s.size());
    for (size_t i = 0; i < os.size(); ++i) os[i] = c.s[c.perm[i]];
    REQUIRE(y.shape() == os);
    for (int64_t f = 0; f < y.numel(); ++f) {
      auto oi = unflat(os, f);
      std::vector<int64_t> ii(os.size());
      for (size_t i = 0; i < os.size(); ++i) ii[c.perm[i]] = oi[i];
      CHECK(yv[f] == xv[flat(c.s, ii)]);
    }
    // Float32 path too (tiled kernel).
    Tensor x32 = x.to(DType::F32);
    auto y32 = permute(x32, c.perm).to_vector<double>();
    for (int64_t f = 0; f < y.numel(); ++f) CHECK(y32[f] == doctest::Approx(yv[f]).epsilon(1e-6));
    if (x.numel() < 300) {
      auto perm = c.perm;
      check_grad(ctx, [perm](auto& v) { return permute(v[0], perm); }, {x});
      check_gradgrad(ctx, [perm](auto& v) { return sq(permute(v[0], perm)); }, {x});
    }
  }
  Tensor x = rand64(ctx, {2, 3, 4});
  Tensor t = transpose(x, 1, -1);
  CHECK(t.shape() == Shape{2, 4, 3});
  auto xv = x.to_vector<double>(), tv = t.to_vector<double>();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t l = 0; l < 4; ++l) CHECK(tv[(b * 4 + l) * 3 + c] == xv[(b * 3 + c) * 4 + l]);
  CHECK_THROWS_AS(permute(x, {0, 0, 1}), Error);
  CHECK_THROWS_AS(permute(x, {0, 1}), Error);
  CHECK_THROWS_AS(transpose(x, 0, 3), Error);
}

TEST_CASE("flip") {
  Context ctx(2, 12);
  for (auto& [s_, axes_] : std::vector<std::pair<Shape, std::vector<int64_t>>>{
           {{2, 4, 7}, {1, 2}}, {{1, 1, 1}, {2}}, {{3, 5}, {0}}, {{2, 3, 5}, {-1}}, {{6}, {0}}}) {
    auto& s = s_; auto& axes = axes_;  // named copies: clang < 16 cannot capture structured bindings
    INFO("shape ", shape_str(s));
    Tensor x = rand64(ctx, s);
    Tensor y = flip(x, axes);
    auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
    for (int64_t f = 0; f < x.numel(); ++f) {
      auto idx = unflat(s, f);
      for (int64_t a : axes) {
        int64_t d = a < 0 ? a + static_cast<int64_t>(s.size()) : a;
        idx[d] = s[d] - 1 - idx[d];
      }
      CHECK(yv[f] == xv[flat(s, idx)]);
    }
    auto ax = axes;
    check_grad(ctx, [ax](auto& v) { return flip(v[0], ax); }, {x});
    check_gradgrad(ctx, [ax](auto& v) { return sq(flip(v[0], ax)); }, {x});
  }
}

TEST_CASE("slice, pad and center_crop") {
  Context ctx(2, 13);
  Tensor x = rand64(ctx, {2, 3, 9});
  auto xv = x.to_vector<double>();
  // slice along each axis
  for (int64_t d = 0; d < 3; ++d) {
    int64_t n = x.shape()[d];
    for (auto [st_, len_] : std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {n - 1, 1}, {1, n - 1}, {0, n}}) {
      auto st = st_; auto len = len_;  // named copies: clang < 16 cannot capture structured bindings
      INFO("dim ", d, " start ", st, " len ", len);
      Tensor y = slice(x, d, st, len);
      auto yv = y.to_vector<double>();
      for (int64_t f = 0; f < y.numel(); ++f) {
        auto idx = unflat(y.shape(), f);
        idx[d] += st;
        CHECK(yv[f] == xv[flat(x.shape(), idx)]);
      }
      check_grad(ctx, [d, st, len](auto& v) { return slice(v[0], d, st, len); }, {x});
      check_gradgrad(ctx, [d, st, len](auto& v) { return sq(slice(v[0], d, st, len)); }, {x});
    }
  }
  // pad
  for (auto [d_, b_, a_] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{2, 3, 0}, {2, 0, 4}, {1, 2, 5}, {0, 1, 1}}) {
    auto d = d_; auto b = b_; auto a = a_;  // named copies: clang < 16 cannot capture structured bindings
    INFO("pad dim ", d, " ", b, " ", a);
    Tensor y = pad(x, d, b, a);
    auto yv = y.to_vector<double>();
    CHECK(y.shape()[d] == x.shape()[d] + a + b);
    for (int64_t f = 0; f < y.numel(); ++f) {
      auto idx = unflat(y.shape(), f);
      idx[d] -= b;
      bool in = idx[d] >= 0 && idx[d] < x.shape()[d];
      CHECK(yv[f] == (in ? xv[flat(x.shape(), idx)] : 0.0));
    }
    check_grad(ctx, [d, b, a](auto& v) { return pad(v[0], d, b, a); }, {x});
    check_gradgrad(ctx, [d, b, a](auto& v) { return sq(pad(v[0], d, b, a)); }, {x});
  }
  // length-1 tensors
  Tensor one = rand64(ctx, {1, 1, 1});
  CHECK(pad(one, 2, 2, 3).to_vector<double>() == std::vector<double>{0, 0, one.item(), 0, 0, 0});
  check_grad(ctx, [](auto& v) { return pad(v[0], 2, 2, 3); }, {one});
  // center_crop: start = (n - length) / 2
  Tensor c = center_crop(x, 2, 4);
  auto cv = c.to_vector<double>();
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t l = 0; l < 4; ++l) CHECK(cv[r * 4 + l] == xv[r * 9 + 2 + l]);
  CHECK(center_crop(x, -1, 8).to_vector<double>() == slice(x, 2, 0, 8).to_vector<double>());
  check_grad(ctx, [](auto& v) { return center_crop(v[0], 2, 5); }, {x});
  check_gradgrad(ctx, [](auto& v) { return sq(center_crop(v[0], 2, 5)); }, {x});
  CHECK_THROWS_AS(slice(x, 2, 5, 5), Error);
  CHECK_THROWS_AS(slice(x, 2, -1, 2), Error);
  CHECK_THROWS_AS(pad(x, 2, -1, 0), Error);
  CHECK_THROWS_AS(center_crop(x, 2, 10), Error);
}

TEST_CASE("concat") {
  Context ctx(2, 14);
  for (int64_t d = 0; d < 3; ++d) {
    Shape s0 = {2, 3, 5}, s1 = s0, s2 = s0;
    s1[d] = 1;
    s2[d] = 4;
    Tensor a = rand64(ctx, s0), b = rand64(ctx, s1), c = rand64(ctx, s2);
    Tensor y = concat({a, b, c}, d);
    CHECK(y.shape()[d] == s0[d] + 1 + 4);
    auto yv = y.to_vector<double>();
    std::vector<Tensor> parts = {a, b, c};
    for (int64_t f = 0; f < y.numel(); ++f) {
      auto idx = unflat(y.shape(), f);
      size_t k = 0;
      while (idx[d] >= parts[k].shape()[d]) idx[d] -= parts[k++].shape()[d];
      CHECK(yv[f] == parts[k].to_vector<double>()[flat(parts[k].shape(), idx)]);
    }
    INFO("dim ", d);
    check_grad(ctx, [d](auto& v) { return concat({v[0], v[1], v[2]}, d); }, {a, b, c});
    check_gradgrad(ctx, [d](auto& v) { return sq(concat({v[0], v[1], v[2]}, d)); }, {a, b, c});
  }
  Tensor a = rand64(ctx, {2, 3}), b = rand64(ctx, {3, 3});
  CHECK_THROWS_AS(concat({a, b}, 1), Error);
  CHECK_THROWS_AS(concat({}, 0), Error);
  CHECK_THROWS_AS(concat({a, a.to(DType::F32)}, 0), Error);
}

TEST_CASE("index_select and index_add") {
  Context ctx(2, 15);
  Tensor x = rand64(ctx, {2, 5, 3});
  auto xv = x.to_vector<double>();
  std::vector<int64_t> idx = {4, 0, 0, 2, 4, 4, 1};
  Tensor y = index_select(x, 1, idx);
  CHECK(y.shape() == Shape{2, 7, 3});
  auto yv = y.to_vector<double>();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t j = 0; j < 7; ++j)
      for (int64_t i = 0; i < 3; ++i) CHECK(yv[(b * 7 + j) * 3 + i] == xv[(b * 5 + idx[j]) * 3 + i]);
  check_grad(ctx, [idx](auto& v) { return index_select(v[0], 1, idx); }, {x});
  check_gradgrad(ctx, [idx](auto& v) { return sq(index_select(v[0], 1, idx)); }, {x});
  // index_add: repeated indices accumulate; untouched rows are 0
  Tensor g = rand64(ctx, {2, 7, 3});
  auto gv = g.to_vector<double>();
  Tensor z = index_add(g, 1, idx, 6);
  auto zv = z.to_vector<double>();
  std::vector<double> ref(2 * 6 * 3, 0.0);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t j = 0; j < 7; ++j)
      for (int64_t i = 0; i < 3; ++i) ref[(b * 6 + idx[j]) * 3 + i] += gv[(b * 7 + j) * 3 + i];
  for (size_t i = 0; i < ref.size(); ++i) CHECK(zv[i] == doctest::Approx(ref[i]).epsilon(1e-14));
  check_grad(ctx, [idx](auto& v) { return index_add(v[0], 1, idx, 6); }, {g});
  check_gradgrad(ctx, [idx](auto& v) { return sq(index_add(v[0], 1, idx, 6)); }, {g});
  // last axis, empty index
  Tensor e = index_select(x, -1, {});
  CHECK(e.shape() == Shape{2, 5, 0});
  CHECK_THROWS_AS(index_select(x, 1, {5}), Error);
  CHECK_THROWS_AS(index_add(g, 1, idx, 4), Error);
  CHECK_THROWS_AS(index_add(g, 1, {0, 1}, 6), Error);
}
TEST_CASE("reshape (with -1) and transpose: gradients and gradients of gradients") {
  Context ctx(2, 16);
  Tensor x = rand64(ctx, {2, 3, 5});
  for (Shape to : {Shape{6, 5}, Shape{5, -1}, Shape{30}, Shape{1, 30, 1}, Shape{-1, 2, 1}}) {
    INFO("to ", shape_str(to));
    Tensor y = reshape(x, to);
    CHECK(y.numel() == 30);
    CHECK(y.to_vector<double>() == x.to_vector<double>());  // a view: same values in the same order
    check_grad(ctx, [to](auto& v) { return reshape(v[0], to); }, {x});
    check_gradgrad(ctx, [to](auto& v) { return sq(reshape(v[0], to)); }, {x});
  }
  for (auto [d0_, d1_] : std::vector<std::pair<int64_t, int64_t>>{{0, 2}, {1, -1}, {1, 1}}) {
    auto d0 = d0_; auto d1 = d1_;  // named copies: clang < 16 cannot capture structured bindings
    INFO("transpose ", d0, " ", d1);
    check_grad(ctx, [d0, d1](auto& v) { return transpose(v[0], d0, d1); }, {x});
    check_gradgrad(ctx, [d0, d1](auto& v) { return sq(transpose(v[0], d0, d1)); }, {x});
  }
  CHECK_THROWS_AS(reshape(x, {7, -1}), Error);
  CHECK_THROWS_AS(reshape(x, {-1, -1}), Error);
}
}
