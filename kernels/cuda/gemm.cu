// cuBLAS GEMMs (kernels/cuda/gemm.h): a row-major product is the column-major product of the transposes,
// Cᵀ = op(B)ᵀ·op(A)ᵀ, so row-major operands go to cuBLAS as they are stored, B first.
// Test: build-cuda/tests/lowpass_tests -ts=cuda ("matmul and linear on CUDA tensors").
#include "kernels/cuda/gemm.h"

#include <climits>
#include <type_traits>
#include <utility>

#include "kernels/cuda/cuda_state.h"

namespace lowpass::cuda {
namespace {
void check_int(int64_t v, const char* what) {
  LP_CHECK(v >= 0 && v <= INT_MAX, "CUDA GEMM: ", what, " = ", v, " exceeds cuBLAS's 32-bit sizes");
}
}  // namespace

template <typename T>
void gemm_strided_batched(const CudaState& st, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* A,
                          int64_t lda, int64_t sA, const T* B, int64_t ldb, int64_t sB, T beta, T* C, int64_t ldc,
                          int64_t sC, int64_t batch) {
  for (auto [v, what] : {std::pair{m, "m"}, {n, "n"}, {k, "k"}, {lda, "lda"}, {ldb, "ldb"}, {ldc, "ldc"},
                         {batch, "batch"}})
    check_int(v, what);
  if (m == 0 || n == 0 || batch == 0) return;
  const cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const T one = 1;
  if constexpr (std::is_same_v<T, float>) {
    if (st.gemm_math != GemmMath::Float32) {  // float32 in memory, reduced-precision products, float32 sums
      const cublasComputeType_t compute =
          st.gemm_math == GemmMath::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F_FAST_16BF;
      LP_CUBLAS_CHECK(cublasGemmStridedBatchedEx(st.cublas, oa, ob, int(m), int(n), int(k), &one, A, CUDA_R_32F,
                                                 int(lda), sA, B, CUDA_R_32F, int(ldb), sB, &beta, C, CUDA_R_32F,
                                                 int(ldc), sC, int(batch), compute, CUBLAS_GEMM_DEFAULT));
    } else {
      LP_CUBLAS_CHECK(cublasSgemmStridedBatched(st.cublas, oa, ob, int(m), int(n), int(k), &one, A, int(lda), sA, B,
                                                int(ldb), sB, &beta, C, int(ldc), sC, int(batch)));
    }
  } else {
    LP_CUBLAS_CHECK(cublasDgemmStridedBatched(st.cublas, oa, ob, int(m), int(n), int(k), &one, A, int(lda), sA, B,
                                              int(ldb), sB, &beta, C, int(ldc), sC, int(batch)));
  }
}
template void gemm_strided_batched<float>(const CudaState&, bool, bool, int64_t, int64_t, int64_t, const float*,
                                          int64_t, int64_t, const float*, int64_t, int64_t, float, float*, int64_t,
                                          int64_t, int64_t);
template void gemm_strided_batched<double>(const CudaState&, bool, bool, int64_t, int64_t, int64_t, const double*,
                                           int64_t, int64_t, const double*, int64_t, int64_t, double, double*,
                                           int64_t, int64_t, int64_t);

void gemm_rowmajor(const Tensor& a, const Tensor& b, Tensor& c, bool ta, bool tb, int64_t batch, int64_t M, int64_t N,
                   int64_t K) {
  CudaState& st = state_of(a);
  const int64_t a_cols = ta ? M : K, b_cols = tb ? K : N;  // leading dimensions of the stored row-major matrices
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    if (K == 0) {  // an empty sum: cuBLAS with k = 0 is allowed but spell the zeros out
      LP_CUDA_CHECK(cudaMemsetAsync(c.data<T>(), 0, sizeof(T) * static_cast<size_t>(c.numel()), st.stream));
      return;
    }
    gemm_strided_batched<T>(st, tb, ta, N, M, K, b.data<T>(), b_cols, b_cols * (tb ? N : K), a.data<T>(), a_cols,
                            a_cols * (ta ? K : M), T(0), c.data<T>(), N, M * N, batch);
  });
}

}  // namespace lowpass::cuda
