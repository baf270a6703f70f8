// Checking macros for CUDA, cuBLAS and cuFFT calls and kernel launches (STYLE.md rule 3): a failure
// throws lowpass::Error naming the statement, file and line; the *_PRINT variants only print (destructors).
// Test: tests/test_cuda.cpp (-ts=cuda).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>

#include "engine/error.h"

namespace lowpass::cuda::detail {
[[noreturn]] void fail_cuda(cudaError_t e, const char* stmt, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t s, const char* stmt, const char* file, int line);
[[noreturn]] void fail_cufft(cufftResult r, const char* stmt, const char* file, int line);
void print_cuda(cudaError_t e, const char* stmt, const char* file, int line);  // never throws
const char* cufft_status_name(cufftResult r);
}  // namespace lowpass::cuda::detail

#define LP_CUDA_CHECK(stmt)                                                               \
  do {                                                                                    \
    cudaError_t lp_err_ = (stmt);                                                         \
    if (lp_err_ != cudaSuccess) ::lowpass::cuda::detail::fail_cuda(lp_err_, #stmt, __FILE__, __LINE__); \
  } while (0)

// For destructors and other places that must not throw: report on stderr and carry on.
#define LP_CUDA_CHECK_PRINT(stmt)                                                          \
  do {                                                                                     \
    cudaError_t lp_err_ = (stmt);                                                          \
    if (lp_err_ != cudaSuccess) ::lowpass::cuda::detail::print_cuda(lp_err_, #stmt, __FILE__, __LINE__); \
  } while (0)

// After every kernel launch: launch-configuration errors surface here, with the launch site.
#define LP_CUDA_LAUNCH_CHECK() LP_CUDA_CHECK(cudaGetLastError())

#define LP_CUBLAS_CHECK(stmt)                                                                 \
  do {                                                                                        \
    cublasStatus_t lp_st_ = (stmt);                                                           \
    if (lp_st_ != CUBLAS_STATUS_SUCCESS) ::lowpass::cuda::detail::fail_cublas(lp_st_, #stmt, __FILE__, __LINE__); \
  } while (0)

#define LP_CUFFT_CHECK(stmt)                                                             \
  do {                                                                                   \
    cufftResult lp_r_ = (stmt);                                                          \
    if (lp_r_ != CUFFT_SUCCESS) ::lowpass::cuda::detail::fail_cufft(lp_r_, #stmt, __FILE__, __LINE__); \
  } while (0)
