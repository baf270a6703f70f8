// Row-major GEMM through Eigen maps or OpenBLAS, single-threaded per call, split over ctx threads.
// C = alpha · op(A) · op(B) + beta · C. Test: build/tests/lowpass_tests -ts=linear
// Eigen's own OpenMP parallelism is switched off in this file: the caller decides the threads.
#define EIGEN_DONT_PARALLELIZE
#include "kernels/cpu/gemm.h"

#include <Eigen/Core>
#include <mutex>

#include "engine/error.h"
#include "kernels/cpu/parallel.h"

#ifdef LOWPASS_HAVE_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
extern "C" int blas_thread_shutdown_(void) __attribute__((weak));  // a pthreads OpenBLAS's; absent elsewhere
#endif

namespace lowpass::cpu {

bool have_openblas() {
#ifdef LOWPASS_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

const char* gemm_backend_name(GemmBackend b) {
  switch (b) {
    case GemmBackend::Auto: return "auto";
    case GemmBackend::Eigen: return "eigen";
    case GemmBackend::OpenBlas: return "openblas";
  }
  return "?";
}

namespace {

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using CMap = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using MMap = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;

template <typename T>
void gemm_eigen(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  MMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (beta == T(0)) c.setZero();
  else if (beta != T(1)) c *= beta;
  if (K == 0) return;
  CMap<T> a(A, ta ? K : M, ta ? M : K, Eigen::OuterStride<>(lda));
  CMap<T> b(B, tb ? N : K, tb ? K : N, Eigen::OuterStride<>(ldb));
  if (!ta && !tb) c.noalias() += alpha * a * b;
  else if (!ta && tb) c.noalias() += alpha * a * b.transpose();
  else if (ta && !tb) c.noalias() += alpha * a.transpose() * b;
  else c.noalias() += alpha * a.transpose() * b.transpose();
}

#ifdef LOWPASS_HAVE_OPENBLAS
std::once_flag blas_once;
// OpenBLAS threads would fight ours: every call from lowpass runs on one OpenBLAS thread. `stop_workers` also ends
// the workers OpenBLAS started when it was loaded (after the switch to one thread: setting the count later would
// start them again).
void blas_single_thread(bool stop_workers = false) {
  std::call_once(blas_once, [stop_workers] {
    openblas_set_num_threads(1);
    if (stop_workers && blas_thread_shutdown_) blas_thread_shutdown_();
  });
}
void gemm_blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  blas_single_thread();
  if (beta == 0.0f)
    for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);  // NaN-safe
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N),
              int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}
void gemm_blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
               const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  blas_single_thread();
  if (beta == 0.0)
    for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0);
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N),
              int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}
#endif

}  // namespace

void stop_blas_threads() {
#ifdef LOWPASS_HAVE_OPENBLAS
  blas_single_thread(true);
#endif
}

template <typename T>
void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc, GemmBackend be) {
  if (M == 0 || N == 0) return;
#ifdef LOWPASS_HAVE_OPENBLAS
  if (be == GemmBackend::OpenBlas) {
    LP_ASSERT(M < (int64_t(1) << 31) && N < (int64_t(1) << 31) && K < (int64_t(1) << 31), "gemm too large for BLAS");
    gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#else
  LP_CHECK(be != GemmBackend::OpenBlas, "gemm: OpenBLAS backend requested but lowpass was built without it");
#endif
  gemm_eigen<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <typename T>
void gemm(const Context& ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, GemmBackend be) {
  // Split the larger of M, N into per-thread blocks (each block is an independent GEMM, so the
  // result does not depend on the thread count).
  const int64_t work = M * N * std::max<int64_t>(K, 1);
  const int64_t threads = work < (int64_t(1) << 18) ? 1 : ctx.threads();
  if (M >= N) {
    parallel_chunks(ctx, M, threads > 1 ? (M + threads - 1) / threads : M, [&](int64_t m0, int64_t m1) {
      const T* a = ta ? A + m0 : A + m0 * lda;
      gemm_serial<T>(ta, tb, m1 - m0, N, K, alpha, a, lda, B, ldb, beta, C + m0 * ldc, ldc, be);
    });
  } else {
    parallel_chunks(ctx, N, threads > 1 ? (N + threads - 1) / threads : N, [&](int64_t n0, int64_t n1) {
      const T* b = tb ? B + n0 * ldb : B + n0;
      gemm_serial<T>(ta, tb, M, n1 - n0, K, alpha, A, lda, b, ldb, beta, C + n0, ldc, be);
    });
  }
}

#define LP_INST(T)                                                                                         \
  template void gemm_serial<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*,     \
                               int64_t, T, T*, int64_t, GemmBackend);                                      \
  template void gemm<T>(const Context&, bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t,      \
                        const T*, int64_t, T, T*, int64_t, GemmBackend);
LP_INST(float)
LP_INST(double)
#undef LP_INST

}  // namespace lowpass::cpu
