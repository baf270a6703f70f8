// LP_HD marks a function that both compilers build: __host__ __device__ under nvcc, nothing under g++. For formulas
// a CPU kernel shares with its CUDA twin (kernels/cpu/bn2_coef.h, deeplift_rule.h) and index arithmetic the host
// tests run (kernels/cuda/index.h, conv_direct.h).
#pragma once

#if defined(__CUDACC__)
#define LP_HD __host__ __device__
#else
#define LP_HD
#endif
