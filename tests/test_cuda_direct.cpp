// Direct conv1d kernels for few output channels (kernels/cuda/conv_direct.h): the per-output arithmetic and each
// thread's share of a weight-grad block, run here on the host over the whole grid against the CPU conv (every
// machine), and the CUDA kernels against the CPU on a GPU (skip without one).
// Run: build-dev/tests/lowpass_tests -ts=cuda -tc='*direct*'
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/conv1d.h"
#include "kernels/cuda/conv_direct.h"
#include "tests/conv_geo.h"
#include "tests/cuda_test.h"
#include "tests/gradcheck.h"
#ifdef LOWPASS_HAVE_CUDA
#include "kernels/cuda/conv1d.h"
#endif

using namespace lowpass;
using namespace lowpass::test;

namespace {

// Layers with few outputs or inputs per group, as the models have them and at awkward sizes: BPNet's profile head
// (64 -> 2, K 75), the input grad of a first conv on DNA (64 -> 4, K 21: p = d(K-1) - pad), the first convs
// themselves (4 -> 64 K 21 'same', 4 -> 24 K 15 'valid'), crops (negative p), dilation larger than the input,
// groups, B = 1, length 1, positions wrapping across batch items in the weight grad's threads.
const ConvGeo kGeos[] = {
    {2, 1, 64, 2, 180, 75, 1, 37, 37},  {3, 1, 64, 4, 61, 21, 1, 10, 10}, {1, 1, 1, 1, 1, 1, 1, 0, 0},
    {2, 1, 5, 3, 17, 3, 4, 4, 4},       {2, 2, 3, 2, 29, 5, 2, 0, 0},     {1, 3, 2, 16, 40, 7, 3, 9, 9},
    {4, 1, 7, 1, 9, 3, 5, 5, 5},        {2, 1, 6, 5, 50, 4, 1, 0, 3},     {3, 1, 4, 2, 33, 9, 1, -2, -3},
    {2, 1, 64, 2, 200, 33, 2, 0, 0},   {3, 1, 4, 64, 70, 21, 1, 10, 10}, {2, 1, 4, 24, 45, 15, 1, 0, 0},
    // many positions per weight-grad thread, Lout below and above its 256 threads: (b, t) step across items
    {9, 1, 3, 2, 130, 7, 1, 3, 3},      {3, 1, 2, 3, 600, 5, 2, 0, 0},
};


template <typename T>
void check_host(Context& ctx, const ConvGeo& q, DType t) {
  const cpu::CorrGeom g = corr_geom(q);
  REQUIRE(g.Lout >= 1);
  Tensor x = Tensor::uniform(ctx, {g.B, g.G * g.C, g.Lin}, -1, 1, t);
  Tensor w = Tensor::uniform(ctx, {g.G * g.O, g.C, g.K}, -1, 1, t);
  Tensor bias = Tensor::uniform(ctx, {g.G * g.O}, -1, 1, t);
  Tensor dy = Tensor::uniform(ctx, {g.B, g.G * g.O, g.Lout}, -1, 1, t);
  const double tol = t == DType::F32 ? 1e-5 : 1e-12;
  // Correlation: every output element through the device function.
  Tensor ref = Tensor::empty(ctx, {g.B, g.G * g.O, g.Lout}, t);
  cpu::conv1d_corr(x, w, bias, ref, g);
  std::vector<T> got(static_cast<size_t>(ref.numel()));
  for (int64_t e = 0; e < ref.numel(); ++e)
    got[static_cast<size_t>(e)] = cuda::direct_corr_at<T, double>(x.data<T>(), w.data<T>(), bias.data<T>(), e, g);
  CHECK(rel_err(std::vector<double>(got.begin(), got.end()), ref.to_vector<double>()) <= tol);
  // Without bias.
  cpu::conv1d_corr(x, w, Tensor(), ref, g);
  for (int64_t e = 0; e < ref.numel(); ++e)
    got[static_cast<size_t>(e)] = cuda::direct_corr_at<T, double>(x.data<T>(), w.data<T>(), nullptr, e, g);
  CHECK(rel_err(std::vector<double>(got.begin(), got.end()), ref.to_vector<double>()) <= tol);
  // Weight grad: every block, every thread's partial (256 threads as launched), summed.
  Tensor dwr = Tensor::empty(ctx, w.shape(), t);
  cpu::conv1d_corr_wgrad(x, dy, dwr, g);
  std::vector<double> dw(static_cast<size_t>(w.numel()), std::nan(""));
  const int64_t blocks = cuda::direct_wgrad_blocks(g);
  for (int64_t blk = 0; blk < blocks; ++blk) {
    int64_t go, c, k0;
    cuda::direct_wgrad_block(g, blk, go, c, k0);
    double sum[cuda::kDirectKTile] = {};
    for (int64_t tid = 0; tid < 256; ++tid) {
      double acc[cuda::kDirectKTile];
      cuda::direct_wgrad_partial<T>(x.data<T>(), dy.data<T>(), go, c, k0, tid, 256, g, acc);
      for (int j = 0; j < cuda::kDirectKTile; ++j) sum[j] += acc[j];
    }
    for (int j = 0; j < cuda::kDirectKTile && k0 + j < g.K; ++j)
      dw[static_cast<size_t>((go * g.C + c) * g.K + k0 + j)] = static_cast<double>(static_cast<T>(sum[j]));
  }
  for (double v : dw) REQUIRE(!std::isnan(v));  // every weight written once
  CHECK(rel_err(dw, dwr.to_vector<double>()) <= tol);
}

}  // namespace

TEST_SUITE("cuda") {
TEST_CASE("direct conv1d arithmetic (few outputs per group) equals the CPU conv over the whole grid (host)") {
  Context ctx(2, 91);
  for (const ConvGeo& q : kGeos) {
    INFO(geo_str(q));
    check_host<float>(ctx, q, DType::F32);
    check_host<double>(ctx, q, DType::F64);
  }
  // Tap ranges at the edges: exactly the taps whose source is inside x.
  cpu::CorrGeom g{1, 1, 1, 1, 10, 12, 4, 3, 5};
  for (int64_t t = 0; t < 12; ++t) {
    int64_t lo, hi;
    cuda::direct_tap_range(g, t, lo, hi);
    for (int64_t k = 0; k < g.K; ++k) {
      const int64_t src = t + k * g.d - g.p;
      CHECK((k >= lo && k < hi) == (src >= 0 && src < g.Lin));
    }
  }
}

#ifdef LOWPASS_HAVE_CUDA
TEST_CASE("direct conv1d kernels on the GPU match the CPU (float32 1e-5, float64 1e-12)") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 92);
  for (DType t : {DType::F32, DType::F64})
    for (const ConvGeo& q : kGeos) {
      const cpu::CorrGeom g = corr_geom(q);
      INFO(std::string(dtype_name(t)), " ", geo_str(q));
      const double tol = t == DType::F32 ? 1e-5 : 1e-12;
      Tensor x = Tensor::uniform(ctx, {g.B, g.G * g.C, g.Lin}, -1, 1, t);
      Tensor w = Tensor::uniform(ctx, {g.G * g.O, g.C, g.K}, -1, 1, t);
      Tensor bias = Tensor::uniform(ctx, {g.G * g.O}, -1, 1, t);
      Tensor dy = Tensor::uniform(ctx, {g.B, g.G * g.O, g.Lout}, -1, 1, t);
      Tensor y = Tensor::empty(ctx, dy.shape(), t), dw = Tensor::empty(ctx, w.shape(), t);
      cpu::conv1d_corr(x, w, bias, y, g);
      cpu::conv1d_corr_wgrad(x, dy, dw, g);
      Tensor yg = Tensor::full(ctx, dy.shape(), std::nan(""), t).to(kGpu);
      Tensor dwg = Tensor::full(ctx, w.shape(), std::nan(""), t).to(kGpu);
      cuda::conv1d_corr_direct(x.to(kGpu), w.to(kGpu), bias.to(kGpu), yg, g);
      cuda::conv1d_corr_wgrad_direct(x.to(kGpu), dy.to(kGpu), dwg, g);
      CHECK(rel(yg, y) <= tol);
      CHECK(rel(dwg, dw) <= tol);
    }
}
#endif
}
