// CUDA backend, GEMM: matmul and linear (cuBLAS) against the CPU with gradients and gradients of gradients, and the
// TF32 / bf16 switches against their round-off. Run: build/tests/lowpass_tests -ts=cuda (skips with a message
// when no GPU is usable).
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "engine/ops.h"
#include "kernels/cuda/runtime.h"
#include "tests/cuda_test.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;

namespace {

// x rounded to the nearest bfloat16 (ties to even) and back to float32: the CPU twin of cuBLAS's bf16 inputs.
Tensor round_to_bf16(const Tensor& x) {
  std::vector<float> v = x.to_vector<float>();
  for (float& f : v) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;  // finite inputs only (uniform in [-1, 1])
    std::memcpy(&f, &u, 4);
  }
  return Tensor::from_vector(x.ctx(), x.shape(), v);
}

}  // namespace

TEST_SUITE("cuda") {

TEST_CASE("matmul and linear on CUDA tensors: values, gradients and gradients of gradients (cuBLAS)") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 31);
  for (DType t : {DType::F32, DType::F64}) {
    const double tol = t == DType::F32 ? 1e-5 : 1e-12;
    for (auto [M_, K_, N_] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {128, 3, 257}}) {
      auto M = M_; auto K = K_; auto N = N_;  // named copies: clang < 16 cannot capture structured bindings
      INFO(dtype_name(t), " M ", M, " K ", K, " N ", N);
      Tensor a = Tensor::uniform(ctx, {M, K}, -1, 1, t), b = Tensor::uniform(ctx, {K, N}, -1, 1, t);
      Tensor w = Tensor::uniform(ctx, {N, K}, -1, 1, t), bias = Tensor::uniform(ctx, {N}, -1, 1, t);
      Tensor ga = a.to(kGpu), gb = b.to(kGpu), gw = w.to(kGpu), gbias = bias.to(kGpu);
      for (Tensor* l : {&a, &b, &w, &bias, &ga, &gb, &gw, &gbias}) l->set_requires_grad(true);
      // linear(x (M, K), w (N, K)) and matmul(a (M, K), b (K, N)) composed so that second order is non-trivial.
      auto g = [](const Tensor& a, const Tensor& b, const Tensor& w, const Tensor& bias) {
        Tensor h = sigmoid(matmul(a, b));  // (M, N)
        Tensor z = linear(a, w, bias);     // (M, N)
        return sum(mul(h, z), {1}, false);  // (M)
      };
      Tensor yc = g(a, b, w, bias), yg = g(ga, gb, gw, gbias);
      CHECK(!yg.is_cpu());
      CHECK(rel(yg, yc) <= tol);
      Tensor v = Tensor::uniform(ctx, yc.shape(), 0.5, 1.5, t);
      auto dc = grad({yc}, {a, b, w, bias}, {v}, true);
      auto dg = grad({yg}, {ga, gb, gw, gbias}, {v.to(kGpu)}, true);
      for (size_t i = 0; i < 4; ++i) {
        INFO("gradient ", i);
        CHECK(rel(dg[i], dc[i]) <= tol * 10);
      }
      Tensor u = Tensor::uniform(ctx, b.shape(), -1, 1, t);
      auto hc = grad({dc[1]}, {a, w}, {u}, false, true);
      auto hg = grad({dg[1]}, {ga, gw}, {u.to(kGpu)}, false, true);
      CHECK(rel(hg[0], hc[0]) <= tol * 10);
    }
    // Batched 3-D products.
    Tensor a = Tensor::uniform(ctx, {3, 9, 6}, -1, 1, t), b = Tensor::uniform(ctx, {3, 6, 11}, -1, 1, t);
    CHECK(rel(matmul(a.to(kGpu), b.to(kGpu)), matmul(a, b)) <= tol);
  }
}

TEST_CASE("TF32 and bf16 GEMMs stay within their round-off of float32, float64 is unaffected, both off by default") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 32);
  CHECK(cuda::gemm_math(ctx, 0) == cuda::GemmMath::Float32);
  Tensor a = Tensor::uniform(ctx, {256, 512}, -1, 1), b = Tensor::uniform(ctx, {512, 192}, -1, 1);
  Tensor ref = matmul(a, b);
  Tensor plain = matmul(a.to(kGpu), b.to(kGpu));
  CHECK(rel(plain, ref) <= 1e-5);
  auto with = [&](cuda::GemmMath m, const Tensor& x, const Tensor& y) {
    cuda::set_gemm_math(ctx, 0, m);
    Tensor r = matmul(x.to(kGpu), y.to(kGpu)).to(Device{});
    cuda::set_gemm_math(ctx, 0, cuda::GemmMath::Float32);
    return r;
  };
  const double e_tf32 = rel(with(cuda::GemmMath::TF32, a, b), ref);
  const double e_bf16 = rel(with(cuda::GemmMath::BF16, a, b), ref);
  // The bfloat16 twin on the CPU: inputs rounded to nearest-even bfloat16, products summed in float32.
  const double e_emul = rel(with(cuda::GemmMath::BF16, a, b), matmul(round_to_bf16(a), round_to_bf16(b)));
  MESSAGE("relative error vs float32: TF32 " << e_tf32 << ", bf16 " << e_bf16 << "; bf16 vs its CPU twin "
                                             << e_emul);
  CHECK(e_tf32 <= 5e-3);  // 10-bit mantissa products, float32 sums
  CHECK(e_bf16 <= 1e-2);  // 7-bit mantissa products, float32 sums
  CHECK(e_bf16 > e_tf32);  // the switch reached cuBLAS: bfloat16 is 8× coarser than TF32
  CHECK(e_emul <= 1e-5);   // and it rounds the inputs as the twin does
  CHECK(rel(plain, ref) <= 1e-5);  // back to float32 after each
  Tensor a64 = a.to(DType::F64), b64 = b.to(DType::F64);
  CHECK(rel(with(cuda::GemmMath::BF16, a64, b64), matmul(a64, b64)) <= 1e-12);  // float64 is never reduced
}

}  // TEST_SUITE
