// The taps route of the CUDA correlation (kernels/cuda/conv_taps.h): its plan of per-(group, tap) GEMMs and its
// weight layout, run on the host with a reference column-major strided-batched GEMM (cuBLAS's convention, the same
// arguments conv1d_taps.cu passes) against the correlation's definition, over geometries with padding, crops
// (negative p), dilation, groups, taps that reach no position, and outputs longer than the input. The kernels around
// the GEMMs (weight layout, bias fill) and cuBLAS itself run in the GPU cases of tests/test_cuda_tune.cpp.
// Run: build-dev/tests/lowpass_tests -ts=cuda -tc='*taps*'
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/conv1d.h"
#include "kernels/cuda/conv_taps.h"
#include "tests/cuda_test.h"
#ifdef LOWPASS_HAVE_CUDA
#include "kernels/cuda/conv1d.h"
#endif

using namespace lowpass;
using namespace lowpass::test;

namespace {

// C_i = op(A_i)·B_i + beta·C_i (column-major) for i < batch: op(A) m × k (ta: A stored k × m, lda), B (k × n, ldb),
// C (m × n, ldc); cuBLAS's convention.
void gemm_ref(bool ta, int64_t m, int64_t n, int64_t k, const double* A, int64_t lda, int64_t sA, const double* B,
              int64_t ldb, int64_t sB, double beta, double* C, int64_t ldc, int64_t sC, int64_t batch) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < m; ++i) {
        double acc = 0;
        for (int64_t l = 0; l < k; ++l)
          acc += A[b * sA + (ta ? l + i * lda : i + l * lda)] * B[b * sB + l + j * ldb];
        double& c = C[b * sC + i + j * ldc];
        c = (beta == 0 ? 0.0 : beta * c) + acc;  // beta 0: C is not read (cuBLAS)
      }
}

void check(const cpu::CorrGeom& g, uint32_t seed, bool bias) {
  INFO("B ", g.B, " G ", g.G, " C ", g.C, " O ", g.O, " Lin ", g.Lin, " Lout ", g.Lout, " K ", g.K, " d ", g.d, " p ",
       g.p, " bias ", bias);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> U(-1, 1);
  std::vector<double> x(static_cast<size_t>(g.B * g.G * g.C * g.Lin)), w(static_cast<size_t>(g.G * g.O * g.C * g.K)),
      bv(static_cast<size_t>(g.G * g.O));
  for (auto* v : {&x, &w, &bv})
    for (double& e : *v) e = U(rng);
  // the definition
  std::vector<double> ref(static_cast<size_t>(g.B * g.G * g.O * g.Lout));
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t gi = 0; gi < g.G; ++gi)
      for (int64_t o = 0; o < g.O; ++o)
        for (int64_t t = 0; t < g.Lout; ++t) {
          double acc = bias ? bv[static_cast<size_t>(gi * g.O + o)] : 0.0;
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t k = 0; k < g.K; ++k) {
              const int64_t src = t + k * g.d - g.p;
              if (src < 0 || src >= g.Lin) continue;
              acc += w[static_cast<size_t>(((gi * g.O + o) * g.C + c) * g.K + k)] *
                     x[static_cast<size_t>(((b * g.G + gi) * g.C + c) * g.Lin + src)];
            }
          ref[static_cast<size_t>(((b * g.G + gi) * g.O + o) * g.Lout + t)] = acc;
        }
  // the route: weights laid out, y = bias, then the plan's GEMMs with conv1d_taps.cu's arguments
  std::vector<double> wp(w.size());
  for (int64_t e = 0; e < static_cast<int64_t>(wp.size()); ++e)
    wp[static_cast<size_t>(e)] = w[static_cast<size_t>(cuda::taps_weight_source(g, e))];
  std::vector<double> y(ref.size());
  for (int64_t r = 0; r < g.B * g.G * g.O; ++r)
    for (int64_t t = 0; t < g.Lout; ++t)
      y[static_cast<size_t>(r * g.Lout + t)] = bias ? bv[static_cast<size_t>(r % (g.G * g.O))] : 0.0;
  const std::vector<cuda::TapGemm> plan = cuda::taps_plan(g);
  for (const cuda::TapGemm& e : plan) {
    REQUIRE(e.m >= 1);
    REQUIRE(e.t0 + e.m <= g.Lout);
    gemm_ref(false, e.m, g.O, g.C, x.data() + e.a_off, g.Lin, g.G * g.C * g.Lin, wp.data() + e.b_off, g.C, 0, 1.0,
             y.data() + e.c_off, g.Lout, g.G * g.O * g.Lout, g.B);
  }
  // NaN-aware maxima: a NaN difference (an entry read but never written) makes the worst NaN, and the check fail
  auto worst_of = [](const std::vector<double>& a, const std::vector<double>& b) {
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const double d = std::fabs(a[i] - b[i]);
      if (!(d <= worst)) worst = d;
    }
    return worst;
  };
  const double worst = worst_of(y, ref);
  CHECK(worst <= 1e-12);
  // every tap with a position inside x is in the plan, once
  int64_t taps = 0;
  for (int64_t k = 0; k < g.K; ++k) {
    const int64_t s = k * g.d - g.p;
    taps += std::min(g.Lout, g.Lin - s) > std::max<int64_t>(0, -s);
  }
  CHECK(static_cast<int64_t>(plan.size()) == taps * g.G);

  // Weight grad: per-item GEMMs per planned tap into part (NaN-poisoned: what they leave unwritten must not be read),
  // then the in-order sum over the batch, against the definition.
  std::vector<double> dy(ref.size());
  for (double& e : dy) e = U(rng);
  std::vector<double> dw_ref(w.size(), 0.0);
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t gi = 0; gi < g.G; ++gi)
      for (int64_t o = 0; o < g.O; ++o)
        for (int64_t c = 0; c < g.C; ++c)
          for (int64_t k = 0; k < g.K; ++k)
            for (int64_t t = 0; t < g.Lout; ++t) {
              const int64_t src = t + k * g.d - g.p;
              if (src < 0 || src >= g.Lin) continue;
              dw_ref[static_cast<size_t>(((gi * g.O + o) * g.C + c) * g.K + k)] +=
                  dy[static_cast<size_t>(((b * g.G + gi) * g.O + o) * g.Lout + t)] *
                  x[static_cast<size_t>(((b * g.G + gi) * g.C + c) * g.Lin + src)];
            }
  const int64_t n = g.G * g.O * g.C * g.K;
  std::vector<double> part(static_cast<size_t>(g.B * n), std::nan(""));
  for (const cuda::TapGemm& e : plan)
    gemm_ref(true, g.C, g.O, e.m, x.data() + e.a_off, g.Lin, g.G * g.C * g.Lin, dy.data() + e.c_off, g.Lout,
             g.G * g.O * g.Lout, 0.0, part.data() + (e.gi * g.K + e.k) * g.O * g.C, g.C, n, g.B);
  std::vector<double> dw(w.size());
  for (int64_t e = 0; e < n; ++e) {  // taps_wgrad_sum_kernel's body
    double v = 0;
    if (cuda::taps_reaches(g, e % g.K)) {
      const int64_t j = cuda::taps_part_index(g, e);
      for (int64_t b = 0; b < g.B; ++b) v += part[static_cast<size_t>(b * n + j)];
    }
    dw[static_cast<size_t>(e)] = v;
  }
  CHECK(worst_of(dw, dw_ref) <= 1e-12);
}

}  // namespace

TEST_SUITE("cuda") {
TEST_CASE("taps conv1d route: the per-tap GEMM plan, weight layout and batch sum equal the correlation and its weight grad (host)") {
  using G = cpu::CorrGeom;
  uint32_t seed = 1;
  for (bool bias : {true, false}) {
    check(G{3, 1, 5, 4, 40, 40, 3, 4, 4}, seed++, bias);      // BPNet's trunk: same padding, dilated
    check(G{2, 1, 6, 3, 30, 30, 3, 16, 16}, seed++, bias);    // dilation past half the length: edge taps short
    check(G{2, 1, 4, 5, 37, 23, 15, 1, 0}, seed++, bias);     // binary's valid K 15
    check(G{2, 2, 3, 4, 21, 21, 5, 2, 4}, seed++, bias);      // groups
    check(G{1, 1, 3, 2, 10, 6, 3, 1, -2}, seed++, bias);      // a crop (negative offset)
    check(G{2, 1, 2, 3, 8, 20, 3, 3, 9}, seed++, bias);       // output longer than the input (wide padding)
    check(G{1, 1, 2, 2, 5, 5, 3, 40, 40}, seed++, bias);      // only the middle tap reaches x
    check(G{1, 1, 1, 1, 1, 1, 1, 1, 0}, seed++, bias);        // one of everything
    check(G{1, 3, 2, 1, 9, 11, 4, 2, 4}, seed++, bias);       // even K, asymmetric padding
  }
  CHECK(cuda::taps_plan(G{1, 1, 2, 2, 5, 5, 3, 40, 100}).empty());  // no tap reaches x: y stays the bias
}

#ifdef LOWPASS_HAVE_CUDA
TEST_CASE("taps conv1d route on the GPU matches the CPU correlation and weight grad (float32 1e-5, float64 1e-12)") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 73);
  using G = cpu::CorrGeom;
  for (DType t : {DType::F32, DType::F64})
    for (const G& g : {G{8, 1, 64, 64, 300, 300, 3, 8, 8}, G{5, 1, 64, 64, 200, 200, 3, 64, 64},
                       G{3, 2, 7, 5, 61, 61, 5, 2, 4}, G{2, 1, 3, 2, 10, 6, 3, 1, -2}, G{2, 1, 2, 3, 8, 20, 3, 3, 9},
                       G{1, 1, 2, 2, 5, 5, 3, 40, 100}}) {
      INFO(dtype_name(t), " B ", g.B, " G ", g.G, " C ", g.C, " O ", g.O, " Lin ", g.Lin, " Lout ", g.Lout, " K ", g.K,
           " d ", g.d, " p ", g.p);
      Tensor x = Tensor::uniform(ctx, {g.B, g.G * g.C, g.Lin}, -1, 1, t);
      Tensor w = Tensor::uniform(ctx, {g.G * g.O, g.C, g.K}, -1, 1, t), bias = Tensor::uniform(ctx, {g.G * g.O}, -1, 1, t);
      for (bool with_bias : {true, false}) {
        const Tensor b = with_bias ? bias : Tensor();
        Tensor ref = Tensor::empty(ctx, {g.B, g.G * g.O, g.Lout}, t);
        cpu::conv1d_corr(x, w, b, ref, g);
        Tensor y = gpu_out(ctx, ref.shape(), t);
        REQUIRE(cuda::conv1d_corr_taps(x.to(kGpu), w.to(kGpu), with_bias ? bias.to(kGpu) : Tensor(), y, g));
        CHECK(rel(y, ref) <= (t == DType::F32 ? 1e-5 : 1e-12));
        CHECK(canaries_intact(y));
      }
      Tensor dy = Tensor::uniform(ctx, {g.B, g.G * g.O, g.Lout}, -1, 1, t);
      Tensor dw_ref = Tensor::empty(ctx, w.shape(), t);
      cpu::conv1d_corr_wgrad(x, dy, dw_ref, g);
      Tensor dw = gpu_out(ctx, w.shape(), t);
      REQUIRE(cuda::conv1d_corr_wgrad_taps(x.to(kGpu), dy.to(kGpu), dw, g));
      CHECK(rel(dw, dw_ref) <= (t == DType::F32 ? 1e-5 : 1e-12));
      CHECK(canaries_intact(dw));
    }
}
#endif
}
