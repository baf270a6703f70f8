// cuBLAS GEMMs for the CUDA backend: strided-batched column-major GEMM (conv1d's im2col path) and the
// row-major C = op(A)·op(B) behind matmul/linear. float32 runs in plain float32 unless the Context's
// GEMM math (cuda::set_gemm_math) is TF32 (CUBLAS_COMPUTE_32F_FAST_TF32) or BF16 (the operands rounded to
// bfloat16 copies, float32 sums).
// Test: build/tests/lowpass_tests -ts=cuda.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace lowpass {
struct CudaState;
namespace cuda {

// Column-major C_i = op(A_i)·op(B_i) + beta·C_i for i < batch (cuBLAS's own convention); sizes must fit int.
// ta/tb: transpose A/B. A: lda, stride sA elements between batch items; likewise B and C.
template <typename T>
void gemm_strided_batched(const CudaState& st, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* A,
                          int64_t lda, int64_t sA, const T* B, int64_t ldb, int64_t sB, T beta, T* C, int64_t ldc,
                          int64_t sC, int64_t batch);

// Row-major: c (batch, M, N) = op(a)·op(b) with a (batch, a_rows, a_cols), b (batch, b_rows, b_cols) contiguous
// device tensors of one dtype; ta/tb transpose the stored matrices (M = ta ? a_cols : a_rows, etc.).
void gemm_rowmajor(const Tensor& a, const Tensor& b, Tensor& c, bool ta, bool tb, int64_t batch, int64_t M, int64_t N,
                   int64_t K);

}  // namespace cuda
}  // namespace lowpass
