// The tiled (implicit-GEMM) float32 correlation for wide conv1d layers (kernels/cuda/conv_tiled.h): the load,
// compute and store phases of that header with the chunk staged in dynamic shared memory between barriers.
// Selected by conv1d.cu under LOWPASS_CUDA_CONV=tiled for float32 layers the direct kernels do not take.
// Test: build-dev/tests/lowpass_tests -ts=cuda -tc='*tiled*' (host: every block, phase by phase).
#include <cuda_pipeline.h>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/conv_tiled.h"
#include "kernels/cuda/cuda_state.h"
#include "kernels/cuda/device_buffer.h"

namespace lowpass::cuda {
namespace {

__global__ void __launch_bounds__(kTiledThreads)
    tiled_corr_kernel(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                      float* __restrict__ y, CorrGeom g) {
  extern __shared__ float4 smem4[];  // float4: the weight tile at its start is 16-byte aligned
  float* ws = reinterpret_cast<float*>(smem4);
  float* xs = ws + tiled_ws_floats(g);
  const TiledBlock blk = tiled_block(g, blockIdx.x, blockIdx.y, blockIdx.z);
  float acc[8][8] = {};
  for (int64_t c0 = 0; c0 < g.C; c0 += kTiledC) {
    tiled_load<float>(x, w, ws, xs, g, blk, c0, static_cast<int>(threadIdx.x));
    __syncthreads();
    tiled_compute(ws, xs, g, static_cast<int>(threadIdx.x), acc);
    __syncthreads();  // the next chunk overwrites the tiles
  }
  tiled_store<float>(y, bias, g, blk, static_cast<int>(threadIdx.x), acc);
}

// The pipelined correlation (conv_tiled.h): two stages of tiles, the copies of chunk ch + 1 in flight (cp.async)
// while chunk ch is computed. A stage is overwritten only after the barrier that ends its last compute.
__global__ void __launch_bounds__(kTiledThreads)
    tiled_corr_pipe_kernel(const float* __restrict__ x, const float* __restrict__ wprep,
                           const float* __restrict__ bias, float* __restrict__ y, CorrGeom g) {
  extern __shared__ float4 smem4[];
  float* base = reinterpret_cast<float*>(smem4);
  const int64_t stage = tiled_stage_floats(g), nws = tiled_ws_floats(g), chunks = tiled_chunks(g);
  const TiledBlock blk = tiled_block(g, blockIdx.x, blockIdx.y, blockIdx.z);
  const int tid = static_cast<int>(threadIdx.x);
  auto issue = [&](int64_t ch) {
    float* ws = base + (ch & 1) * stage;
    tiled_load_async(
        x, wprep, ws, ws + nws, g, blk, ch, tid, [](float* d, const float* s) { __pipeline_memcpy_async(d, s, 16); },
        [](float* d, const float* s) { __pipeline_memcpy_async(d, s, 4); });
    __pipeline_commit();
  };
  float acc[8][8] = {};
  issue(0);
  for (int64_t ch = 0; ch < chunks; ++ch) {
    if (ch + 1 < chunks) {
      issue(ch + 1);
      __pipeline_wait_prior(1);  // chunk ch's copies are done (this thread's); the barrier makes them everyone's
    } else {
      __pipeline_wait_prior(0);
    }
    __syncthreads();
    const float* ws = base + (ch & 1) * stage;
    tiled_compute(ws, ws + nws, g, tid, acc);
    __syncthreads();  // the next issue overwrites this stage
  }
  tiled_store<float>(y, bias, g, blk, tid, acc);
}

__global__ void tiled_wprep_kernel(const float* __restrict__ w, float* __restrict__ wprep, int64_t n, CorrGeom g) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    wprep[e] = tiled_wprep_value(w, g, e);
}

__global__ void __launch_bounds__(kTiledThreads)
    tiled_wgrad_kernel(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ part,
                       CorrGeom g, int64_t S) {
  extern __shared__ float4 smem4[];
  float* dys = reinterpret_cast<float*>(smem4);
  float* xs = dys + wgrad_dys_floats();
  const WgradBlock blk = wgrad_block(g, S, blockIdx.x, blockIdx.y, blockIdx.z);
  float acc[8][8] = {};
  const int64_t chunks = g.B * wgrad_chunks_per_item(g);
  for (int64_t q = blk.s; q < chunks; q += S) {
    wgrad_load(x, dy, dys, xs, g, blk, q, static_cast<int>(threadIdx.x));
    __syncthreads();
    wgrad_compute(dys, xs, g, static_cast<int>(threadIdx.x), acc);
    __syncthreads();
  }
  wgrad_store(part, g, blk, static_cast<int>(threadIdx.x), acc);
}

// The pipelined weight grad: two stages, the cp.async copies of the split's next chunk in flight while the current
// one is computed; same tiles and sums as tiled_wgrad_kernel.
__global__ void __launch_bounds__(kTiledThreads)
    tiled_wgrad_pipe_kernel(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ part,
                            CorrGeom g, int64_t S) {
  extern __shared__ float4 smem4[];
  float* base = reinterpret_cast<float*>(smem4);
  const int64_t stage = wgrad_stage_floats(g);
  const WgradBlock blk = wgrad_block(g, S, blockIdx.x, blockIdx.y, blockIdx.z);
  const int tid = static_cast<int>(threadIdx.x);
  auto issue = [&](int64_t q, int64_t k) {  // chunk q into stage k % 2
    float* dys = base + (k & 1) * stage;
    wgrad_load_async(x, dy, dys, dys + wgrad_dys_floats(), g, blk, q, tid,
                     [](float* d, const float* s) { __pipeline_memcpy_async(d, s, 4); });
    __pipeline_commit();
  };
  float acc[8][8] = {};
  const int64_t chunks = g.B * wgrad_chunks_per_item(g);
  int64_t k = 0;  // the block's k-th chunk: q = s + k·S
  if (blk.s < chunks) issue(blk.s, 0);
  for (int64_t q = blk.s; q < chunks; q += S, ++k) {
    if (q + S < chunks) {
      issue(q + S, k + 1);
      __pipeline_wait_prior(1);
    } else {
      __pipeline_wait_prior(0);
    }
    __syncthreads();
    const float* dys = base + (k & 1) * stage;
    wgrad_compute(dys, dys + wgrad_dys_floats(), g, tid, acc);
    __syncthreads();  // the next issue overwrites this stage
  }
  wgrad_store(part, g, blk, tid, acc);
}

}  // namespace

int64_t tiled_wgrad_splits(const CorrGeom& g, int sms) {
  const int64_t per_split = wgrad_otiles(g) * wgrad_cblocks(g) * g.G;  // blocks of one split
  const int64_t chunks = g.B * wgrad_chunks_per_item(g);
  int64_t S = (int64_t{4} * sms + per_split - 1) / per_split;  // about 4 blocks per multiprocessor
  if (S > chunks) S = chunks;
  if (S > 65535 / g.G) S = 65535 / g.G;
  return S < 1 ? 1 : S;
}

bool conv1d_corr_wgrad_tiled(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g, bool pipelined) {
  const CudaState& st = state_of(x);
  if (x.dtype() != DType::F32 || st.gemm_math != GemmMath::Float32 || !wgrad_tiled_fits(g) || g.G > 65535)
    return false;
  const int64_t S = tiled_wgrad_splits(g, st.sm_count);
  const int64_t n = dw.numel();
  DeviceBuffer<float> part(static_cast<size_t>(S * n), x.device().index);
  const dim3 grid(static_cast<unsigned>(wgrad_otiles(g)), static_cast<unsigned>(wgrad_cblocks(g)),
                  static_cast<unsigned>(g.G * S));
  const size_t smem = static_cast<size_t>(wgrad_smem_floats(g)) * sizeof(float);
  const size_t pipe_smem = static_cast<size_t>(2 * wgrad_stage_floats(g)) * sizeof(float);
  if (pipelined && pipe_smem <= static_cast<size_t>(st.max_smem_optin)) {
    if (pipe_smem > 48 * 1024)
      LP_CUDA_CHECK(cudaFuncSetAttribute(tiled_wgrad_pipe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(pipe_smem)));
    tiled_wgrad_pipe_kernel<<<grid, kTiledThreads, pipe_smem, st.stream>>>(x.data<float>(), dy.data<float>(),
                                                                            part.get(), g, S);
  } else {
    tiled_wgrad_kernel<<<grid, kTiledThreads, smem, st.stream>>>(x.data<float>(), dy.data<float>(), part.get(), g, S);
  }
  LP_CUDA_LAUNCH_CHECK();
  constexpr int kReduceThreads = 256;
  sum_splits_kernel<float, float><<<grid_1d(st, n, kReduceThreads), kReduceThreads, 0, st.stream>>>(
      part.get(), dw.data<float>(), n, S);
  LP_CUDA_LAUNCH_CHECK();
  return true;
}

bool conv1d_corr_tiled(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g,
                       bool pipelined) {
  const CudaState& st = state_of(x);
  // float32 FMA only: with TF32 or bf16 GEMMs switched on, the im2col path's tensor-core GEMMs run instead
  if (x.dtype() != DType::F32 || st.gemm_math != GemmMath::Float32 || !tiled_fits(g) || g.Lout < 1 || g.O < 1 ||
      g.C < 1)
    return false;
  const dim3 grid(static_cast<unsigned>(tiled_grid_x(g)), static_cast<unsigned>(tiled_grid_y(g)),
                  static_cast<unsigned>(g.B * g.G));
  const size_t pipe_smem = static_cast<size_t>(2 * tiled_stage_floats(g)) * sizeof(float);
  if (pipelined && pipe_smem <= static_cast<size_t>(st.max_smem_optin)) {
    const int64_t n = tiled_wprep_floats(g);
    DeviceBuffer<float> wprep(static_cast<size_t>(n), x.device().index);
    tiled_wprep_kernel<<<grid_1d(st, n, 256), 256, 0, st.stream>>>(w.data<float>(), wprep.get(), n, g);
    LP_CUDA_LAUNCH_CHECK();
    if (pipe_smem > 48 * 1024)
      LP_CUDA_CHECK(cudaFuncSetAttribute(tiled_corr_pipe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(pipe_smem)));
    tiled_corr_pipe_kernel<<<grid, kTiledThreads, pipe_smem, st.stream>>>(
        x.data<float>(), wprep.get(), bias.defined() ? bias.data<float>() : nullptr, y.data<float>(), g);
    LP_CUDA_LAUNCH_CHECK();
    return true;
  }
  const size_t smem = static_cast<size_t>(tiled_smem_floats(g)) * sizeof(float);
  tiled_corr_kernel<<<grid, kTiledThreads, smem, st.stream>>>(
      x.data<float>(), w.data<float>(), bias.defined() ? bias.data<float>() : nullptr, y.data<float>(), g);
  LP_CUDA_LAUNCH_CHECK();
  return true;
}

}  // namespace lowpass::cuda
