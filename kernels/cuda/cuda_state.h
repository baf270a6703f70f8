// CudaState: the CUDA resources of one Context — its stream, cuBLAS handle, cuFFT plan cache, the cuDNN state of
// the opt-in cuDNN conv path and the device's properties. Created on first use by cuda::state(ctx, device); freed
// with the Context.
// Test: tests/test_cuda.cpp (-ts=cuda).
#pragma once
#include <cstdint>
#include <map>
#include <tuple>

#include "engine/context.h"
#include "engine/tensor.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_backend.h"
#include "kernels/cuda/runtime.h"

namespace lowpass {

struct CudnnState;  // kernels/cuda/conv_cudnn.cu

namespace cuda {
// A cached cuFFT plan with a work area for one execution (CudaState::fft_plan). Plans are made without cuFFT's
// auto-allocation; the work area is a block of the caching allocator (so the out-of-memory retry covers it, it is
// counted in allocator_stats, and inside a graph capture it comes from the graph's pool), set on the plan here and
// given back when this goes out of scope: stream-ordered, so after the execution queued meanwhile. Keep it alive
// across the execution: `LP_CUFFT_CHECK(cufftExecR2C(st.fft_plan(CUFFT_R2C, L, R).handle, in, out))`.
class FftPlan {
 public:
  FftPlan(cufftHandle plan, size_t work_bytes, int device);
  ~FftPlan();
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;
  const cufftHandle handle;

 private:
  void* work_ = nullptr;
  size_t work_bytes_ = 0;
  int device_ = 0;
};
}  // namespace cuda

struct CudaState {
  explicit CudaState(int device);
  ~CudaState();
  CudaState(const CudaState&) = delete;
  CudaState& operator=(const CudaState&) = delete;

  int device = 0;
  // The device's one stream (cuda::device_stream), shared by every Context. Ops run on their first input's Context,
  // so one expression can mix tensors of several Contexts (a model's and a batch's); with a stream per Context, a
  // kernel on one stream would read the output of a kernel still running on another, and blocks recycled by the
  // caching allocator would be reused across streams. Found on an H100: per-Context blocking streams gave run-to-run
  // different training steps until every launch went to one stream. Copies and memsets use this stream too. It is a
  // created stream, not the legacy default stream, so that a training step can be captured as a CUDA graph.
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  void* cublas_workspace = nullptr;  // cuBLAS's workspace, from the caching allocator (so a graph capture never
  size_t cublas_workspace_bytes = 0;  // makes cuBLAS allocate)
  int sm_count = 1;
  int max_smem_optin = 48 << 10;  // bytes of shared memory a block may ask for
  // How float32 GEMMs compute (cuda::set_gemm_math; gemm.cu): plain float32 (the default and the reference), TF32 or
  // bfloat16 tensor cores. float64 GEMMs are never affected.
  cuda::GemmMath gemm_math = cuda::GemmMath::Float32;
  int64_t conv_workspace_bytes = int64_t{256} << 20;  // im2col chunk budget (conv1d.cu); tests shrink it
  // Dense conv1d path (conv_backend.h): LOWPASS_CUDA_CONV's value at construction, then cuda::set_conv_backend.
  cuda::ConvBackend conv_backend = cuda::ConvBackend::Im2col;
  int64_t cudnn_workspace_limit = int64_t{256} << 20;  // largest workspace a cuDNN algorithm may use
  CudnnState* cudnn = nullptr;  // cuDNN handle + per-geometry plans, made by the first cuDNN conv; freed here

  // Batched 1-d FFT plan along contiguous rows of length n (R2C/C2R/D2Z/Z2D), cached by (type, n, batch) and bound
  // to `stream`, with a work area from the caching allocator for one execution (cuda::FftPlan). A plan creation that
  // fails for want of memory empties the allocator's cache and is tried once more (not during a graph capture).
  cuda::FftPlan fft_plan(cufftType type, int64_t n, int64_t batch);

 private:
  struct Plan {
    cufftHandle handle = 0;
    size_t work_bytes = 0;  // the work area each execution needs (cufftMakePlanMany's)
  };
  Plan make_fft_plan(cufftType type, int64_t n, int64_t batch);
  void release() noexcept;  // the destructor's work, also for a constructor that throws half-way
  std::map<std::tuple<int, int64_t, int64_t>, Plan> plans_;
};

namespace cuda {
// The stream of `device` that all of lowpass uses: created on first use (blocking with respect to the legacy
// default stream), process-wide, never destroyed.
cudaStream_t device_stream(int device);
// The Context's CUDA state for `device`, created on first use (one device per Context).
CudaState& state(Context& ctx, int device);
// State for a CUDA tensor's context and device; also makes that device current.
CudaState& state_of(const Tensor& t);
// Blocks for a grid-stride launch over n items: enough to fill the GPU, never more than needed.
unsigned grid_1d(const CudaState& st, int64_t n, int threads);
// The loop of a kernel launched with grid_1d: i runs over [0, n) in steps of the whole grid (64-bit indices).
#define LP_GRID_STRIDE(i, n)                                                             \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
// A grid for `rows` rows of `len` elements: rows along y (at most 65535: the kernels loop), len along x with about
// four elements per thread (a block per 256 elements would make ~150k tiny blocks for BPNet's trunk).
dim3 rows_grid(int64_t rows, int64_t len, int threads);
}  // namespace cuda

}  // namespace lowpass
