// The tiled correlation for layers with few outputs per group (kernels/cuda/conv_narrow.h): the load, compute and
// store phases of that header with the channel chunk staged in dynamic shared memory between barriers, and its
// weight grad (splits over positions, double partials added in order); one instantiation per register tile (2, 4,
// 8 or 16 outputs). Selected by conv1d.cu under LOWPASS_CUDA_CONV=tiled.
// Test: build-dev/tests/lowpass_tests -ts=cuda -tc='*narrow*' (host: every block, phase by phase).
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/conv_narrow.h"
#include "kernels/cuda/cuda_state.h"
#include "kernels/cuda/device_buffer.h"

namespace lowpass::cuda {
namespace {

template <int OM, typename T>
__global__ void __launch_bounds__(kNarrowThreads)
    narrow_corr_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                       T* __restrict__ y, CorrGeom g) {
  extern __shared__ double smem_d[];
  double* ws = smem_d;
  double* xs = ws + narrow_ws_doubles(g);
  const NarrowBlock blk = narrow_block(g, blockIdx.x, blockIdx.y);
  const int64_t cc = narrow_cc(g);
  double acc[OM][kNarrowP] = {};
  for (int64_t c0 = 0; c0 < g.C; c0 += cc) {
    narrow_load<OM, T>(x, w, ws, xs, g, blk, c0, static_cast<int>(threadIdx.x));
    __syncthreads();
    narrow_compute<OM>(ws, xs, g, g.C - c0 < cc ? g.C - c0 : cc, static_cast<int>(threadIdx.x), acc);
    __syncthreads();  // the next chunk overwrites the tiles
  }
  narrow_store<OM, T>(y, bias, g, blk, static_cast<int>(threadIdx.x), acc);
}

template <int OM, typename T>
void launch(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  const CudaState& st = state_of(x);
  const dim3 grid(static_cast<unsigned>(narrow_grid_x(g)), static_cast<unsigned>(g.B * g.G));
  const size_t smem = static_cast<size_t>(narrow_smem_doubles(g)) * sizeof(double);
  narrow_corr_kernel<OM, T><<<grid, kNarrowThreads, smem, st.stream>>>(
      x.data<T>(), w.data<T>(), bias.defined() ? bias.data<T>() : nullptr, y.data<T>(), g);
  LP_CUDA_LAUNCH_CHECK();
}

template <int OM, typename T>
__global__ void __launch_bounds__(kNarrowThreads)
    narrow_wgrad_kernel(const T* __restrict__ x, const T* __restrict__ dy, double* __restrict__ part, CorrGeom g,
                        int64_t S) {
  extern __shared__ double smem_d[];
  double* dys = smem_d;
  double* xs = dys + narrow_wdys_doubles(g);
  const NarrowWBlock blk = narrow_wblock(g, S, blockIdx.x, blockIdx.z);
  constexpr int R = narrow_wr<OM>();
  double acc[R][OM] = {};
  const int64_t chunks = g.B * narrow_wchunks_per_item(g);
  for (int64_t q = blk.s; q < chunks; q += S) {
    narrow_wload<OM, T>(x, dy, dys, xs, g, blk, q, static_cast<int>(threadIdx.x));
    __syncthreads();
    narrow_wcompute<OM>(dys, xs, g, static_cast<int>(threadIdx.x), acc);
    __syncthreads();
  }
  narrow_wstore<OM>(part, g, blk, static_cast<int>(threadIdx.x), acc);
}

template <int OM, typename T>
void launch_wgrad(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g) {
  const CudaState& st = state_of(x);
  const int64_t S = narrow_wgrad_splits(g, st.sm_count), n = dw.numel();
  DeviceBuffer<double> part(static_cast<size_t>(S * n), x.device().index);
  const dim3 grid(static_cast<unsigned>(narrow_wcblocks(g)), 1, static_cast<unsigned>(g.G * S));
  const size_t smem = static_cast<size_t>(narrow_wsmem_doubles(g)) * sizeof(double);
  narrow_wgrad_kernel<OM, T><<<grid, kNarrowThreads, smem, st.stream>>>(x.data<T>(), dy.data<T>(), part.get(), g, S);
  LP_CUDA_LAUNCH_CHECK();
  constexpr int kReduceThreads = 256;
  sum_splits_kernel<double, T><<<grid_1d(st, n, kReduceThreads), kReduceThreads, 0, st.stream>>>(
      part.get(), dw.data<T>(), n, S);
  LP_CUDA_LAUNCH_CHECK();
}

}  // namespace

bool conv1d_corr_wgrad_narrow(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g) {
  if (!narrow_wgrad_fits(g) || narrow_wcblocks(g) > INT32_MAX) return false;
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    dispatch_narrow_om(g, [&]<int OM>() { launch_wgrad<OM, T>(x, dy, dw, g); });
  });
  return true;
}

bool conv1d_corr_narrow(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  if (!narrow_fits(g) || narrow_grid_x(g) > INT32_MAX) return false;
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    dispatch_narrow_om(g, [&]<int OM>() { launch<OM, T>(x, w, bias, y, g); });
  });
  return true;
}

}  // namespace lowpass::cuda
