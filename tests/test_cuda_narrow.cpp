// The tiled correlation for layers with few outputs per group (kernels/cuda/conv_narrow.h): every block run on the
// host phase by phase — all threads' loads, then all threads' computes, per channel chunk, with the shared tiles
// poisoned (NaN) before each chunk so an element no thread loaded shows — against the CPU conv (every machine), and
// the CUDA kernel against the CPU on a GPU (skip without one; LOWPASS_CUDA_CONV=tiled's dispatch runs it in
// tests/test_cuda_tiled.cpp).
// Run: build-dev/tests/lowpass_tests -ts=cuda -tc='*narrow*'
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/conv1d.h"
#include "kernels/cuda/conv_narrow.h"
#include "tests/conv_geo.h"
#include "tests/cuda_test.h"
#include "tests/gradcheck.h"
#ifdef LOWPASS_HAVE_CUDA
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/runtime.h"
#endif

using namespace lowpass;
using namespace lowpass::test;

namespace {

// BPNet's profile head (64 -> 2, K 75, 'same' and 'valid': 7 channel chunks of 10), a first conv's input grad
// (64 -> 4, K 21, p = d(K-1) - pad), and every register tile (O 1, 3, 5, 8, 9, 16), several position tiles with a
// partial one, groups, dilation, crops (negative padding), a dilation that leaves one channel per chunk, B = 1, one
// output position.
const ConvGeo kGeos[] = {
    {2, 1, 64, 2, 600, 75, 1, 37, 37},  {2, 1, 64, 2, 300, 75, 1, 0, 0},   {3, 1, 64, 4, 290, 21, 1, 10, 10},
    {2, 1, 7, 1, 40, 3, 1, 1, 1},       {1, 1, 5, 3, 513, 5, 2, 4, 4},     {2, 2, 6, 5, 100, 7, 3, 0, 0},
    {1, 1, 9, 8, 260, 4, 1, -2, -3},    {2, 1, 3, 9, 70, 9, 1, 4, 4},      {1, 3, 4, 16, 50, 3, 5, 5, 5},
    {1, 1, 3, 2, 1000, 9, 300, 1200, 1200}, {1, 1, 2, 2, 11, 11, 1, 0, 0},
};

// One thread's sums, OM outputs × kNarrowP positions.
template <int OM>
using Acc = double[OM][cuda::kNarrowP];

template <int OM, typename T>
std::vector<double> run_host_om(const Tensor& x, const Tensor& w, const Tensor& bias, const cpu::CorrGeom& g) {
  std::vector<T> y(static_cast<size_t>(g.B * g.G * g.O * g.Lout), std::numeric_limits<T>::quiet_NaN());
  std::vector<double> ws(static_cast<size_t>(cuda::narrow_ws_doubles(g)));
  std::vector<double> xs(static_cast<size_t>(cuda::narrow_cc(g) * cuda::narrow_xw(g)));
  std::vector<Acc<OM>> acc(cuda::kNarrowThreads);
  const int64_t cc = cuda::narrow_cc(g);
  for (int64_t by = 0; by < g.B * g.G; ++by)
    for (int64_t bx = 0; bx < cuda::narrow_grid_x(g); ++bx) {
      const cuda::NarrowBlock blk = cuda::narrow_block(g, bx, by);
      for (auto& a : acc)
        for (auto& row : a)
          for (double& v : row) v = 0;
      for (int64_t c0 = 0; c0 < g.C; c0 += cc) {
        std::fill(ws.begin(), ws.end(), std::numeric_limits<double>::quiet_NaN());
        std::fill(xs.begin(), xs.end(), std::numeric_limits<double>::quiet_NaN());
        for (int tid = 0; tid < cuda::kNarrowThreads; ++tid)
          cuda::narrow_load<OM, T>(x.data<T>(), w.data<T>(), ws.data(), xs.data(), g, blk, c0, tid);
        for (int tid = 0; tid < cuda::kNarrowThreads; ++tid)
          cuda::narrow_compute<OM>(ws.data(), xs.data(), g, std::min(cc, g.C - c0), tid, acc[size_t(tid)]);
      }
      for (int tid = 0; tid < cuda::kNarrowThreads; ++tid)
        cuda::narrow_store<OM, T>(y.data(), bias.defined() ? bias.data<T>() : nullptr, g, blk, tid, acc[size_t(tid)]);
    }
  return std::vector<double>(y.begin(), y.end());
}

template <typename T>
std::vector<double> run_host(const Tensor& x, const Tensor& w, const Tensor& bias, const cpu::CorrGeom& g) {
  return cuda::dispatch_narrow_om(g, [&]<int OM>() { return run_host_om<OM, T>(x, w, bias, g); });
}

template <typename T>
void check_host(Context& ctx, const cpu::CorrGeom& g, DType t) {
  Tensor x = Tensor::uniform(ctx, {g.B, g.G * g.C, g.Lin}, -1, 1, t);
  Tensor w = Tensor::uniform(ctx, {g.G * g.O, g.C, g.K}, -1, 1, t);
  Tensor bias = Tensor::uniform(ctx, {g.G * g.O}, -1, 1, t);
  const double tol = t == DType::F32 ? 1e-5 : 1e-12;
  for (bool with_bias : {true, false}) {
    Tensor ref = Tensor::empty(ctx, {g.B, g.G * g.O, g.Lout}, t);
    cpu::conv1d_corr(x, w, with_bias ? bias : Tensor(), ref, g);
    const std::vector<double> got = run_host<T>(x, w, with_bias ? bias : Tensor(), g);
    bool all_written = true;
    for (double v : got) all_written = all_written && std::isfinite(v);
    CHECK(all_written);  // every output stored once, from tiles with no unloaded (NaN) element
    CHECK(rel_err(got, ref.to_vector<double>()) <= tol);
  }
}

// The weight-grad kernel on the host: every block of every split, its chunks' loads by all threads (tiles
// NaN-filled first), then all computes, then the stores into the partials; then the in-order sum of the splits.
template <int OM, typename T>
std::vector<double> run_wgrad_host_om(const Tensor& x, const Tensor& dy, const cpu::CorrGeom& g, int64_t S) {
  constexpr int R = cuda::narrow_wr<OM>();
  const int64_t n = g.G * g.O * g.C * g.K;
  std::vector<double> part(static_cast<size_t>(S * n), std::numeric_limits<double>::quiet_NaN());
  std::vector<double> dys(static_cast<size_t>(cuda::narrow_wdys_doubles(g)));
  std::vector<double> xs(static_cast<size_t>(cuda::narrow_wcc(g) * cuda::narrow_wxw(g)));
  std::vector<std::array<std::array<double, OM>, R>> acc(cuda::kNarrowThreads);
  auto acc_of = [&](int tid) -> double(&)[R][OM] { return *reinterpret_cast<double(*)[R][OM]>(acc[size_t(tid)].data()); };
  const int64_t chunks = g.B * cuda::narrow_wchunks_per_item(g);
  for (int64_t bz = 0; bz < g.G * S; ++bz)
    for (int64_t bx = 0; bx < cuda::narrow_wcblocks(g); ++bx) {
      const cuda::NarrowWBlock blk = cuda::narrow_wblock(g, S, bx, bz);
      for (auto& a : acc)
        for (auto& row : a) row.fill(0.0);
      for (int64_t q = blk.s; q < chunks; q += S) {
        std::fill(dys.begin(), dys.end(), std::numeric_limits<double>::quiet_NaN());
        std::fill(xs.begin(), xs.end(), std::numeric_limits<double>::quiet_NaN());
        for (int tid = 0; tid < cuda::kNarrowThreads; ++tid)
          cuda::narrow_wload<OM, T>(x.data<T>(), dy.data<T>(), dys.data(), xs.data(), g, blk, q, tid);
        for (int tid = 0; tid < cuda::kNarrowThreads; ++tid)
          cuda::narrow_wcompute<OM>(dys.data(), xs.data(), g, tid, acc_of(tid));
      }
      for (int tid = 0; tid < cuda::kNarrowThreads; ++tid) cuda::narrow_wstore<OM>(part.data(), g, blk, tid, acc_of(tid));
    }
  std::vector<double> dw(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    double v = 0;
    for (int64_t s = 0; s < S; ++s) v += part[static_cast<size_t>(s * n + e)];
    dw[static_cast<size_t>(e)] = static_cast<double>(static_cast<T>(v));
  }
  return dw;
}

template <typename T>
std::vector<double> run_wgrad_host(const Tensor& x, const Tensor& dy, const cpu::CorrGeom& g, int64_t S) {
  return cuda::dispatch_narrow_om(g, [&]<int OM>() { return run_wgrad_host_om<OM, T>(x, dy, g, S); });
}

template <typename T>
void check_wgrad_host(Context& ctx, const cpu::CorrGeom& g, DType t) {
  Tensor x = Tensor::uniform(ctx, {g.B, g.G * g.C, g.Lin}, -1, 1, t);
  Tensor dy = Tensor::uniform(ctx, {g.B, g.G * g.O, g.Lout}, -1, 1, t);
  Tensor ref = Tensor::empty(ctx, {g.G * g.O, g.C, g.K}, t);
  cpu::conv1d_corr_wgrad(x, dy, ref, g);
  const double tol = t == DType::F32 ? 1e-5 : 1e-12;
  const int64_t chunks = g.B * cuda::narrow_wchunks_per_item(g);
  for (int64_t S : {int64_t{1}, int64_t{3}, chunks}) {
    INFO("splits ", S);
    const std::vector<double> got = run_wgrad_host<T>(x, dy, g, S);
    bool all_written = true;
    for (double v : got) all_written = all_written && std::isfinite(v);
    CHECK(all_written);  // every partial written, from tiles with no unloaded (NaN) element
    CHECK(rel_err(got, ref.to_vector<double>()) <= tol);
  }
}

}  // namespace

TEST_SUITE("cuda") {
TEST_CASE("narrow tiled conv1d weight grad equals the CPU's over every block and split, phase by phase (host)") {
  Context ctx(2, 133);
  int taken = 0;
  for (const ConvGeo& q : kGeos) {
    INFO(geo_str(q));
    const cpu::CorrGeom g = corr_geom(q);
    if (!cuda::narrow_wgrad_fits(g)) {  // the dilation of 300: its x windows exceed the budget
      CHECK(g.d == 300);
      continue;
    }
    ++taken;
    check_wgrad_host<float>(ctx, g, DType::F32);
    check_wgrad_host<double>(ctx, g, DType::F64);
  }
  CHECK(taken == 10);
  // Column blocks: the head's 6 channels × 75 taps of 512 columns; a first conv's input grad 12 × 21 of 256.
  CHECK(cuda::narrow_wcc({128, 1, 64, 2, 1346, 1346, 75, 1, 37}) == 6);
  CHECK(cuda::narrow_wcc({128, 1, 64, 4, 1346, 1346, 21, 1, 10}) == 12);
  CHECK(cuda::narrow_wgrad_fits({128, 1, 64, 2, 1346, 1346, 75, 1, 37}));
  CHECK_FALSE(cuda::narrow_wgrad_fits({2, 1, 64, 17, 100, 100, 3, 1, 1}));   // 17 outputs
  CHECK_FALSE(cuda::narrow_wgrad_fits({2, 1, 4, 16, 300, 100, 201, 1, 0}));  // K over 128 columns at 16 outputs
}

TEST_CASE("narrow tiled conv1d (few outputs per group) equals the CPU conv over every block, phase by phase (host)") {
  Context ctx(2, 131);
  for (const ConvGeo& q : kGeos) {
    INFO(geo_str(q));
    const cpu::CorrGeom g = corr_geom(q);
    REQUIRE(g.Lout >= 1);
    REQUIRE(cuda::narrow_fits(g));
    check_host<float>(ctx, g, DType::F32);
    check_host<double>(ctx, g, DType::F64);
  }
  // Tiles and chunks: the head stages 10 channels per chunk; a dilation of 300 leaves room for one.
  CHECK(cuda::narrow_cc({2, 1, 64, 2, 1000, 1000, 75, 1, 37}) == 10);
  CHECK(cuda::narrow_cc({1, 1, 3, 2, 1000, 1000, 9, 300, 1200}) == 1);
  CHECK(cuda::narrow_om({1, 1, 64, 3, 10, 10, 3, 1, 1}) == 4);
  // What it declines: more than 16 outputs, a window wider than the budget, batch · groups over 65535.
  CHECK_FALSE(cuda::narrow_fits({2, 1, 64, 17, 100, 100, 3, 1, 1}));
  CHECK_FALSE(cuda::narrow_fits({1, 1, 64, 2, 6000, 820, 75, 70, 0}));
  CHECK_FALSE(cuda::narrow_fits({65536, 1, 4, 2, 10, 10, 3, 1, 1}));
  CHECK(cuda::narrow_fits({128, 1, 64, 2, 1346, 1346, 75, 1, 37}));
}

#ifdef LOWPASS_HAVE_CUDA
TEST_CASE("narrow tiled conv1d kernels on the GPU match the CPU (float32 1e-5, float64 1e-12)") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 132);
  for (DType t : {DType::F32, DType::F64})
    for (const ConvGeo& q : kGeos) {
      const cpu::CorrGeom g = corr_geom(q);
      INFO(std::string(dtype_name(t)), " ", geo_str(q));
      const double tol = t == DType::F32 ? 1e-5 : 1e-12;
      Tensor x = Tensor::uniform(ctx, {g.B, g.G * g.C, g.Lin}, -1, 1, t);
      Tensor w = Tensor::uniform(ctx, {g.G * g.O, g.C, g.K}, -1, 1, t);
      Tensor bias = Tensor::uniform(ctx, {g.G * g.O}, -1, 1, t);
      Tensor ref = Tensor::empty(ctx, {g.B, g.G * g.O, g.Lout}, t);
      cpu::conv1d_corr(x, w, bias, ref, g);
      Tensor got = gpu_out(ctx, ref.shape(), t);
      CHECK(cuda::conv1d_corr_narrow(x.to(kGpu), w.to(kGpu), bias.to(kGpu), got, g));
      cuda::synchronize(0);
      CHECK(rel(got, ref) <= tol);
      CHECK(canaries_intact(got));
      Tensor dy = Tensor::uniform(ctx, ref.shape(), -1, 1, t), dwr = Tensor::empty(ctx, w.shape(), t);
      cpu::conv1d_corr_wgrad(x, dy, dwr, g);
      Tensor dwg = gpu_out(ctx, w.shape(), t);
      if (cuda::conv1d_corr_wgrad_narrow(x.to(kGpu), dy.to(kGpu), dwg, g)) {
        cuda::synchronize(0);
        CHECK(rel(dwg, dwr) <= tol);
        CHECK(canaries_intact(dwg));
      } else {
        CHECK_FALSE(cuda::narrow_wgrad_fits(g));
      }
    }
  // A geometry it declines writes nothing and says so.
  const cpu::CorrGeom g{1, 1, 4, 17, 20, 18, 3, 1, 0};
  Tensor y = gpu_out(ctx, {1, 17, 18}, DType::F32);
  CHECK_FALSE(cuda::conv1d_corr_narrow(Tensor::uniform(ctx, {1, 4, 20}, -1, 1).to(kGpu),
                                       Tensor::uniform(ctx, {17, 4, 3}, -1, 1).to(kGpu), Tensor(), y, g));
  CHECK(canaries_intact(y));
}
#endif
}
