// matmul (2-D, batched 3-D) and linear (x·wᵀ + b): forward against plain loops for every GEMM backend,
// gradients and gradients of gradients against finite differences. Run: build/tests/lowpass_tests -ts=linear
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "kernels/cpu/gemm.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;

namespace {
// C = op(A)·op(B) by the definition, double.
std::vector<double> ref_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const std::vector<double>& a,
                             const std::vector<double>& b) {
  std::vector<double> c(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k)
        c[size_t(i * N + j)] += a[size_t(ta ? k * M + i : i * K + k)] * b[size_t(tb ? j * K + k : k * N + j)];
  return c;
}
double max_abs_diff(const std::vector<double>& x, const std::vector<double>& y) {
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e = std::max(e, std::isfinite(x[i]) ? std::abs(x[i] - y[i]) : 1e30);
  return e;
}
}  // namespace

TEST_SUITE("linear") {
TEST_CASE("GEMM backends match the definition, all transposes, beta 0 ignores NaN in C") {
  Context ctx(2, 21);
  std::vector<cpu::GemmBackend> backends{cpu::GemmBackend::Eigen};
  if (cpu::have_openblas()) backends.push_back(cpu::GemmBackend::OpenBlas);
  for (auto be : backends)
    for (auto [M_, N_, K_] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 1}, {3, 5, 7}, {65, 33, 17},
                                                                            {130, 97, 300}, {2, 600, 5}})
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
      auto M = M_; auto N = N_; auto K = K_;  // named copies: clang < 16 cannot capture structured bindings
          INFO(cpu::gemm_backend_name(be), " M", M, " N", N, " K", K, " ta", ta, " tb", tb);
          Tensor a = Tensor::uniform(ctx, ta ? Shape{K, M} : Shape{M, K}, -1, 1);
          Tensor b = Tensor::uniform(ctx, tb ? Shape{N, K} : Shape{K, N}, -1, 1);
          auto want = ref_gemm(ta, tb, M, N, K, a.to_vector<double>(), b.to_vector<double>());
          Tensor c = Tensor::full(ctx, {M, N}, std::numeric_limits<double>::quiet_NaN());
          cpu::gemm<float>(ctx, ta, tb, M, N, K, 1.0f, a.data<float>(), ta ? M : K, b.data<float>(), tb ? K : N, 0.0f,
                           c.data<float>(), N, be);
          CHECK(max_abs_diff(c.to_vector<double>(), want) < 1e-5 * std::sqrt(double(K)));
          // beta = 1 accumulates
          cpu::gemm<float>(ctx, ta, tb, M, N, K, 2.0f, a.data<float>(), ta ? M : K, b.data<float>(), tb ? K : N,
                           1.0f, c.data<float>(), N, be);
          for (auto& v : want) v *= 3.0;
          CHECK(max_abs_diff(c.to_vector<double>(), want) < 3e-5 * std::sqrt(double(K)));
          Tensor a64 = a.to(DType::F64), b64 = b.to(DType::F64);
          Tensor c64 = Tensor::full(ctx, {M, N}, std::numeric_limits<double>::quiet_NaN(), DType::F64);
          cpu::gemm<double>(ctx, ta, tb, M, N, K, 3.0, a64.data<double>(), ta ? M : K, b64.data<double>(),
                            tb ? K : N, 0.0, c64.data<double>(), N, be);
          CHECK(max_abs_diff(c64.to_vector<double>(), want) < 1e-12 * double(K));
        }
}

TEST_CASE("after stop_blas_threads (the CLI's first call) OpenBLAS GEMMs still give the definition's numbers") {
  Context ctx(2, 22);
  cpu::stop_blas_threads();
  cpu::stop_blas_threads();  // idempotent
  const int64_t M = 65, N = 97, K = 300;
  Tensor a = Tensor::uniform(ctx, {M, K}, -1, 1), b = Tensor::uniform(ctx, {K, N}, -1, 1);
  const auto want = ref_gemm(false, false, M, N, K, a.to_vector<double>(), b.to_vector<double>());
  for (auto be : {cpu::GemmBackend::Auto, cpu::have_openblas() ? cpu::GemmBackend::OpenBlas : cpu::GemmBackend::Eigen}) {
    Tensor c = Tensor::zeros(ctx, {M, N});
    cpu::gemm<float>(ctx, false, false, M, N, K, 1.0f, a.data<float>(), K, b.data<float>(), N, 0.0f, c.data<float>(),
                     N, be);
    CHECK(max_abs_diff(c.to_vector<double>(), want) < 1e-5 * std::sqrt(double(K)));
  }
}

TEST_CASE("matmul 2-D and batched 3-D forward") {
  Context ctx(2, 22);
  Tensor a = rand64(ctx, {4, 3, 5}), b = rand64(ctx, {4, 5, 2});
  Tensor c = matmul(a, b);
  CHECK(c.shape() == Shape{4, 3, 2});
  auto av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
  for (int64_t i = 0; i < 4; ++i) {
    auto want = ref_gemm(false, false, 3, 2, 5, std::vector<double>(av.begin() + i * 15, av.begin() + (i + 1) * 15),
                         std::vector<double>(bv.begin() + i * 10, bv.begin() + (i + 1) * 10));
    CHECK(max_abs_diff(std::vector<double>(cv.begin() + i * 6, cv.begin() + (i + 1) * 6), want) < 1e-13);
  }
  Tensor a2 = rand64(ctx, {1, 7}), b2 = rand64(ctx, {7, 1});
  CHECK(matmul(a2, b2).shape() == Shape{1, 1});
  CHECK(matmul(a2, b2).item() == doctest::Approx(ref_gemm(false, false, 1, 1, 7, a2.to_vector<double>(),
                                                          b2.to_vector<double>())[0]));
}

TEST_CASE("linear forward = x·wᵀ + b") {
  Context ctx(2, 23);
  Tensor x = rand64(ctx, {5, 3}), w = rand64(ctx, {4, 3}), b = rand64(ctx, {4});
  auto y = linear(x, w, b).to_vector<double>();
  auto want = ref_gemm(false, true, 5, 4, 3, x.to_vector<double>(), w.to_vector<double>());
  auto bv = b.to_vector<double>();
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 4; ++j) want[size_t(i * 4 + j)] += bv[size_t(j)];
  CHECK(max_abs_diff(y, want) < 1e-13);
  CHECK(linear(x, w, Tensor()).shape() == Shape{5, 4});
}

TEST_CASE("matmul and linear gradients and gradients of gradients") {
  Context ctx(2, 24);
  for (auto [M_, N_, K_] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 1}, {3, 4, 5}, {2, 1, 6}}) {
    auto M = M_; auto N = N_; auto K = K_;  // named copies: clang < 16 cannot capture structured bindings
    INFO("M", M, " N", N, " K", K);
    Tensor a = rand64(ctx, {M, K}), b = rand64(ctx, {K, N});
    Fn f = [](const std::vector<Tensor>& v) { return square(matmul(v[0], v[1])); };
    check_grad(ctx, f, {a, b});
    check_gradgrad(ctx, f, {a, b});
    Tensor a3 = rand64(ctx, {2, M, K}), b3 = rand64(ctx, {2, K, N});
    check_grad(ctx, f, {a3, b3});
    check_gradgrad(ctx, f, {a3, b3});
    Tensor x = rand64(ctx, {M, K}), w = rand64(ctx, {N, K}), bias = rand64(ctx, {N});
    Fn g = [](const std::vector<Tensor>& v) { return square(linear(v[0], v[1], v[2])); };
    check_grad(ctx, g, {x, w, bias});
    check_gradgrad(ctx, g, {x, w, bias});
    // An input gradient times the input (grad × input): the transposed forms reached through the
    // backward rules are differentiated again.
    Fn gxi = [&ctx](const std::vector<Tensor>& v) {
      EnableGradGuard eg(true);
      Tensor y = square(matmul(v[0], v[1]));
      Tensor ga = grad({y}, {v[0]}, {Tensor::ones(ctx, y.shape(), DType::F64)}, true)[0];
      return mul(ga, v[0]);
    };
    check_grad(ctx, gxi, {a, b});
  }
}

TEST_CASE("bad shapes throw lowpass::Error") {
  Context ctx(1, 25);
  CHECK_THROWS_AS(matmul(rand64(ctx, {2, 3}), rand64(ctx, {4, 2})), Error);
  CHECK_THROWS_AS(matmul(rand64(ctx, {2, 2, 3}), rand64(ctx, {3, 3, 2})), Error);
  CHECK_THROWS_AS(matmul(rand64(ctx, {2, 3}), rand64(ctx, {1, 3, 2})), Error);
  CHECK_THROWS_AS(linear(rand64(ctx, {2, 3}), rand64(ctx, {4, 2}), Tensor()), Error);
  CHECK_THROWS_AS(linear(rand64(ctx, {2, 3}), rand64(ctx, {4, 3}), rand64(ctx, {3})), Error);
  CHECK_THROWS_AS(linear(rand64(ctx, {2, 3, 1}), rand64(ctx, {4, 3}), Tensor()), Error);
}
}
