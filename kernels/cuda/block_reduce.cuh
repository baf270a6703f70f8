// Block-wide sums for CUDA kernels: warp shuffles, then one warp over the per-warp partials.
// sum over the block of v (blockDim.x a multiple of 32, <= 1024); the result is valid in thread 0.
// Test: build-cuda/tests/lowpass_tests -ts=cuda (through the reductions that use it).
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

}  // namespace lowpass::cuda
