// CUDA nn kernels against their CPU twins: batch norm (with its second-derivative rule and channel_affine2), max-pool,
// (log-)softmax (rows with infinities and NaN too) and the DeepLIFT rule kernels. Run: build/tests/lowpass_tests -ts=cuda
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

#include "kernels/cuda/block_cache.h"
#include "kernels/cuda/index.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cpu/elementwise.h"
#include "tests/cuda_test.h"
#include "tests/fake_device.h"
#include "tests/gradcheck.h"
#ifdef LOWPASS_HAVE_CUDA
#include "kernels/cpu/nn.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/shape.h"
#include "kernels/cuda/cuda_state.h"
#endif

using namespace lowpass;
using namespace lowpass::test;

TEST_SUITE("cuda") {
#ifdef LOWPASS_HAVE_CUDA

// ---------------- nn kernels ----------------
TEST_CASE("batch-norm (with its second-derivative rule), max-pool and softmax kernels match the CPU") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 17);
  for (DType t : {DType::F32, DType::F64})
    for (Shape s : {Shape{2, 3, 33}, Shape{1, 5, 2}, Shape{64, 7, 1}, Shape{9, 4}, Shape{3, 2, 4099},
                    Shape{300, 11, 260}, Shape{1000, 40}}) {  // the last two: uneven row splits of the two passes
      int64_t C = s[1];
      Tensor x = rnd(ctx, s, 0.5, 3, t);  // offset from 0: exercises the shifted statistics
      Tensor xg = x.to(kGpu);
      Tensor m_ref = Tensor::empty(ctx, {C}, t), v_ref = Tensor::empty(ctx, {C}, t);
      cpu::channel_stats(x, m_ref, v_ref);
      Tensor m = gpu_out(ctx, {C}, t), v = gpu_out(ctx, {C}, t);
      cuda::channel_stats(xg, m, v);
      CHECK(rel(m, m_ref) <= tol_for(t));
      CHECK(rel(v, v_ref) <= tol_for(t));
      CHECK((canaries_intact(m) && canaries_intact(v)));
      Tensor scale = rnd(ctx, {C}, -2, 2, t), shift = rnd(ctx, {C}, -2, 2, t);
      Tensor scg = scale.to(kGpu), shg = shift.to(kGpu);
      compare_kernel(ctx, "channel_affine", s, t, [&](Tensor& out) { cpu::channel_affine(x, scale, shift, out); },
                     [&](Tensor& out) { cuda::channel_affine(xg, scg, shg, out); });
      // channel_affine2 (y = g·a + h·b + c per channel: the composed batch-norm input gradient, third derivatives)
      Tensor g2 = rnd(ctx, s, -1, 1, t), h2 = rnd(ctx, s, -1, 1, t), a2 = rnd(ctx, {C}, -2, 2, t);
      Tensor g2g = g2.to(kGpu), h2g = h2.to(kGpu), a2g = a2.to(kGpu);
      compare_kernel(ctx, "channel_affine2", s, t,
                     [&](Tensor& out) { cpu::channel_affine2(g2, h2, a2, scale, shift, out); },
                     [&](Tensor& out) { cuda::channel_affine2(g2g, h2g, a2g, scg, shg, out); });
      Tensor g = rnd(ctx, s, -1, 1, t), invstd = rnd(ctx, {C}, 0.5, 2, t), gamma = rnd(ctx, {C}, -2, 2, t);
      Tensor gg = g.to(kGpu), ig = invstd.to(kGpu), gmg = gamma.to(kGpu), mg = m_ref.to(kGpu);
      for (bool with_gamma : {true, false}) {
        Tensor dx_ref = Tensor::empty(ctx, s, t), dga_ref = Tensor::empty(ctx, {C}, t), dbe_ref = Tensor::empty(ctx, {C}, t);
        cpu::batch_norm_bwd(g, x, m_ref, invstd, with_gamma ? gamma : Tensor(), dx_ref, dga_ref, dbe_ref);
        Tensor dx = gpu_out(ctx, s, t), dga = gpu_out(ctx, {C}, t), dbe = gpu_out(ctx, {C}, t);
        cuda::batch_norm_bwd(gg, xg, mg, ig, with_gamma ? gmg : Tensor(), dx, dga, dbe);
        CHECK(rel(dx, dx_ref) <= tol_for(t));
        CHECK(rel(dga, dga_ref) <= tol_for(t));
        CHECK(rel(dbe, dbe_ref) <= tol_for(t));
        CHECK((canaries_intact(dx) && canaries_intact(dga) && canaries_intact(dbe)));
        Tensor none;  // only dgamma wanted, into a fresh NaN-filled output (the call above has filled dga)
        Tensor dga1 = gpu_out(ctx, {C}, t);
        cuda::batch_norm_bwd(gg, xg, mg, ig, with_gamma ? gmg : Tensor(), none, dga1, none);
        CHECK(rel(dga1, dga_ref) <= tol_for(t));
        CHECK(canaries_intact(dga1));
        // The second-derivative rule (upstream u): dg, dx, dgamma, all three and each alone.
        Tensor u = rnd(ctx, s, -1, 1, t), ug = u.to(kGpu);
        const Tensor gm = with_gamma ? gamma : Tensor(), gmd = with_gamma ? gmg : Tensor();
        Tensor dg_ref = Tensor::empty(ctx, s, t), dx2_ref = Tensor::empty(ctx, s, t), dgm_ref = Tensor::empty(ctx, {C}, t);
        cpu::batch_norm_bwd2(u, g, x, m_ref, invstd, gm, dg_ref, dx2_ref, dgm_ref);
        Tensor dg2 = gpu_out(ctx, s, t), dx2 = gpu_out(ctx, s, t), dgm2 = gpu_out(ctx, {C}, t);
        cuda::batch_norm_bwd2(ug, gg, xg, mg, ig, gmd, dg2, dx2, dgm2);
        CHECK(rel(dg2, dg_ref) <= tol_for(t));
        CHECK(rel(dx2, dx2_ref) <= tol_for(t));
        CHECK(rel(dgm2, dgm_ref) <= tol_for(t));
        CHECK((canaries_intact(dg2) && canaries_intact(dx2) && canaries_intact(dgm2)));
        Tensor dx3 = gpu_out(ctx, s, t), dg3 = gpu_out(ctx, s, t);
        cuda::batch_norm_bwd2(ug, gg, xg, mg, ig, gmd, none, dx3, none);
        cuda::batch_norm_bwd2(ug, gg, xg, mg, ig, gmd, dg3, none, none);
        CHECK(rel(dx3, dx2_ref) <= tol_for(t));
        CHECK(rel(dg3, dg_ref) <= tol_for(t));
      }
    }
  // Softmax over each axis of (outer, n, inner) views.
  for (DType t : {DType::F32, DType::F64})
    for (auto [o_, n_, i_] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {3, 4, 1}, {2, 1001, 1}, {4, 5, 33},
                           {1, 7, 1000}, {257, 3, 1}}) {
      auto o = o_; auto n = n_; auto i = i_;  // named copies: clang < 16 cannot capture structured bindings
      Tensor x = rnd(ctx, {o, n, i}, -6, 6, t);
      Tensor xg = x.to(kGpu);
      compare_kernel(ctx, "log_softmax", {o, n, i}, t, [&](Tensor& out) { cpu::log_softmax(x, out, o, n, i); },
                     [&](Tensor& out) { cuda::log_softmax(xg, out, o, n, i); });
      compare_kernel(ctx, "softmax", {o, n, i}, t, [&](Tensor& out) { cpu::softmax(x, out, o, n, i); },
                     [&](Tensor& out) { cuda::softmax(xg, out, o, n, i); });
    }
  // Rows with infinities and NaN: the CPU's pinned results (test_nn.cpp), NaN for NaN.
  for (DType t : {DType::F32, DType::F64}) {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    const Tensor x = Tensor::from_vector(ctx, {4, 2}, std::vector<double>{-inf, -inf, 0, -inf, inf, 1, nan, 1}).to(t);
    const Tensor xg = x.to(kGpu);
    for (bool lg : {true, false}) {
      Tensor ref = Tensor::empty(ctx, {4, 2}, t), got = gpu_out(ctx, {4, 2}, t);
      if (lg) cpu::log_softmax(x, ref, 4, 2, 1), cuda::log_softmax(xg, got, 4, 2, 1);
      else cpu::softmax(x, ref, 4, 2, 1), cuda::softmax(xg, got, 4, 2, 1);
      const auto r = ref.to_vector<double>(), gv = got.to_vector<double>();
      for (size_t i = 0; i < r.size(); ++i) {
        INFO((lg ? "log_softmax" : "softmax"), " element ", i, " CPU ", r[i], " CUDA ", gv[i]);
        CHECK(((std::isnan(r[i]) && std::isnan(gv[i])) || r[i] == gv[i]));
      }
    }
  }
  // Max-pool: forward values and routing, then scatter/gather through the same routing.
  for (DType t : {DType::F32, DType::F64})
    for (auto [L, k, st] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {33, 3, 1}, {34, 2, 2}, {1001, 5, 3},
                            {7, 7, 1}, {50, 4, 4}}) {
      int64_t Lo = (L - k) / st + 1;
      Tensor x = rnd(ctx, {3, 2, L}, -1, 1, t);
      Tensor xg = x.to(kGpu);
      Tensor out_ref = Tensor::empty(ctx, {3, 2, Lo}, t);
      std::vector<int32_t> idx_ref(static_cast<size_t>(6 * Lo));
      cpu::max_pool1d_fwd(x, out_ref, idx_ref.data(), k, st);
      Tensor out = gpu_out(ctx, {3, 2, Lo}, t);
      auto idx_dev = Storage::allocate(idx_ref.size() * sizeof(int32_t), kGpu);
      cuda::max_pool1d_fwd(xg, out, static_cast<int32_t*>(idx_dev->data), k, st);
      std::vector<int32_t> idx(idx_ref.size());
      cuda::copy_d2h(idx.data(), idx_dev->data, idx.size() * sizeof(int32_t), 0);
      CHECK(rel(out, out_ref) == 0.0);
      CHECK(idx == idx_ref);
      CHECK(canaries_intact(out));
      Tensor g = rnd(ctx, {3, 2, Lo}, -1, 1, t);
      Tensor gg = g.to(kGpu);
      compare_kernel(ctx, "max_pool1d_scatter", {3, 2, L}, t,
                     [&](Tensor& o) { cpu::max_pool1d_scatter(g, o, idx_ref.data()); },
                     [&](Tensor& o) { cuda::max_pool1d_scatter(gg, o, static_cast<const int32_t*>(idx_dev->data)); });
      Tensor h = rnd(ctx, {3, 2, L}, -1, 1, t);
      Tensor hg = h.to(kGpu);
      compare_kernel(ctx, "max_pool1d_gather", {3, 2, Lo}, t,
                     [&](Tensor& o) { cpu::max_pool1d_gather(h, o, idx_ref.data()); },
                     [&](Tensor& o) { cuda::max_pool1d_gather(hg, o, static_cast<const int32_t*>(idx_dev->data)); });
    }
}

TEST_CASE("DeepLIFT rule kernels (rescale for ReLU and for max-pool, the max-pool seed) match the CPU") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 19);
  for (DType t : {DType::F32, DType::F64})
    for (int64_t n : {1, 7, 1000, 70001}) {
      // [x; r] pairs: every fifth pair equal (Δ = 0, the fallback), every seventh 1e-12 apart (below eps)
      std::vector<double> in(static_cast<size_t>(2 * n)), out(in.size());
      auto u = Tensor::uniform(ctx, {2 * n}, -1, 1, DType::F64).to_vector<double>();
      auto w = Tensor::uniform(ctx, {2 * n}, -1, 1, DType::F64).to_vector<double>();
      for (int64_t i = 0; i < n; ++i) {
        const size_t a = static_cast<size_t>(i), b = static_cast<size_t>(i + n);
        in[a] = u[a], in[b] = i % 5 == 0 ? u[a] : i % 7 == 0 ? u[a] + 1e-12 : u[b];
        out[a] = std::max(in[a], 0.0) + 0.1 * w[a], out[b] = std::max(in[b], 0.0) + 0.1 * w[b];
      }
      const Tensor ti = Tensor::from_vector(ctx, {2 * n}, in).to(t), to = Tensor::from_vector(ctx, {2 * n}, out).to(t);
      const Tensor g = rnd(ctx, {2 * n}, -1, 1, t), reg = rnd(ctx, {2 * n}, -1, 1, t), U = rnd(ctx, {n}, -1, 1, t);
      const Tensor tig = ti.to(kGpu), tog = to.to(kGpu), gg = g.to(kGpu), regg = reg.to(kGpu), Ug = U.to(kGpu);
      compare_kernel(ctx, "deeplift_rescale (ReLU)", {2 * n}, t,
                     [&](Tensor& o) { cpu::deeplift_rescale(ti, g, to, reg, 1e-10, o); },
                     [&](Tensor& o) { cuda::deeplift_rescale(tig, gg, tog, regg, 1e-10, o); });
      compare_kernel(ctx, "deeplift_rescale (max-pool)", {2 * n}, t,
                     [&](Tensor& o) { cpu::deeplift_rescale(ti, U, Tensor(), reg, 1e-10, o); },
                     [&](Tensor& o) { cuda::deeplift_rescale(tig, Ug, Tensor(), regg, 1e-10, o); });
      compare_kernel(ctx, "deeplift_pool_seed", {2 * n}, t, [&](Tensor& o) { cpu::deeplift_pool_seed(to, g, o); },
                     [&](Tensor& o) { cuda::deeplift_pool_seed(tog, gg, o); });
    }
}
#endif  // LOWPASS_HAVE_CUDA
}
