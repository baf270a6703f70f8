// Direct conv1d kernels for layers with at most kDirectMaxO output channels per group (kernels/cuda/conv_direct.h):
// the correlation, one thread per output element with a double accumulator (rows along grid y), and the weight
// grad, one block per (output channel, input channel, tile of 8 taps) with per-thread double accumulators and a
// block sum. Selected by conv1d.cu.
// Test: build/tests/lowpass_tests -ts=cuda -tc='*direct*' (host: the same arithmetic over the whole grid).
#include <algorithm>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/conv_direct.h"
#include "kernels/cuda/cuda_state.h"

namespace lowpass::cuda {
namespace {

constexpr int kThreads = 256;

// Rows r = b·G·O + go along grid y (grid-stride), positions along x: the row's (b, go) once per row, no division
// per output.
template <typename T, typename A>
__global__ void direct_corr_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                                   T* __restrict__ y, int64_t rows, CorrGeom g) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < g.Lout;
         t += static_cast<int64_t>(gridDim.x) * blockDim.x)
      y[r * g.Lout + t] = direct_corr_row_at<T, A>(x, w, bias, r, t, g);
}

template <typename T>
__global__ void direct_wgrad_kernel(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dw,
                                    CorrGeom g) {
  int64_t go, c, k0;
  direct_wgrad_block(g, blockIdx.x, go, c, k0);
  double acc[kDirectKTile];
  direct_wgrad_partial<T>(x, dy, go, c, k0, threadIdx.x, blockDim.x, g, acc);
  __shared__ double scratch[32];
#pragma unroll
  for (int j = 0; j < kDirectKTile; ++j) {
    if (k0 + j >= g.K) break;  // the same for every thread of the block
    const double v = block_sum(acc[j], scratch);
    if (threadIdx.x == 0) dw[(go * g.C + c) * g.K + k0 + j] = static_cast<T>(v);
    __syncthreads();  // scratch is reused by the next tap
  }
}

}  // namespace

void conv1d_corr_direct(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  const int64_t rows = g.B * g.G * g.O;
  if (rows * g.Lout == 0) return;
  const CudaState& st = state_of(x);
  const dim3 grid(std::min<unsigned>(grid_1d(st, g.Lout, kThreads), 65535u),
                  static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    direct_corr_kernel<T, double><<<grid, kThreads, 0, st.stream>>>(x.data<T>(), w.data<T>(), pb, y.data<T>(),
                                                                     rows, g);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void conv1d_corr_wgrad_direct(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g) {
  const int64_t blocks = direct_wgrad_blocks(g);
  if (blocks == 0) return;
  LP_CHECK(blocks <= INT32_MAX, "CUDA direct conv1d weight grad: ", blocks, " blocks");
  const CudaState& st = state_of(dy);
  if (g.B * g.Lout == 0) {  // nothing to sum: the weight grad is zero
    dw.fill_(0);
    return;
  }
  dispatch_dtype(dy.dtype(), [&]<typename T>() {
    direct_wgrad_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, st.stream>>>(x.data<T>(), dy.data<T>(),
                                                                                    dw.data<T>(), g);
    LP_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace lowpass::cuda
