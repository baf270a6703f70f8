// The tiled (implicit-GEMM) float32 correlation for wide conv1d layers (kernels/cuda/conv_tiled.h): every block run
// on the host phase by phase — all threads' loads, then all threads' computes, per chunk, with the shared tiles
// poisoned (NaN) before each chunk so an element no thread loaded shows — against the CPU conv (every machine), and
// the CUDA kernel and LOWPASS_CUDA_CONV=tiled's dispatch against the CPU on a GPU (skip without one).
// Run: build-dev/tests/lowpass_tests -ts=cuda -tc='*tiled*'
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/conv1d.h"
#include "kernels/cuda/conv_tiled.h"
#include "tests/conv_geo.h"
#include "tests/cuda_test.h"
#include "tests/gradcheck.h"
#ifdef LOWPASS_HAVE_CUDA
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/conv_backend.h"
#include "kernels/cuda/runtime.h"
#endif

using namespace lowpass;
using namespace lowpass::test;

namespace {

// The binary model's wide layers (64 -> 64, K 15 and 13, 'valid'), BPNet's dilated trunk (64 -> 64, K 3, 'same',
// d 2 and 64), an input grad's geometry (p = d(K-1) - pad), and awkward sizes: channels not a multiple of the
// 8-channel chunk, two output-channel tiles with a partial one, two position tiles with a partial one, groups,
// crops (negative padding), B = 1, one output position.
const ConvGeo kGeos[] = {
    {2, 1, 64, 64, 300, 15, 1, 0, 0},  {2, 1, 64, 64, 286, 13, 1, 0, 0},  {2, 1, 64, 64, 300, 3, 2, 2, 2},
    {1, 1, 64, 64, 300, 3, 64, 64, 64}, {2, 1, 64, 64, 286, 15, 1, 14, 14}, {3, 1, 20, 70, 129, 5, 3, 6, 6},
    {2, 2, 17, 33, 140, 7, 2, 0, 0},    {2, 1, 24, 40, 97, 3, 1, -3, -2},   {1, 1, 9, 65, 11, 11, 1, 0, 0},
    // first convs on DNA (few inputs, many outputs), which `auto` sends here: binary's (K 15, valid) and BPNet's
    // (K 21, same; its forward's tiles exceed 48 KiB, so only the weight grad takes it)
    {2, 1, 4, 64, 90, 15, 1, 0, 0},     {2, 1, 4, 64, 70, 21, 1, 10, 10},   {3, 1, 3, 37, 80, 33, 2, 5, 9},
};


// The kernel's work on the host: every block, its chunks' loads by all 128 threads (after NaN-filling the tiles),
// then all computes, then all stores.
std::vector<float> run_host(const Tensor& x, const Tensor& w, const Tensor& bias, const cpu::CorrGeom& g) {
  std::vector<float> y(static_cast<size_t>(g.B * g.G * g.O * g.Lout), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> ws(static_cast<size_t>(cuda::tiled_ws_floats(g)));
  std::vector<float> xs(static_cast<size_t>(cuda::kTiledC * cuda::tiled_xw(g)));
  std::vector<float> acc(static_cast<size_t>(cuda::kTiledThreads) * 64);
  auto acc_of = [&](int tid) -> float(&)[8][8] { return *reinterpret_cast<float(*)[8][8]>(&acc[size_t(tid) * 64]); };
  for (int64_t bz = 0; bz < g.B * g.G; ++bz)
    for (int64_t by = 0; by < cuda::tiled_grid_y(g); ++by)
      for (int64_t bx = 0; bx < cuda::tiled_grid_x(g); ++bx) {
        const cuda::TiledBlock blk = cuda::tiled_block(g, bx, by, bz);
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t c0 = 0; c0 < g.C; c0 += cuda::kTiledC) {
          std::fill(ws.begin(), ws.end(), std::numeric_limits<float>::quiet_NaN());
          std::fill(xs.begin(), xs.end(), std::numeric_limits<float>::quiet_NaN());
          for (int tid = 0; tid < cuda::kTiledThreads; ++tid)
            cuda::tiled_load<float>(x.data<float>(), w.data<float>(), ws.data(), xs.data(), g, blk, c0, tid);
          for (int tid = 0; tid < cuda::kTiledThreads; ++tid) cuda::tiled_compute(ws.data(), xs.data(), g, tid, acc_of(tid));
        }
        for (int tid = 0; tid < cuda::kTiledThreads; ++tid)
          cuda::tiled_store<float>(y.data(), bias.defined() ? bias.data<float>() : nullptr, g, blk, tid, acc_of(tid));
      }
  return y;
}

// The pipelined variant on the host: the weight layout built element by element (tiled_wprep_value), then every
// block's chunks through tiled_load_async with plain copies into a NaN-filled stage, all computes, the stores.
std::vector<float> run_pipe_host(const Tensor& x, const Tensor& w, const Tensor& bias, const cpu::CorrGeom& g) {
  std::vector<float> wprep(static_cast<size_t>(cuda::tiled_wprep_floats(g)));
  for (int64_t e = 0; e < static_cast<int64_t>(wprep.size()); ++e)
    wprep[static_cast<size_t>(e)] = cuda::tiled_wprep_value(w.data<float>(), g, e);
  std::vector<float> y(static_cast<size_t>(g.B * g.G * g.O * g.Lout), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> stage(static_cast<size_t>(cuda::tiled_stage_floats(g)));
  const int64_t nws = cuda::tiled_ws_floats(g);
  std::vector<float> acc(static_cast<size_t>(cuda::kTiledThreads) * 64);
  auto acc_of = [&](int tid) -> float(&)[8][8] { return *reinterpret_cast<float(*)[8][8]>(&acc[size_t(tid) * 64]); };
  auto copy16 = [](float* d, const float* s) { std::copy(s, s + 4, d); };
  auto copy4 = [](float* d, const float* s) { *d = *s; };
  for (int64_t bz = 0; bz < g.B * g.G; ++bz)
    for (int64_t by = 0; by < cuda::tiled_grid_y(g); ++by)
      for (int64_t bx = 0; bx < cuda::tiled_grid_x(g); ++bx) {
        const cuda::TiledBlock blk = cuda::tiled_block(g, bx, by, bz);
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t ch = 0; ch < cuda::tiled_chunks(g); ++ch) {
          std::fill(stage.begin(), stage.end(), std::numeric_limits<float>::quiet_NaN());
          for (int tid = 0; tid < cuda::kTiledThreads; ++tid)
            cuda::tiled_load_async(x.data<float>(), wprep.data(), stage.data(), stage.data() + nws, g, blk, ch, tid,
                                   copy16, copy4);
          for (int tid = 0; tid < cuda::kTiledThreads; ++tid)
            cuda::tiled_compute(stage.data(), stage.data() + nws, g, tid, acc_of(tid));
        }
        for (int tid = 0; tid < cuda::kTiledThreads; ++tid)
          cuda::tiled_store<float>(y.data(), bias.defined() ? bias.data<float>() : nullptr, g, blk, tid, acc_of(tid));
      }
  return y;
}

// The weight-grad kernel on the host: every block of every split, its chunks' loads by all threads (tiles
// NaN-filled first), then all computes, then the stores into the partials; then the in-order sum of the splits.
std::vector<float> run_wgrad_host(const Tensor& x, const Tensor& dy, const cpu::CorrGeom& g, int64_t S,
                                  bool async = false) {
  const int64_t n = g.G * g.O * g.C * g.K;
  std::vector<float> part(static_cast<size_t>(S * n), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> dys(static_cast<size_t>(cuda::wgrad_dys_floats()));
  std::vector<float> xs(static_cast<size_t>(cuda::wgrad_cb(g) * cuda::wgrad_xw(g)));
  std::vector<float> acc(static_cast<size_t>(cuda::kTiledThreads) * 64);
  auto acc_of = [&](int tid) -> float(&)[8][8] { return *reinterpret_cast<float(*)[8][8]>(&acc[size_t(tid) * 64]); };
  const int64_t chunks = g.B * cuda::wgrad_chunks_per_item(g);
  for (int64_t bz = 0; bz < g.G * S; ++bz)
    for (int64_t by = 0; by < cuda::wgrad_cblocks(g); ++by)
      for (int64_t bx = 0; bx < cuda::wgrad_otiles(g); ++bx) {
        const cuda::WgradBlock blk = cuda::wgrad_block(g, S, bx, by, bz);
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t q = blk.s; q < chunks; q += S) {
          std::fill(dys.begin(), dys.end(), std::numeric_limits<float>::quiet_NaN());
          std::fill(xs.begin(), xs.end(), std::numeric_limits<float>::quiet_NaN());
          for (int tid = 0; tid < cuda::kTiledThreads; ++tid) {
            if (async)  // the pipelined kernel's load phase, with plain copies
              cuda::wgrad_load_async(x.data<float>(), dy.data<float>(), dys.data(), xs.data(), g, blk, q, tid,
                                     [](float* d, const float* src) { *d = *src; });
            else
              cuda::wgrad_load(x.data<float>(), dy.data<float>(), dys.data(), xs.data(), g, blk, q, tid);
          }
          for (int tid = 0; tid < cuda::kTiledThreads; ++tid) cuda::wgrad_compute(dys.data(), xs.data(), g, tid, acc_of(tid));
        }
        for (int tid = 0; tid < cuda::kTiledThreads; ++tid) cuda::wgrad_store(part.data(), g, blk, tid, acc_of(tid));
      }
  std::vector<float> dw(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    double v = 0;
    for (int64_t s = 0; s < S; ++s) v += part[static_cast<size_t>(s * n + e)];
    dw[static_cast<size_t>(e)] = static_cast<float>(v);
  }
  return dw;
}

}  // namespace

TEST_SUITE("cuda") {
TEST_CASE("tiled conv1d weight grad equals the CPU's over every block and split, phase by phase (host)") {
  Context ctx(2, 98);
  for (const ConvGeo& q : kGeos) {
    INFO(geo_str(q));
    const cpu::CorrGeom g = corr_geom(q);
    if (!cuda::wgrad_tiled_fits(g)) {
      MESSAGE("not taken by the tiled weight grad (K > 64 or shared memory): K " << q.K << " d " << q.d);
      continue;
    }
    Tensor x = Tensor::uniform(ctx, {g.B, g.G * g.C, g.Lin}, -1, 1);
    Tensor dy = Tensor::uniform(ctx, {g.B, g.G * g.O, g.Lout}, -1, 1);
    Tensor ref = Tensor::empty(ctx, {g.G * g.O, g.C, g.K});
    cpu::conv1d_corr_wgrad(x, dy, ref, g);
    const int64_t chunks = g.B * cuda::wgrad_chunks_per_item(g);
    for (int64_t S : {int64_t{1}, int64_t{3}, chunks}) {
      INFO("splits ", S);
      const std::vector<float> got = run_wgrad_host(x, dy, g, S);
      bool all_written = true;
      for (float v : got) all_written = all_written && std::isfinite(v);
      CHECK(all_written);  // every partial written, from tiles with no unloaded (NaN) element
      CHECK(rel_err(std::vector<double>(got.begin(), got.end()), ref.to_vector<double>()) <= 1e-5);
      CHECK(run_wgrad_host(x, dy, g, S, true) == got);  // the pipelined kernel's loads: the same tiles
    }
  }
  CHECK(cuda::wgrad_tiled_fits({256, 1, 64, 64, 986, 972, 15, 1, 0}));
  CHECK(cuda::wgrad_tiled_fits({128, 1, 64, 64, 1346, 1346, 3, 64, 64}));
  CHECK_FALSE(cuda::wgrad_tiled_fits({2, 1, 64, 2, 1074, 1000, 75, 1, 0}));  // K 75: im2col (or direct)
  CHECK(cuda::wgrad_cb({1, 1, 64, 64, 10, 10, 15, 1, 0}) == 8);
  CHECK(cuda::wgrad_cb({1, 1, 64, 64, 10, 10, 3, 1, 0}) == 42);
}

TEST_CASE("tiled conv1d arithmetic (wide layers) equals the CPU conv over every block, phase by phase (host)") {
  Context ctx(2, 95);
  for (const ConvGeo& q : kGeos) {
    INFO(geo_str(q));
    const cpu::CorrGeom g = corr_geom(q);
    REQUIRE(g.Lout >= 1);
    if (!cuda::tiled_fits(g)) {  // K 21 and 33 with 4 or 3 inputs: 8·K·68 + 8·(128 + (K−1)·d) floats of tiles
      CHECK(g.K >= 21);
      continue;
    }
    Tensor x = Tensor::uniform(ctx, {g.B, g.G * g.C, g.Lin}, -1, 1);
    Tensor w = Tensor::uniform(ctx, {g.G * g.O, g.C, g.K}, -1, 1);
    Tensor bias = Tensor::uniform(ctx, {g.G * g.O}, -1, 1);
    for (bool with_bias : {true, false}) {
      Tensor ref = Tensor::empty(ctx, {g.B, g.G * g.O, g.Lout});
      cpu::conv1d_corr(x, w, with_bias ? bias : Tensor(), ref, g);
      const std::vector<float> got = run_host(x, w, with_bias ? bias : Tensor(), g);
      bool all_written = true;
      for (float v : got) all_written = all_written && std::isfinite(v);
      CHECK(all_written);  // every output stored once, from tiles with no unloaded (NaN) element
      CHECK(rel_err(std::vector<double>(got.begin(), got.end()), ref.to_vector<double>()) <= 1e-5);
    }
  }
  // What it declines: a K 75 head (the weight tile alone needs 8·75·68 floats), an empty batch, float64 by dtype
  // (checked by conv1d_corr_tiled itself).
  CHECK_FALSE(cuda::tiled_fits({2, 1, 64, 2, 1074, 1000, 75, 1, 0}));
  CHECK_FALSE(cuda::tiled_fits({0, 1, 64, 64, 100, 100, 3, 1, 1}));
  CHECK(cuda::tiled_fits({256, 1, 64, 64, 986, 972, 15, 1, 0}));
  CHECK(cuda::tiled_fits({128, 1, 64, 64, 1346, 1346, 3, 64, 64}));
  CHECK(cuda::tiled_fits({256, 1, 4, 64, 1000, 986, 15, 1, 0}));         // binary's first conv
  CHECK_FALSE(cuda::tiled_fits({128, 1, 4, 64, 1346, 1346, 21, 1, 10}));  // BPNet's: the weight grad only
  CHECK(cuda::wgrad_tiled_fits({128, 1, 4, 64, 1346, 1346, 21, 1, 10}));
}

TEST_CASE("pipelined tiled conv1d (prepared weight layout, staged copies) equals the CPU conv over every block (host)") {
  Context ctx(2, 94);
  for (const ConvGeo& q : kGeos) {
    INFO(geo_str(q));
    const cpu::CorrGeom g = corr_geom(q);
    if (!cuda::tiled_fits(g)) continue;  // as the plain kernel (the K 21 and 33 first convs)
    CHECK(cuda::tiled_stage_floats(g) % 4 == 0);  // the second stage starts 16-byte aligned
    CHECK(cuda::tiled_ws_floats(g) % 4 == 0);     // the weight tile is whole 16-byte copies
    Tensor x = Tensor::uniform(ctx, {g.B, g.G * g.C, g.Lin}, -1, 1);
    Tensor w = Tensor::uniform(ctx, {g.G * g.O, g.C, g.K}, -1, 1);
    Tensor bias = Tensor::uniform(ctx, {g.G * g.O}, -1, 1);
    Tensor ref = Tensor::empty(ctx, {g.B, g.G * g.O, g.Lout});
    cpu::conv1d_corr(x, w, bias, ref, g);
    const std::vector<float> got = run_pipe_host(x, w, bias, g);
    bool all_written = true;
    for (float v : got) all_written = all_written && std::isfinite(v);
    CHECK(all_written);
    CHECK(rel_err(std::vector<double>(got.begin(), got.end()), ref.to_vector<double>()) <= 1e-5);
  }
}

#ifdef LOWPASS_HAVE_CUDA
TEST_CASE("tiled conv1d kernels on the GPU match the CPU, directly and as LOWPASS_CUDA_CONV=tiled (float32 1e-5)") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 96);
  for (const ConvGeo& q : kGeos) {
    const cpu::CorrGeom g = corr_geom(q);
    INFO(geo_str(q));
    Tensor x = Tensor::uniform(ctx, {g.B, g.G * g.C, g.Lin}, -1, 1), w = Tensor::uniform(ctx, {g.G * g.O, g.C, g.K}, -1, 1);
    Tensor bias = Tensor::uniform(ctx, {g.G * g.O}, -1, 1);
    Tensor ref = Tensor::empty(ctx, {g.B, g.G * g.O, g.Lout});
    cpu::conv1d_corr(x, w, bias, ref, g);
    Tensor got = gpu_out(ctx, ref.shape(), DType::F32);
    if (cuda::conv1d_corr_tiled(x.to(kGpu), w.to(kGpu), bias.to(kGpu), got, g)) {
      cuda::synchronize(0);
      CHECK(rel(got, ref) <= 1e-5);
      CHECK(canaries_intact(got));
      Tensor piped = gpu_out(ctx, ref.shape(), DType::F32);  // the pipelined variant, same tiles and sums
      CHECK(cuda::conv1d_corr_tiled(x.to(kGpu), w.to(kGpu), bias.to(kGpu), piped, g, true));
      cuda::synchronize(0);
      CHECK(rel(piped, got) == 0.0);
      CHECK(canaries_intact(piped));
    } else {
      CHECK_FALSE(cuda::tiled_fits(g));
    }
    Tensor dy = Tensor::uniform(ctx, ref.shape(), -1, 1), dwr = Tensor::empty(ctx, w.shape());
    cpu::conv1d_corr_wgrad(x, dy, dwr, g);
    Tensor dwg = gpu_out(ctx, w.shape(), DType::F32);
    if (cuda::conv1d_corr_wgrad_tiled(x.to(kGpu), dy.to(kGpu), dwg, g)) {
      cuda::synchronize(0);
      CHECK(rel(dwg, dwr) <= 1e-5);
      CHECK(canaries_intact(dwg));
      Tensor piped = gpu_out(ctx, w.shape(), DType::F32);  // the pipelined variant: same tiles, same sums
      CHECK(cuda::conv1d_corr_wgrad_tiled(x.to(kGpu), dy.to(kGpu), piped, g, true));
      cuda::synchronize(0);
      CHECK(rel(piped, dwg) == 0.0);
      CHECK(canaries_intact(piped));
    } else {
      CHECK_FALSE(cuda::wgrad_tiled_fits(g));
    }
  }
  // With TF32 GEMMs switched on the tiled kernels decline (im2col's tensor-core GEMMs run).
  {
    const cpu::CorrGeom g = corr_geom(kGeos[0]);
    Context t32(2, 99);
    cuda::set_gemm_math(t32, 0, cuda::GemmMath::TF32);
    Tensor x = Tensor::uniform(t32, {g.B, g.C, g.Lin}, -1, 1).to(kGpu), w = Tensor::uniform(t32, {g.O, g.C, g.K}, -1, 1).to(kGpu);
    Tensor y = gpu_out(t32, {g.B, g.O, g.Lout}, DType::F32), dw = gpu_out(t32, {g.O, g.C, g.K}, DType::F32);
    CHECK_FALSE(cuda::conv1d_corr_tiled(x, w, Tensor(), y, g));
    CHECK_FALSE(cuda::conv1d_corr_wgrad_tiled(x, gpu_out(t32, {g.B, g.O, g.Lout}, DType::F32), dw, g));
  }
  // float64 and a too-large weight tile decline, writing nothing.
  {
    const cpu::CorrGeom g{1, 1, 64, 64, 50, 48, 3, 1, 0};
    Tensor x = Tensor::uniform(ctx, {1, 64, 50}, -1, 1, DType::F64).to(kGpu);
    Tensor w = Tensor::uniform(ctx, {64, 64, 3}, -1, 1, DType::F64).to(kGpu);
    Tensor y = gpu_out(ctx, {1, 64, 48}, DType::F64);
    CHECK_FALSE(cuda::conv1d_corr_tiled(x, w, Tensor(), y, g));
  }
  // Through conv1d_*_cuda with the backend set on the Context: forward, input grad and weight grad on the tiled
  // kernels (wide layers), the few-channel layers on the direct kernels.
  Context tc(2, 97);
  cuda::set_conv_backend(tc, 0, cuda::ConvBackend::Tiled);
  struct Case { int64_t B, C, O, L, K, d, pad; };
  for (const Case& c : {Case{4, 64, 64, 400, 15, 1, 0}, Case{3, 64, 64, 300, 3, 16, 16}, Case{2, 4, 64, 200, 21, 1, 10},
                        Case{2, 64, 2, 150, 75, 1, 0}}) {
    INFO("B ", c.B, " C ", c.C, " O ", c.O, " L ", c.L, " K ", c.K, " d ", c.d, " pad ", c.pad);
    const Conv1dOpts o{c.d, c.pad, c.pad, 1};
    const int64_t Lout = c.L + 2 * c.pad - c.d * (c.K - 1);
    Tensor x = Tensor::uniform(tc, {c.B, c.C, c.L}, -1, 1), w = Tensor::uniform(tc, {c.O, c.C, c.K}, -1, 1);
    Tensor bias = Tensor::uniform(tc, {c.O}, -1, 1), dy = Tensor::uniform(tc, {c.B, c.O, Lout}, -1, 1);
    Tensor y = Tensor::empty(tc, dy.shape()), dx = Tensor::empty(tc, x.shape()), dw = Tensor::empty(tc, w.shape());
    cpu::conv1d_fwd_cpu(x, w, bias, y, o);
    cpu::conv1d_bwd_input_cpu(dy, w, dx, o);
    cpu::conv1d_bwd_weight_cpu(x, dy, dw, o);
    Tensor yg = gpu_out(tc, y.shape(), DType::F32), dxg = gpu_out(tc, x.shape(), DType::F32);
    Tensor dwg = gpu_out(tc, w.shape(), DType::F32);
    cuda::conv1d_fwd_cuda(x.to(kGpu), w.to(kGpu), bias.to(kGpu), yg, o);
    cuda::conv1d_bwd_input_cuda(dy.to(kGpu), w.to(kGpu), dxg, o);
    cuda::conv1d_bwd_weight_cuda(x.to(kGpu), dy.to(kGpu), dwg, o);
    cuda::synchronize(0);
    CHECK(rel(yg, y) <= 1e-5);
    CHECK(rel(dxg, dx) <= 1e-5);
    CHECK(rel(dwg, dw) <= 1e-5);
    CHECK((canaries_intact(yg) && canaries_intact(dxg) && canaries_intact(dwg)));
  }
}
#endif
}
