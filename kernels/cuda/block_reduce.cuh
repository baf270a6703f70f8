// Block-wide sums for CUDA kernels: warp shuffles, then one warp over the per-warp partials; and the in-order sum
// of split partials (sum_splits_kernel).
// sum over the block of v (blockDim.x a multiple of 32, <= 1024); the result is valid in thread 0.
// Test: build/tests/lowpass_tests -ts=cuda (through the reductions that use it).
#pragma once
#include <cuda_runtime.h>

namespace lowpass::cuda {

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

// `scratch` holds 32 values of A in shared memory; callers that reuse it must __syncthreads() first.
template <typename A>
__device__ __forceinline__ A block_sum(A v, A* scratch) {
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? scratch[lane] : A(0);
    v = warp_sum(v);
  }
  return v;
}

// out[e] = Σ_s part[s·n + e] for e < n, the S split partials of a split-over-positions weight grad added in split
// order in double (deterministic): the tiled kernels' float partials, the narrow kernels' double ones.
template <typename P, typename T>
__global__ void sum_splits_kernel(const P* __restrict__ part, T* __restrict__ out, int64_t n, int64_t S) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double v = 0;
    for (int64_t s = 0; s < S; ++s) v += part[s * n + e];
    out[e] = static_cast<T>(v);
  }
}

}  // namespace lowpass::cuda
