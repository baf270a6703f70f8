// CUDA backend: every CUDA kernel against its CPU twin on random inputs with awkward sizes
// (‖Δ‖/‖ref‖ ≤ 1e-5 float32, 1e-12 float64), NaN canaries after outputs, allocator reuse: the runtime, element-wise,
// reduction, shape, conv1d, spectral and optimiser kernels and the ops on CUDA tensors. Host-side index maths:
// test_cuda_host.cpp; batch norm, max-pool, softmax and DeepLIFT kernels: test_cuda_nn.cpp.
// Run: build/tests/lowpass_tests -ts=cuda  (GPU cases skip with a message when no GPU is usable).
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
#include "kernels/cpu/optim.h"
#include "kernels/cpu/shape.h"
#include "kernels/cpu/spectral.h"
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/cuda_state.h"
#endif

using namespace lowpass;
using namespace lowpass::test;

TEST_SUITE("cuda") {

// ---------------- runtime on the GPU ----------------
TEST_CASE("runtime: copies round-trip, memset, allocator reuses blocks after warm-up") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 11);
  Tensor h = rnd(ctx, {3, 1001}, -2, 2, DType::F32);
  Tensor d = h.to(kGpu);
  CHECK(!d.is_cpu());
  CHECK(rel(d.to(Device{}), h) == 0.0);
  Tensor d2 = d.clone();  // device-to-device
  CHECK(rel(d2.to(Device{}), h) == 0.0);
  d2.fill_(0.0);
  for (double v : d2.to_vector<double>()) CHECK(v == 0.0);
  cuda::fill(d2.raw(), d2.numel(), -1.25, false, 0);
  for (double v : d2.to_vector<double>()) CHECK(v == -1.25);
  Tensor d64 = Tensor::empty(ctx, {5}, DType::F64, kGpu);
  cuda::fill(d64.raw(), 5, 0.1, true, 0);
  for (double v : d64.to_vector<double>()) CHECK(v == 0.1);
  // A "training step" that allocates the same sizes every time: no cudaMalloc after the first.
  auto step = [&] {
    Tensor a = Tensor::empty(ctx, {64, 33, 129}, DType::F32, kGpu);
    Tensor b = Tensor::empty(ctx, {7}, DType::F64, kGpu);
    Tensor c = Tensor::empty(ctx, {1}, DType::F32, kGpu);
    return a.numel() + b.numel() + c.numel();
  };
  step();
  auto before = cuda::allocator_stats(0);
  for (int i = 0; i < 10; ++i) step();
  auto after = cuda::allocator_stats(0);
  CHECK(after.device_mallocs == before.device_mallocs);
  CHECK(after.cache_hits >= before.cache_hits + 30);
  CHECK(after.bytes_in_use == before.bytes_in_use);
  cuda::empty_cache(0);
  CHECK(cuda::allocator_stats(0).bytes_cached == 0);
}

// ---------------- element-wise ----------------
#ifdef LOWPASS_HAVE_CUDA
TEST_CASE("unary kernels match the CPU") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 12);
  struct Op { UnaryOp op; double lo, hi, p; const char* name; };
  const Op ops[] = {
      {UnaryOp::Neg, -3, 3, 0, "neg"},        {UnaryOp::Abs, -3, 3, 0, "abs"},
      {UnaryOp::Square, -3, 3, 0, "square"},  {UnaryOp::Sqrt, 0.01, 4, 0, "sqrt"},
      {UnaryOp::Rsqrt, 0.05, 4, 0, "rsqrt"},  {UnaryOp::Exp, -5, 5, 0, "exp"},
      {UnaryOp::Log, 0.01, 9, 0, "log"},      {UnaryOp::Log1p, -0.9, 5, 0, "log1p"},
      {UnaryOp::Sigmoid, -9, 9, 0, "sigmoid"}, {UnaryOp::Softplus, -9, 9, 0, "softplus"},
      {UnaryOp::Lgamma, 0.05, 9, 0, "lgamma"}, {UnaryOp::Digamma, 0.05, 9, 0, "digamma"},
      {UnaryOp::Trigamma, 0.05, 9, 0, "trigamma"}, {UnaryOp::Relu, -3, 3, 0, "relu"},
      {UnaryOp::Sign, -3, 3, 0, "sign"},      {UnaryOp::AddScalar, -3, 3, 0.7, "add_scalar"},
      {UnaryOp::MulScalar, -3, 3, -1.3, "mul_scalar"}, {UnaryOp::PowScalar, 0.1, 3, 1.5, "pow1.5"},
      {UnaryOp::PowScalar, -3, 3, 2.0, "pow2"}, {UnaryOp::PowScalar, -3, 3, 3.0, "pow3"},
      {UnaryOp::GtScalar, -3, 3, 0.25, "gt"}, {UnaryOp::Copy, -3, 3, 0, "copy"},
  };
  for (DType t : {DType::F32, DType::F64})
    for (Shape s : {Shape{1}, Shape{7}, Shape{3, 5, 33}, Shape{2, 1, 1025}, Shape{70001}})
      for (const Op& o : ops) {
        Tensor a = rnd(ctx, s, o.lo, o.hi, t);
        Tensor ag = a.to(kGpu);
        compare_kernel(ctx, o.name, s, t, [&](Tensor& out) { cpu::unary(o.op, a, out, o.p); },
                       [&](Tensor& out) { cuda::unary(o.op, ag, out, o.p); });
      }
  // relu keeps NaN on the GPU as on the CPU (compare_kernel's norms cannot hold NaN: checked directly).
  {
    const float nan = std::nanf("");
    Tensor n = Tensor::from_vector(ctx, {4}, std::vector<float>{nan, -1.f, 2.f, nan}).to(kGpu);
    Tensor out = Tensor::empty(ctx, {4}, DType::F32, kGpu);
    cuda::unary(UnaryOp::Relu, n, out, 0);
    auto v = out.to_vector<float>();
    CHECK((std::isnan(v[0]) && v[1] == 0.f && v[2] == 2.f && std::isnan(v[3])));
    Tensor g = Tensor::from_vector(ctx, {4}, std::vector<float>{1.f, 2.f, 3.f, 4.f}).to(kGpu);
    Tensor m = Tensor::empty(ctx, {4}, DType::F32, kGpu);
    cuda::binary(BinaryOp::ReluMask, g, n, m);
    auto mv = m.to_vector<float>();  // passes where the input is NaN, as on the CPU
    CHECK((mv[0] == 1.f && mv[1] == 0.f && mv[2] == 3.f && mv[3] == 4.f));
    // max-pool keeps a NaN of its window and routes the gradient to it
    Tensor xp = Tensor::from_vector(ctx, {1, 1, 6}, std::vector<float>{1.f, nan, 5.f, 0.5f, 0.25f, 0.125f}).to(kGpu);
    auto mp = max_pool1d(xp, 3, 3).to_vector<float>();
    CHECK((std::isnan(mp[0]) && mp[1] == 0.5f));
  }
  // eq_scalar needs hits: compare with a value the tensor holds.
  Tensor a = Tensor::from_vector(ctx, {5}, std::vector<float>{1.5f, -2.f, 1.5f, 0.f, 3.f});
  Tensor ag = a.to(kGpu);
  compare_kernel(ctx, "eq", {5}, DType::F32, [&](Tensor& out) { cpu::unary(UnaryOp::EqScalar, a, out, 1.5); },
                 [&](Tensor& out) { cuda::unary(UnaryOp::EqScalar, ag, out, 1.5); });
}

TEST_CASE("binary kernels with broadcasting match the CPU") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 13);
  struct Pair { Shape a, b; };
  const Pair pairs[] = {
      {{1}, {1}},          {{7}, {7}},          {{1}, {5}},          {{3, 5}, {1}},        {{2, 3, 33}, {3, 1}},
      {{2, 3, 33}, {1, 3, 1}}, {{2, 1, 33}, {2, 4, 1}}, {{4, 1, 3, 1, 5}, {2, 3, 6, 5}}, {{5, 1}, {1, 6}},
      {{64, 17, 129}, {17, 1}}, {{3, 1025}, {3, 1025}}, {{}, {4}},
  };
  const std::pair<BinaryOp, const char*> ops[] = {{BinaryOp::Add, "add"},
                                                  {BinaryOp::Sub, "sub"},
                                                  {BinaryOp::Mul, "mul"},
                                                  {BinaryOp::Div, "div"},
                                                  {BinaryOp::ReluMask, "relu_mask"}};
  for (DType t : {DType::F32, DType::F64})
    for (const Pair& p : pairs)
      for (auto [op_, name_] : ops)
        for (bool swap : {false, true}) {
          auto op = op_; auto name = name_;  // named copies: clang < 16 cannot capture structured bindings
          const Shape& sa = swap ? p.b : p.a;
          const Shape& sb = swap ? p.a : p.b;
          Tensor a = rnd(ctx, sa, -2, 2, t);
          Tensor b = op == BinaryOp::Div ? rnd(ctx, sb, 0.5, 2, t) : rnd(ctx, sb, -2, 2, t);
          Tensor ag = a.to(kGpu), bg = b.to(kGpu);
          Shape os = broadcast_shapes(sa, sb);
          compare_kernel(ctx, name, os, t, [&](Tensor& out) { cpu::binary(op, a, b, out); },
                         [&](Tensor& out) { cuda::binary(op, ag, bg, out); });
        }
}

TEST_CASE("cast kernels match the CPU") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 14);
  for (DType from : {DType::F32, DType::F64})
    for (DType to : {DType::F32, DType::F64})
      for (Shape s : {Shape{1}, Shape{33}, Shape{2, 3, 1001}}) {
        Tensor a = rnd(ctx, s, -3, 3, from);
        Tensor ag = a.to(kGpu);
        compare_kernel(ctx, "cast", s, to, [&](Tensor& out) { cpu::cast(a, out); },
                       [&](Tensor& out) { cuda::cast(ag, out); });
      }
}

// ---------------- reductions ----------------
TEST_CASE("reduce_axis, max_axis and expand_axis match the CPU") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 15);
  struct Geo { int64_t outer, n, inner; };
  const Geo geos[] = {{1, 1, 1},  {1, 7, 1},    {3, 1000, 1}, {5, 33, 1},  {1, 1, 33},   {2, 65, 31},
                      {4, 3, 1025}, {1, 4097, 3}, {300, 5, 2},  {7, 1, 1},  {1, 100003, 1}, {2, 257, 64}, {70001, 2, 3},
                      {63, 4103, 1}, {64, 2051, 1}};  // 1024 threads per row below 64 rows, 256 from 64
  for (DType t : {DType::F32, DType::F64})
    for (const Geo& g : geos) {
      Tensor a = rnd(ctx, {g.outer, g.n, g.inner}, -1, 2, t);
      Tensor ag = a.to(kGpu);
      compare_kernel(ctx, "reduce_axis", {g.outer, 1, g.inner}, t,
                     [&](Tensor& out) { cpu::reduce_axis(a, out, g.outer, g.n, g.inner, 0.37); },
                     [&](Tensor& out) { cuda::reduce_axis(ag, out, g.outer, g.n, g.inner, 0.37); });
      compare_kernel(ctx, "max_axis", {g.outer, 1, g.inner}, t,
                     [&](Tensor& out) { cpu::max_axis(a, out, g.outer, g.n, g.inner); },
                     [&](Tensor& out) { cuda::max_axis(ag, out, g.outer, g.n, g.inner); });
      Tensor s = rnd(ctx, {g.outer, 1, g.inner}, -1, 2, t);
      Tensor sg = s.to(kGpu);
      compare_kernel(ctx, "expand_axis", {g.outer, g.n, g.inner}, t,
                     [&](Tensor& out) { cpu::expand_axis(s, out, g.outer, g.n, g.inner); },
                     [&](Tensor& out) { cuda::expand_axis(sg, out, g.outer, g.n, g.inner); });
    }
}

// ---------------- shape kernels ----------------
TEST_CASE("shape kernels (permute, flip, window, concat slot, index gather/scatter) match the CPU") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 16);
  for (DType t : {DType::F32, DType::F64}) {
    Tensor a = rnd(ctx, {2, 3, 5, 7}, -1, 1, t);
    Tensor ag = a.to(kGpu);
    for (std::vector<int64_t> perm : {std::vector<int64_t>{0, 1, 2, 3}, {3, 2, 1, 0}, {0, 2, 1, 3}, {1, 3, 0, 2}}) {
      Shape os;
      for (int64_t p : perm) os.push_back(a.shape()[p]);
      compare_kernel(ctx, "permute", os, t, [&](Tensor& out) { cpu::permute(a, out, perm); },
                     [&](Tensor& out) { cuda::permute(ag, out, perm); });
    }
    for (std::vector<bool> fl : {std::vector<bool>{false, false, false, true}, {true, false, true, false},
                                 {true, true, true, true}, {false, false, false, false}})
      compare_kernel(ctx, "flip", a.shape(), t, [&](Tensor& out) { cpu::flip(a, out, fl); },
                     [&](Tensor& out) { cuda::flip(ag, out, fl); });
    // (outer, n, inner) = (6, 5, 7) views of a.
    for (auto [n_out_, off_] : {std::pair<int64_t, int64_t>{3, 1}, {9, -2}, {5, 0}, {1, 4}, {4, 6}, {2, -5}}) {
      auto n_out = n_out_; auto off = off_;  // named copies: clang < 16 cannot capture structured bindings
      compare_kernel(ctx, "window_axis", {6, n_out, 7}, t,
                     [&](Tensor& out) { cpu::window_axis(a, out, 6, 5, n_out, 7, off); },
                     [&](Tensor& out) { cuda::window_axis(ag, out, 6, 5, n_out, 7, off); });
    }
    // copy_into_axis writes a slot only: give both outputs the same background first.
    Tensor bg = rnd(ctx, {6, 11, 7}, 5, 6, t);
    {
      Tensor ref = bg.clone();
      cpu::copy_into_axis(a, ref, 6, 5, 11, 7, 4);
      Tensor got = gpu_out(ctx, {6, 11, 7}, t);
      got.copy_(bg);
      cuda::copy_into_axis(ag, got, 6, 5, 11, 7, 4);
      CHECK(rel(got, ref) == 0.0);
      CHECK(canaries_intact(got));
    }
    std::vector<int64_t> index = {4, 0, 0, 2, 4, 4, 1};
    compare_kernel(ctx, "index_select", {6, 7, 7}, t,
                   [&](Tensor& out) { cpu::index_select(a, out, 6, 5, 7, index); },
                   [&](Tensor& out) { cuda::index_select(ag, out, 6, 5, 7, index); });
    Tensor g = rnd(ctx, {6, 7, 7}, -1, 1, t);
    Tensor gg = g.to(kGpu);
    compare_kernel(ctx, "index_add", {6, 5, 7}, t, [&](Tensor& out) { cpu::index_add(g, out, 6, 5, 7, index); },
                   [&](Tensor& out) { cuda::index_add(gg, out, 6, 5, 7, index); });
  }
}

// ---------------- conv1d ----------------
TEST_CASE("conv1d kernels (GEMM path, one-hot gather/scatter, input and weight grads) match the CPU") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 20);
  struct Geo { int64_t B, Cin, L, Cout, K, dil, pl, pr, groups; bool onehot; };
  const Geo geos[] = {
      {1, 1, 1, 1, 1, 1, 0, 0, 1, false},    {2, 3, 17, 5, 3, 1, 1, 1, 1, false},
      {3, 4, 33, 6, 5, 2, 4, 4, 1, false},   {2, 6, 29, 4, 3, 4, 0, 0, 2, false},
      {2, 8, 50, 8, 3, 16, 16, 16, 1, false}, {1, 5, 7, 3, 3, 3, 0, 0, 1, false},
      {4, 4, 101, 8, 21, 1, 10, 10, 1, true}, {3, 4, 40, 5, 7, 3, 0, 0, 1, true},
      {2, 4, 9, 3, 5, 2, 0, 3, 1, true},      {2, 64, 64, 64, 3, 1, 1, 1, 1, false},
      {1, 9, 31, 6, 3, 2, 3, 1, 3, false},
  };
  CudaState& st = cuda::state(ctx, 0);
  for (DType t : {DType::F32, DType::F64})
    for (bool chunked : {false, true})
      for (const Geo& q : geos) {
        st.conv_workspace_bytes = chunked ? 1 : (int64_t{256} << 20);  // 1 byte: one batch per chunk
        Conv1dOpts o{q.dil, q.pl, q.pr, q.groups};
        int64_t Lout = q.L + q.pl + q.pr - q.dil * (q.K - 1);
        REQUIRE(Lout >= 1);
        Tensor x;
        if (q.onehot) {  // one-hot DNA with some all-zero (N) columns
          std::vector<double> v(static_cast<size_t>(q.B * q.Cin * q.L), 0.0);
          for (int64_t b = 0; b < q.B; ++b)
            for (int64_t l = 0; l < q.L; ++l) {
              int64_t code = ctx.rng().randint(-1, q.Cin);
              if (code >= 0) v[static_cast<size_t>((b * q.Cin + code) * q.L + l)] = 1.0;
            }
          x = Tensor::from_vector(ctx, {q.B, q.Cin, q.L}, v).to(t);
        } else {
          x = rnd(ctx, {q.B, q.Cin, q.L}, -1, 1, t);
        }
        Tensor w = rnd(ctx, {q.Cout, q.Cin / q.groups, q.K}, -1, 1, t), bias = rnd(ctx, {q.Cout}, -1, 1, t);
        Tensor dy = rnd(ctx, {q.B, q.Cout, Lout}, -1, 1, t);
        Tensor xg = x.to(kGpu), wg = w.to(kGpu), bg = bias.to(kGpu), dyg = dy.to(kGpu);
        INFO("B ", q.B, " Cin ", q.Cin, " L ", q.L, " Cout ", q.Cout, " K ", q.K, " d ", q.dil, " pad ", q.pl, "/",
             q.pr, " groups ", q.groups, " one-hot ", q.onehot, " chunked ", chunked);
        compare_kernel(ctx, "conv1d fwd", {q.B, q.Cout, Lout}, t,
                       [&](Tensor& y) { cpu::conv1d_fwd_cpu(x, w, bias, y, o); },
                       [&](Tensor& y) { cuda::conv1d_fwd_cuda(xg, wg, bg, y, o); });
        cpu::CorrGeom g{q.B, q.groups, q.Cin / q.groups, q.Cout / q.groups, q.L, Lout, q.K, q.dil, q.pl};
        compare_kernel(ctx, "conv1d fwd (GEMM path, no bias)", {q.B, q.Cout, Lout}, t,
                       [&](Tensor& y) { cpu::conv1d_fwd_cpu(x, w, Tensor(), y, o); },
                       [&](Tensor& y) { cuda::conv1d_corr(xg, wg, Tensor(), y, g); });
        compare_kernel(ctx, "conv1d input grad", {q.B, q.Cin, q.L}, t,
                       [&](Tensor& dx) { cpu::conv1d_bwd_input_cpu(dy, w, dx, o); },
                       [&](Tensor& dx) { cuda::conv1d_bwd_input_cuda(dyg, wg, dx, o); });
        compare_kernel(ctx, "conv1d weight grad", w.shape(), t,
                       [&](Tensor& dw) { cpu::conv1d_bwd_weight_cpu(x, dy, dw, o); },
                       [&](Tensor& dw) { cuda::conv1d_bwd_weight_cuda(xg, dyg, dw, o); });
        compare_kernel(ctx, "conv1d weight grad (GEMM path)", w.shape(), t,
                       [&](Tensor& dw) { cpu::conv1d_bwd_weight_cpu(x, dy, dw, o); },
                       [&](Tensor& dw) { cuda::conv1d_corr_wgrad(xg, dyg, dw, g); });
        if (q.onehot) {
          std::vector<int8_t> codes_ref;
          REQUIRE(cpu::onehot_codes(x, codes_ref));
          auto codes = Storage::allocate(codes_ref.size(), kGpu);
          CHECK(cuda::onehot_codes(xg, static_cast<int8_t*>(codes->data)));
          std::vector<int8_t> got(codes_ref.size());
          cuda::copy_d2h(got.data(), codes->data, got.size(), 0);
          CHECK(got == codes_ref);
        }
      }
  st.conv_workspace_bytes = int64_t{256} << 20;
  // Not one-hot: a 2 in one column, or two ones in a column.
  for (double v2 : {2.0, 1.0}) {
    std::vector<double> v(2 * 4 * 5, 0.0);
    v[0] = 1.0;
    v[5] = v2;  // channel 1, position 0
    Tensor xg = Tensor::from_vector(ctx, {2, 4, 5}, v).to(DType::F32).to(kGpu);
    auto codes = Storage::allocate(10, kGpu);
    CHECK(!cuda::onehot_codes(xg, static_cast<int8_t*>(codes->data)));
  }
}

// ---------------- spectral ----------------
TEST_CASE("spectral kernels (smoothing, batched rfft and its adjoint, |X|) match the CPU") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 21);
  for (DType t : {DType::F32, DType::F64})
    for (Shape s : {Shape{1, 1}, Shape{3, 2}, Shape{2, 3, 17}, Shape{4, 1000}, Shape{2, 1, 1346}, Shape{5, 997},
                    Shape{64, 1024}}) {
      const int64_t L = s.back(), R = shape_numel(s) / L, F = L / 2 + 1;
      Shape fs = s;
      fs.back() = F;
      Tensor x = rnd(ctx, s, 0.1, 2, t);  // attribution-like: non-negative with a DC component
      Tensor xg = x.to(kGpu);
      for (double sigma : {3.0, 1.0, 0.0}) {
        std::vector<double> taps = gaussian_kernel(sigma);
        compare_kernel(ctx, "correlate_last", s, t, [&](Tensor& o) { cpu::correlate_last(x, o, taps); },
                       [&](Tensor& o) { cuda::correlate_last(xg, o, taps); });
      }
      Tensor re_ref = Tensor::empty(ctx, fs, t), im_ref = Tensor::empty(ctx, fs, t);
      cpu::rfft(x, re_ref, im_ref);
      Tensor re = gpu_out(ctx, fs, t), im = gpu_out(ctx, fs, t);
      cuda::rfft(xg, re, im);
      INFO("rfft ", shape_str(s), " ", dtype_name(t), " R ", R);
      CHECK(rel(re, re_ref) <= tol_for(t));
      // Relative to the whole spectrum: im is exactly 0 at DC and Nyquist (all of it when L <= 2).
      auto diff2 = [](const Tensor& a, const Tensor& b) {
        auto va = a.to_vector<double>(), vb = b.to_vector<double>();
        double s2 = 0;
        for (size_t i = 0; i < va.size(); ++i) s2 += (va[i] - vb[i]) * (va[i] - vb[i]);
        return s2;
      };
      Tensor zero = Tensor::zeros(ctx, fs, t);
      double spec = std::sqrt(diff2(re_ref, zero) + diff2(im_ref, zero));
      CHECK(std::sqrt(diff2(im, im_ref)) / spec <= tol_for(t));
      CHECK((canaries_intact(re) && canaries_intact(im)));
      Tensor mag_ref = Tensor::empty(ctx, fs, t);
      cpu::complex_abs(re_ref, im_ref, mag_ref);
      Tensor reg = re_ref.to(kGpu), img = im_ref.to(kGpu);
      compare_kernel(ctx, "complex_abs", fs, t, [&](Tensor& o) { cpu::complex_abs(re_ref, im_ref, o); },
                     [&](Tensor& o) { cuda::complex_abs(reg, img, o); });
      Tensor gre = rnd(ctx, fs, -1, 1, t), gim = rnd(ctx, fs, -1, 1, t);
      Tensor greg = gre.to(kGpu), gimg = gim.to(kGpu);
      compare_kernel(ctx, "rfft_adjoint (re, im)", s, t, [&](Tensor& o) { cpu::rfft_adjoint(gre, gim, o, L); },
                     [&](Tensor& o) { cuda::rfft_adjoint(greg, gimg, o, L); });
      compare_kernel(ctx, "rfft_adjoint (re only)", s, t, [&](Tensor& o) { cpu::rfft_adjoint(gre, Tensor(), o, L); },
                     [&](Tensor& o) { cuda::rfft_adjoint(greg, Tensor(), o, L); });
      compare_kernel(ctx, "rfft_adjoint (im only)", s, t, [&](Tensor& o) { cpu::rfft_adjoint(Tensor(), gim, o, L); },
                     [&](Tensor& o) { cuda::rfft_adjoint(Tensor(), gimg, o, L); });
    }
}

TEST_CASE("cuFFT plans on a device full of cached blocks: work areas from the allocator, plan creation retried") {
  // docs/cuda.md, "Runtime": plans are made without cuFFT's auto-allocation and take their work area from the caching
  // allocator per execution, and a plan creation that fails for want of memory empties the cache and tries again.
  // Before, a new plan size on a device whose free memory sat in cached blocks threw CUFFT_ALLOC_FAILED.
  LP_SKIP_WITHOUT_GPU();
  Context ctx(1, 23);
  for (DType t : {DType::F32, DType::F64}) {
    const int64_t L = 1000, F = L / 2 + 1;
    Tensor x = rnd(ctx, {37, L}, 0.1, 2, t), xg = x.to(kGpu);
    Tensor re_ref = Tensor::empty(ctx, {37, F}, t), im_ref = Tensor::empty(ctx, {37, F}, t);
    cpu::rfft(x, re_ref, im_ref);
    Tensor re = gpu_out(ctx, {37, F}, t), im = gpu_out(ctx, {37, F}, t);
    cuda::rfft(xg, re, im);  // a warm plan: a repeat allocates nothing from the device
    const auto before = cuda::allocator_stats(0);
    cuda::rfft(xg, re, im);
    CHECK(cuda::allocator_stats(0).device_mallocs == before.device_mallocs);
    // New plan sizes (a new batch, a new length) on a device whose free memory is all in cached blocks. Inputs and
    // outputs are allocated first, and the last blocks have the bucket of rfft's complex buffer, so that buffer is a
    // cache hit and the plan (its creation, its work area) is the first to need memory the cache holds.
    for (int64_t R : {int64_t{53}, int64_t{29}}) {
      const int64_t Ln = R == 53 ? L : 777, Fn = Ln / 2 + 1;
      Tensor xn = rnd(ctx, {R, Ln}, 0.1, 2, t);
      Tensor rr = Tensor::empty(ctx, {R, Fn}, t), ir = Tensor::empty(ctx, {R, Fn}, t);
      cpu::rfft(xn, rr, ir);
      Tensor xng = xn.to(kGpu), rg = Tensor::empty(ctx, {R, Fn}, t, kGpu), ig = Tensor::empty(ctx, {R, Fn}, t, kGpu);
      Tensor back = Tensor::empty(ctx, {R, Ln}, t, kGpu);
      std::vector<void*> held;
      const size_t zbytes = static_cast<size_t>(R * Fn) * 2 * dtype_size(t);
      for (size_t bytes : {size_t{1} << 30, size_t{64} << 20, zbytes}) {
        try {
          for (;;) held.push_back(cuda::alloc(bytes, 0));
        } catch (const OutOfMemory&) {
        }
      }
      MESSAGE("filled the device with " << held.size() << " blocks");
      for (void* p : held) cuda::free(p, 0, 0);
      CHECK_NOTHROW(cuda::rfft(xng, rg, ig));
      CHECK(rel(rg, rr) <= tol_for(t));
      CHECK_NOTHROW(cuda::rfft_adjoint(rg, ig, back, Ln));
      cuda::synchronize(0);
    }
    cuda::empty_cache(0);
  }
}

// ---------------- optimisers ----------------
TEST_CASE("Adam and SGD updates match the CPU") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 22);
  for (DType t : {DType::F32, DType::F64})
    for (int64_t n : {int64_t{1}, int64_t{37}, int64_t{100003}})
      for (int variant = 0; variant < 4; ++variant) {
        AdamScalars a{0.9, 0.999, 1e-8, variant % 2 ? 0.01 : 0.0, 1e-3 / (1 - 0.9 * 0.9), std::sqrt(1 - 0.999 * 0.999),
                      variant >= 2, variant == 3};
        Tensor p = rnd(ctx, {n}, -1, 1, t), g = rnd(ctx, {n}, -1, 1, t), m = rnd(ctx, {n}, -0.1, 0.1, t);
        Tensor v = rnd(ctx, {n}, 0.0, 0.01, t), mx = rnd(ctx, {n}, 0.0, 0.01, t);
        Tensor pg = p.to(kGpu), gg = g.to(kGpu), mg = m.to(kGpu), vg = v.to(kGpu), mxg = mx.to(kGpu);
        Tensor none;
        cpu::adam_update(p, g, m, v, a.amsgrad ? mx : none, a);
        cuda::adam_update(pg, gg, mg, vg, a.amsgrad ? mxg : none, a);
        INFO("adam n ", n, " variant ", variant, " ", dtype_name(t));
        CHECK(rel(pg, p) <= tol_for(t));
        CHECK(rel(mg, m) <= tol_for(t));
        CHECK(rel(vg, v) <= tol_for(t));
        if (a.amsgrad) CHECK(rel(mxg, mx) <= tol_for(t));
        SgdScalars sg{0.01, variant ? 0.9 : 0.0, variant == 2 ? 0.1 : 0.0, variant % 2 ? 1e-4 : 0.0, variant == 3,
                      variant == 1, variant == 2};
        Tensor buf = rnd(ctx, {n}, -0.1, 0.1, t), bufg = buf.to(kGpu);
        Tensor& b_cpu = sg.momentum != 0 ? buf : none;
        Tensor& b_gpu = sg.momentum != 0 ? bufg : none;
        cpu::sgd_update(p, g, b_cpu, sg);
        cuda::sgd_update(pg, gg, b_gpu, sg);
        INFO("sgd variant ", variant);
        CHECK(rel(pg, p) <= tol_for(t));
        if (sg.momentum != 0) CHECK(rel(bufg, buf) <= tol_for(t));
      }
}
#endif  // LOWPASS_HAVE_CUDA

// ---------------- through the ops: dispatch, autograd and second order on the GPU ----------------
TEST_CASE("ops on CUDA tensors: values, gradients and gradients of gradients equal the CPU's") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 18);
  for (DType t : {DType::F32, DType::F64}) {
    double tol = t == DType::F32 ? 1e-4 : 1e-10;  // composed graphs: several kernels deep
    Tensor x = rnd(ctx, {3, 4, 37}, -1, 1, t), w = rnd(ctx, {4, 1}, 0.5, 1.5, t), b = rnd(ctx, {37}, -1, 1, t);
    auto f = [](const Tensor& x, const Tensor& w, const Tensor& b) {
      Tensor h = sigmoid(add(mul(x, w), b));
      Tensor p = permute(flip(h, {2}), {0, 2, 1});  // (3, 37, 4)
      Tensor q = concat({slice(p, 1, 2, 30), pad(p, 1, 1, 0)}, 1);
      Tensor r = log_softmax(mul_scalar(q, 3.0), 2);
      return add(mean(square(r), {0, 2}), sum(softplus(x), {0, 1, 2}, false));
    };
    Tensor gw = w.to(kGpu), gx = x.to(kGpu), gb = b.to(kGpu);
    for (Tensor* leaf : {&x, &w, &b, &gx, &gw, &gb}) leaf->set_requires_grad(true);
    Tensor y_cpu = f(x, w, b), y_gpu = f(gx, gw, gb);
    CHECK(!y_gpu.is_cpu());
    CHECK(rel(y_gpu, y_cpu) <= tol);
    Tensor v = rnd(ctx, y_cpu.shape(), 0.5, 1.5, t);
    auto g_cpu = grad({y_cpu}, {x, w, b}, {v}, true);
    auto g_gpu = grad({y_gpu}, {gx, gw, gb}, {v.to(kGpu)}, true);
    for (size_t i = 0; i < 3; ++i) {
      INFO("gradient ", i, " ", dtype_name(t));
      CHECK(!g_gpu[i].is_cpu());
      CHECK(rel(g_gpu[i], g_cpu[i]) <= tol);
    }
    // Second order: d/dx <grad_w, u>.
    Tensor u = rnd(ctx, w.shape(), -1, 1, t);
    auto h_cpu = grad({g_cpu[1]}, {x}, {u}, false);
    auto h_gpu = grad({g_gpu[1]}, {gx}, {u.to(kGpu)}, false);
    CHECK(rel(h_gpu[0], h_cpu[0]) <= tol);
  }
}

TEST_CASE("nn ops on CUDA tensors: batch norm (train, eval, running stats), max-pool, gradients") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 19);
  for (DType t : {DType::F32, DType::F64}) {
    double tol = t == DType::F32 ? 1e-4 : 1e-10;
    Tensor x = rnd(ctx, {5, 3, 41}, -1, 2, t), gamma = rnd(ctx, {3}, 0.5, 1.5, t), beta = rnd(ctx, {3}, -1, 1, t);
    Tensor rm = rnd(ctx, {3}, -1, 1, t), rv = rnd(ctx, {3}, 0.5, 2, t);
    Tensor gx = x.to(kGpu), ggam = gamma.to(kGpu), gbet = beta.to(kGpu), grm = rm.to(kGpu), grv = rv.to(kGpu);
    for (Tensor* leaf : {&x, &gamma, &beta, &gx, &ggam, &gbet}) leaf->set_requires_grad(true);
    auto f = [](const Tensor& x, const Tensor& g, const Tensor& b, Tensor rm, Tensor rv) {
      Tensor y = relu(batch_norm(x, g, b, rm, rv, true));
      return max_pool1d(y, 3, 2);
    };
    Tensor y_cpu = f(x, gamma, beta, rm, rv), y_gpu = f(gx, ggam, gbet, grm, grv);
    CHECK(rel(y_gpu, y_cpu) <= tol);
    CHECK(rel(grm, rm) <= tol);
    CHECK(rel(grv, rv) <= tol);
    Tensor v = rnd(ctx, y_cpu.shape(), -1, 1, t);
    for (bool create : {false, true}) {
      auto g_cpu = grad({y_cpu}, {x, gamma, beta}, {v}, create);
      auto g_gpu = grad({y_gpu}, {gx, ggam, gbet}, {v.to(kGpu)}, create);
      for (size_t i = 0; i < 3; ++i) {
        INFO("gradient ", i, " create_graph ", create, " ", dtype_name(t));
        CHECK(rel(g_gpu[i], g_cpu[i]) <= tol);
      }
    }
    Tensor e_cpu = batch_norm(x, gamma, beta, rm, rv, false), e_gpu = batch_norm(gx, ggam, gbet, grm, grv, false);
    CHECK(rel(e_gpu, e_cpu) <= tol);
  }
}

}  // TEST_SUITE
