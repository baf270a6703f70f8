// The tiled (implicit-GEMM) float32 correlation for wide conv1d layers (kernels/cuda/conv_tiled.h): the load,
// compute and store phases of that header with the chunk staged in dynamic shared memory between barriers.
// Selected by conv1d.cu under LOWPASS_CUDA_CONV=tiled for float32 layers the direct kernels do not take.
// Test: build-dev/tests/lowpass_tests -ts=cuda -tc='*tiled*' (host: every block, phase by phase).
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/conv_tiled.h"
#include "kernels/cuda/cuda_state.h"

namespace lowpass::cuda {
namespace {

__global__ void __launch_bounds__(kTiledThreads)
    tiled_corr_kernel(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                      float* __restrict__ y, DirectGeom g) {
  extern __shared__ float4 smem4[];  // float4: the weight tile at its start is 16-byte aligned
  float* ws = reinterpret_cast<float*>(smem4);
  float* xs = ws + tiled_ws_floats(g);
  const TiledBlock blk = tiled_block(g, blockIdx.x, blockIdx.y, blockIdx.z);
  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;
  for (int64_t c0 = 0; c0 < g.C; c0 += kTiledC) {
    tiled_load<float>(x, w, ws, xs, g, blk, c0, static_cast<int>(threadIdx.x));
    __syncthreads();
    tiled_compute(ws, xs, g, static_cast<int>(threadIdx.x), acc);
    __syncthreads();  // the next chunk overwrites the tiles
  }
  tiled_store<float>(y, bias, g, blk, static_cast<int>(threadIdx.x), acc);
}

}  // namespace

bool conv1d_corr_tiled(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  const DirectGeom dg{g.B, g.G, g.C, g.O, g.Lin, g.Lout, g.K, g.d, g.p};
  if (x.dtype() != DType::F32 || !tiled_fits(dg) || g.Lout < 1 || g.O < 1 || g.C < 1) return false;
  const CudaState& st = state_of(x);
  const dim3 grid(static_cast<unsigned>(tiled_grid_x(dg)), static_cast<unsigned>(tiled_grid_y(dg)),
                  static_cast<unsigned>(g.B * g.G));
  const size_t smem = static_cast<size_t>(tiled_smem_floats(dg)) * sizeof(float);
  tiled_corr_kernel<<<grid, kTiledThreads, smem, st.stream>>>(
      x.data<float>(), w.data<float>(), bias.defined() ? bias.data<float>() : nullptr, y.data<float>(), dg);
  LP_CUDA_LAUNCH_CHECK();
  return true;
}

}  // namespace lowpass::cuda
