// cuBLAS GEMMs (kernels/cuda/gemm.h): a row-major product is the column-major product of the transposes,
// Cᵀ = op(B)ᵀ·op(A)ᵀ, so row-major operands go to cuBLAS as they are stored, B first.
// Test: build/tests/lowpass_tests -ts=cuda ("matmul and linear on CUDA tensors").
#include "kernels/cuda/gemm.h"

#include <climits>
#include <type_traits>
#include <utility>

#include <cuda_bf16.h>

#include "kernels/cuda/cuda_state.h"
#include "kernels/cuda/device_buffer.h"

namespace lowpass::cuda {
namespace {
void check_int(int64_t v, const char* what) {
  LP_CHECK(v >= 0 && v <= INT_MAX, "CUDA GEMM: ", what, " = ", v, " exceeds cuBLAS's 32-bit sizes");
}

__global__ void to_bf16_kernel(const float* __restrict__ in, __nv_bfloat16* __restrict__ out, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(in[i]);  // nearest, ties to even
}

// Elements spanned by a strided batch of column-major (rows × cols) matrices with leading dimension ld.
int64_t span(int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch) {
  return (batch - 1) * stride + (cols - 1) * ld + rows;
}

void to_bf16(const CudaState& st, const float* in, __nv_bfloat16* out, int64_t n) {
  constexpr int kThreads = 256;
  to_bf16_kernel<<<grid_1d(st, n, kThreads), kThreads, 0, st.stream>>>(in, out, n);
  LP_CUDA_LAUNCH_CHECK();
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
    if (st.gemm_math == GemmMath::TF32) {  // float32 in memory, TF32 products, float32 sums
      LP_CUBLAS_CHECK(cublasGemmStridedBatchedEx(st.cublas, oa, ob, int(m), int(n), int(k), &one, A, CUDA_R_32F,
                                                 int(lda), sA, B, CUDA_R_32F, int(ldb), sB, &beta, C, CUDA_R_32F,
                                                 int(ldc), sC, int(batch), CUBLAS_COMPUTE_32F_FAST_TF32,
                                                 CUBLAS_GEMM_DEFAULT));
    } else if (st.gemm_math == GemmMath::BF16 && k > 0) {  // k = 0: nothing to round, the plain call below
      // The operands are rounded to bfloat16 copies here, and the product runs with bfloat16 inputs and float32
      // sums. CUBLAS_COMPUTE_32F_FAST_16BF on the float32 operands only *allows* bfloat16: on the H200 with
      // cuBLAS 13 it ran the TF32 kernels (identical results and times), so the switch would have meant nothing.
      const int64_t na = ta ? span(k, m, lda, sA, batch) : span(m, k, lda, sA, batch);
      const int64_t nb = tb ? span(n, k, ldb, sB, batch) : span(k, n, ldb, sB, batch);
      // bfloat16 copies in buffers from the caching allocator (capture-safe), freed in stream order
      DeviceBuffer<__nv_bfloat16> a16(static_cast<size_t>(na), st.device), b16(static_cast<size_t>(nb), st.device);
      to_bf16(st, A, a16.get(), na);
      to_bf16(st, B, b16.get(), nb);
      LP_CUBLAS_CHECK(cublasGemmStridedBatchedEx(st.cublas, oa, ob, int(m), int(n), int(k), &one, a16.get(),
                                                 CUDA_R_16BF, int(lda), sA, b16.get(), CUDA_R_16BF, int(ldb), sB,
                                                 &beta, C, CUDA_R_32F, int(ldc), sC, int(batch), CUBLAS_COMPUTE_32F,
                                                 CUBLAS_GEMM_DEFAULT));
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
