// The tiled correlation for layers with few outputs per group (kernels/cuda/conv_narrow.h): the load, compute and
// store phases of that header with the channel chunk staged in dynamic shared memory between barriers; one
// instantiation per register tile (2, 4, 8 or 16 outputs). Selected by conv1d.cu under LOWPASS_CUDA_CONV=tiled.
// Test: build-dev/tests/lowpass_tests -ts=cuda -tc='*narrow*' (host: every block, phase by phase).
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/conv_narrow.h"
#include "kernels/cuda/cuda_state.h"

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
  double acc[OM][kNarrowP];
#pragma unroll
  for (int o = 0; o < OM; ++o)
#pragma unroll
    for (int j = 0; j < kNarrowP; ++j) acc[o][j] = 0.0;
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

}  // namespace

bool conv1d_corr_narrow(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  if (!narrow_fits(g) || narrow_grid_x(g) > INT32_MAX) return false;
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    switch (narrow_om(g)) {
      case 2: return launch<2, T>(x, w, bias, y, g);
      case 4: return launch<4, T>(x, w, bias, y, g);
      case 8: return launch<8, T>(x, w, bias, y, g);
      default: return launch<16, T>(x, w, bias, y, g);
    }
  });
  return true;
}

}  // namespace lowpass::cuda
