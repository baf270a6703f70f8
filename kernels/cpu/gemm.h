// Row-major GEMM on the CPU: C (M, N) = alpha · op(A) · op(B) + beta · C, op = identity or transpose.
// Backends: Eigen (Map of raw pointers, always built) and OpenBLAS cblas (when found). Single-threaded
// calls, meant to run inside our own parallel loops; gemm() splits the work over ctx.threads().
// Test: build/tests/lowpass_tests -ts=linear
#pragma once
#include <cstdint>

#include "engine/context.h"

namespace lowpass::cpu {

enum class GemmBackend { Auto, Eigen, OpenBlas };

bool have_openblas();
const char* gemm_backend_name(GemmBackend b);
// Runs OpenBLAS on one thread from now on and ends the workers it started when it was loaded (nothing without
// OpenBLAS, or when a GEMM already ran). lowpass calls OpenBLAS on one thread anyway, so they only wait, but a
// pthreads OpenBLAS's workers first spin on sched_yield for ~0.1 s of CPU beside lowpass's threads: a fixed ~0.09 s
// of system time per process, up to 40 % of a short `lowpass predict`. For programs, first thing (tools/lowpass.cpp);
// not for a library's host, whose own BLAS calls would lose their threads.
void stop_blas_threads();

// One single-threaded GEMM. A is (M, K) row-major with leading dim lda (or (K, M) when ta);
// B is (K, N) (or (N, K) when tb); C is (M, N) with ldc. beta == 0 never reads C (it may hold NaN).
template <typename T>
void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc, GemmBackend be = GemmBackend::Auto);

// Same contract, multithreaded over blocks of rows (or columns when M is small) of C.
template <typename T>
void gemm(const Context& ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, GemmBackend be = GemmBackend::Auto);

}  // namespace lowpass::cpu
