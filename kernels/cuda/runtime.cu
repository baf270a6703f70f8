// CUDA runtime: device discovery (cached), the caching allocator (BlockCache over cudaMalloc, with graph pools), the
// one stream per device, copies, CUDA-graph capture and replay, checking helpers, CudaState.
// Test: build/tests/lowpass_tests -ts=cuda (skips without a GPU); the allocator's bookkeeping host-side in
// tests/test_graph_step.cpp.
#include "kernels/cuda/runtime.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/block_cache.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/cuda_state.h"

namespace lowpass::cuda {

// ---------------- checking helpers ----------------
namespace detail {
void fail_cuda(cudaError_t e, const char* stmt, const char* file, int line) {
  throw Error(::lowpass::detail::concat("CUDA error ", static_cast<int>(e), " (", cudaGetErrorName(e), ": ",
                                        cudaGetErrorString(e), ") in `", stmt, "` at ", file, ":", line));
}
void fail_cublas(cublasStatus_t s, const char* stmt, const char* file, int line) {
  throw Error(::lowpass::detail::concat("cuBLAS error ", static_cast<int>(s), " (", cublasGetStatusString(s),
                                        ") in `", stmt, "` at ", file, ":", line));
}
const char* cufft_status_name(cufftResult r) {
  switch (r) {
    case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED";
    case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
    default: return "cuFFT error";
  }
}
void fail_cufft(cufftResult r, const char* stmt, const char* file, int line) {
  throw Error(::lowpass::detail::concat("cuFFT error ", static_cast<int>(r), " (", cufft_status_name(r), ") in `",
                                        stmt, "` at ", file, ":", line));
}
void print_cuda(cudaError_t e, const char* stmt, const char* file, int line) {
  std::fprintf(stderr, "lowpass: CUDA error %d (%s) in `%s` at %s:%d (ignored in a destructor)\n",
               static_cast<int>(e), cudaGetErrorString(e), stmt, file, line);
}
}  // namespace detail

// ---------------- discovery ----------------
namespace {
struct Discovery {
  bool ok = false;
  std::string reason;
};
const Discovery& discovery() {
  static const Discovery d = [] {
    Discovery r;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      r.reason = ::lowpass::detail::concat("cudaGetDeviceCount returned error ", static_cast<int>(e), " (",
                                           cudaGetErrorName(e), ": ", cudaGetErrorString(e), ")");
      (void)cudaGetLastError();  // clear the (non-sticky) error so later calls start clean
    } else if (count < 1) {
      r.reason = "cudaGetDeviceCount found no CUDA device";
    } else {
      r.ok = true;
    }
    return r;
  }();
  return d;
}
}  // namespace

bool available() { return discovery().ok; }
bool compiled() { return true; }
std::string unavailable_reason() { return available() ? std::string() : discovery().reason; }

// ---------------- caching allocator ----------------
namespace {
// An environment switch such as LOWPASS_CUDA_POISON=1: set, non-empty and not starting with '0'.
bool env_flag(const char* name) {
  const char* e = std::getenv(name);
  return e && *e && *e != '0';
}

class CachingAllocator {
 public:
  CachingAllocator()
      : cache_(
            [](size_t bytes, int device) -> void* {
              LP_CUDA_CHECK(cudaSetDevice(device));
              void* p = nullptr;
              // During a graph capture (thread-local mode) cudaMalloc counts as a potentially unsafe call and would
              // be refused: relax the mode around it, as CUDA's documentation shows for libraries that allocate.
              cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
              LP_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
              cudaError_t e = cudaMalloc(&p, bytes);
              LP_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
              if (e == cudaErrorMemoryAllocation) {
                (void)cudaGetLastError();
                return nullptr;
              }
              LP_CUDA_CHECK(e);
              return p;
            },
            [](void* p, int device) {
              LP_CUDA_CHECK(cudaSetDevice(device));
              LP_CUDA_CHECK(cudaFree(p));
            }) {}

  // f(cache) under the allocator's mutex (BlockCache is not thread-safe by itself).
  template <typename F>
  auto locked(F&& f) {
    std::lock_guard<std::mutex> lock(mu_);
    return f(cache_);
  }

  void* alloc(size_t bytes, int device) {
    void* p = locked([&](BlockCache& c) { return c.alloc(bytes, device); });
    // LOWPASS_CUDA_POISON=1 (debugging, docs/cuda.md): every block handed out is filled with 0xFF bytes (NaN in
    // float32 and float64), so a kernel that reads memory it did not write shows up as NaN, not as stale data.
    // Not during a graph capture (it synchronises the device).
    static const bool poison = env_flag("LOWPASS_CUDA_POISON");
    if (poison && !capturing(device)) {
      LP_CUDA_CHECK(cudaDeviceSynchronize());
      LP_CUDA_CHECK(cudaMemset(p, 0xFF, allocator_bucket(bytes)));
      LP_CUDA_CHECK(cudaDeviceSynchronize());
    }
    return p;
  }

 private:
  std::mutex mu_;
  BlockCache cache_;
};

// Process-wide by nature (device memory is); deliberately never destroyed, so tensors released
// during static destruction still find it, and no cudaFree runs after the driver has shut down.
CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator();
  return *a;
}
}  // namespace

void* alloc(size_t bytes, int device) { return allocator().alloc(bytes, device); }
void free(void* p, size_t, int device) {
  allocator().locked([&](BlockCache& c) { c.free(p, device); });
}
AllocatorStats allocator_stats(int device) {
  return allocator().locked([&](BlockCache& c) { return c.stats(device); });
}
void empty_cache(int device) {
  if (available()) allocator().locked([&](BlockCache& c) { c.release_shared(device); });
}

// ---------------- streams, copies ----------------
// One stream per device for all of lowpass (cuda_state.h says why one), created on first use and never destroyed.
// A created stream rather than the legacy default stream, because only a created stream can be captured into a
// CUDA graph; blocking (cudaStreamDefault), so anything a library still queues on the legacy stream stays ordered.
// LOWPASS_CUDA_LEGACY_STREAM=1 (triage, docs/cuda.md) goes back to the legacy default stream (no CUDA graphs then).
static bool legacy_stream() {
  static const bool on = env_flag("LOWPASS_CUDA_LEGACY_STREAM");
  return on;
}
cudaStream_t device_stream(int device) {
  static std::mutex mu;
  static cudaStream_t streams[64] = {};
  LP_CHECK(device >= 0 && device < 64, "CUDA device index ", device, " out of range");
  if (legacy_stream()) return nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (!streams[device]) {
    int cur = 0;
    LP_CUDA_CHECK(cudaGetDevice(&cur));
    LP_CUDA_CHECK(cudaSetDevice(device));
    LP_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[device], cudaStreamDefault));
    LP_CUDA_CHECK(cudaSetDevice(cur));
  }
  return streams[device];
}
namespace {
// The stream of the device that owns the memory, that device made current first: a kernel (fill) must launch on the
// current device, and copies must order against the owner's stream, not the current device's (another device's
// stream would neither wait for the kernels still writing the memory nor be waited on by later ones). Only when the
// device differs does it cost a cudaSetDevice; cudaGetDevice reads thread-local state.
cudaStream_t stream_on(int device) {
  int cur = -1;
  LP_CUDA_CHECK(cudaGetDevice(&cur));
  if (cur != device) LP_CUDA_CHECK(cudaSetDevice(device));
  return device_stream(device);
}
}  // namespace
void copy_h2d(void* dst, const void* src, size_t bytes, int device) {
  LP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_on(device)));
}
void copy_d2h(void* dst, const void* src, size_t bytes, int device) {
  cudaStream_t s = stream_on(device);
  LP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  LP_CUDA_CHECK(cudaStreamSynchronize(s));
}
void copy_d2d(void* dst, const void* src, size_t bytes, int dst_device, int src_device) {
  if (dst_device == src_device) {
    LP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_on(dst_device)));
    return;
  }
  // Between devices: the copy runs on the destination's stream after the work queued on the source's stream (which
  // may still write src), and the source's stream waits for the copy (the source block may be freed and handed out
  // on its device once this returns).
  cudaStream_t ss = stream_on(src_device);
  cudaEvent_t src_done = nullptr, copied = nullptr;
  LP_CUDA_CHECK(cudaEventCreateWithFlags(&src_done, cudaEventDisableTiming));
  cudaError_t e = cudaEventRecord(src_done, ss);
  cudaStream_t ds = stream_on(dst_device);
  if (e == cudaSuccess) e = cudaStreamWaitEvent(ds, src_done, 0);
  if (e == cudaSuccess) e = cudaMemcpyPeerAsync(dst, dst_device, src, src_device, bytes, ds);
  if (e == cudaSuccess) e = cudaEventCreateWithFlags(&copied, cudaEventDisableTiming);
  if (e == cudaSuccess) e = cudaEventRecord(copied, ds);
  if (e == cudaSuccess) e = cudaStreamWaitEvent(device_stream(src_device), copied, 0);
  // events may be destroyed while pending: their resources are released once they complete
  LP_CUDA_CHECK_PRINT(cudaEventDestroy(src_done));
  if (copied) LP_CUDA_CHECK_PRINT(cudaEventDestroy(copied));
  LP_CUDA_CHECK(e);
}
void memset_zero(void* dst, size_t bytes, int device) {
  LP_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream_on(device)));
}
namespace {
template <typename T>
__global__ void fill_gridstride_kernel(T* __restrict__ dst, int64_t n, T v) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = v;
}
}  // namespace
void fill(void* dst, int64_t n, double value, bool f64, int device) {
  if (n <= 0) return;
  unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 4096));
  cudaStream_t s = stream_on(device);
  if (f64) fill_gridstride_kernel<double><<<blocks, 256, 0, s>>>(static_cast<double*>(dst), n, value);
  else fill_gridstride_kernel<float><<<blocks, 256, 0, s>>>(static_cast<float*>(dst), n, static_cast<float>(value));
  LP_CUDA_LAUNCH_CHECK();
}
void synchronize(int device) {
  LP_CUDA_CHECK(cudaSetDevice(device));
  LP_CUDA_CHECK(cudaDeviceSynchronize());
}
bool capturing(int device) {
  if (!available()) return false;
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  LP_CUDA_CHECK(cudaStreamIsCapturing(device_stream(device), &st));
  return st == cudaStreamCaptureStatusActive;
}

// ---------------- CUDA graphs ----------------
Graph::Graph(int device) : device_(device) {
  LP_CHECK(available(), "CUDA graph: no usable GPU: ", unavailable_reason());
}
Graph::~Graph() {
  if (capturing_) {  // an exception left the capture open: end it and drop what was captured
    cudaGraph_t g = nullptr;
    (void)cudaStreamEndCapture(device_stream(device_), &g);
    if (g) (void)cudaGraphDestroy(g);
    (void)cudaGetLastError();
    allocator().locked([&](BlockCache& c) { c.close_pool(device_); });
  }
  LP_CUDA_CHECK_PRINT(cudaSetDevice(device_));
  LP_CUDA_CHECK_PRINT(cudaDeviceSynchronize());  // a replay may still run; its pool must not be handed out yet
  if (exec_) LP_CUDA_CHECK_PRINT(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_)));
  if (graph_) LP_CUDA_CHECK_PRINT(cudaGraphDestroy(static_cast<cudaGraph_t>(graph_)));
  if (pool_) allocator().locked([&](BlockCache& c) { c.release_pool(pool_); });
}
void Graph::begin() {
  LP_CHECK(!capturing_ && !exec_, "CUDA graph: begin() on a graph already captured");
  LP_CHECK(!legacy_stream(), "CUDA graph: LOWPASS_CUDA_LEGACY_STREAM is set, and the legacy stream cannot be captured");
  LP_CUDA_CHECK(cudaSetDevice(device_));
  cudaStream_t s = device_stream(device_);
  LP_CUDA_CHECK(cudaStreamSynchronize(s));  // the eager work before the capture is done
  pool_ = allocator().locked([&](BlockCache& c) { return c.open_pool(device_); });
  cudaError_t e = cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    allocator().locked([&](BlockCache& c) { c.close_pool(device_); });
    LP_CUDA_CHECK(e);
  }
  capturing_ = true;
}
void Graph::end() {
  LP_CHECK(capturing_, "CUDA graph: end() without begin()");
  cudaGraph_t g = nullptr;
  cudaError_t e = cudaStreamEndCapture(device_stream(device_), &g);
  capturing_ = false;
  allocator().locked([&](BlockCache& c) { c.close_pool(device_); });
  if (e != cudaSuccess) {
    if (g) (void)cudaGraphDestroy(g);
    (void)cudaGetLastError();
    throw Error(::lowpass::detail::concat("CUDA graph capture failed (", cudaGetErrorName(e), ": ",
                                          cudaGetErrorString(e),
                                          "): the captured step synchronised or used another stream"));
  }
  graph_ = g;
  size_t n = 0;
  LP_CUDA_CHECK(cudaGraphGetNodes(g, nullptr, &n));
  nodes_ = static_cast<int64_t>(n);
  cudaGraphExec_t ex = nullptr;
  LP_CUDA_CHECK(cudaGraphInstantiate(&ex, g, 0));
  exec_ = ex;
}
void Graph::replay() {
  LP_CHECK(exec_, "CUDA graph: replay() before a capture ended");
  LP_CUDA_CHECK(cudaSetDevice(device_));
  LP_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), device_stream(device_)));
}
int64_t Graph::pool_bytes() const {
  return pool_ ? allocator().locked([&](const BlockCache& c) { return c.pool_bytes(pool_); }) : 0;
}

std::string device_name(int device) {
  if (!available()) return "";
  cudaDeviceProp p{};
  LP_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  char buf[320];
  std::snprintf(buf, sizeof buf, "%s, %.1f GiB, sm_%d%d, %d SMs", p.name,
                static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0), p.major, p.minor,
                p.multiProcessorCount);
  return buf;
}
void set_gemm_math(Context& ctx, int device, GemmMath m) { state(ctx, device).gemm_math = m; }
GemmMath gemm_math(Context& ctx, int device) { return state(ctx, device).gemm_math; }

}  // namespace lowpass::cuda

// ---------------- CudaState ----------------
namespace lowpass {

CudaState::CudaState(int dev) : device(dev) {
  conv_backend = cuda::default_conv_backend();  // LOWPASS_CUDA_CONV; an unknown value throws here
  if (conv_backend == cuda::ConvBackend::Cudnn) cuda::require_cudnn("LOWPASS_CUDA_CONV=cudnn");
  LP_CHECK(cuda::available(), "a CUDA tensor was used but no GPU is usable: ", cuda::unavailable_reason());
  LP_CUDA_CHECK(cudaSetDevice(device));
  stream = cuda::device_stream(device);  // one per device, shared by every Context (cuda_state.h says why)
  try {  // a throw after cublasCreate (the workspace out of memory) runs no destructor: release() gives back the rest
    LP_CUBLAS_CHECK(cublasCreate(&cublas));
    LP_CUBLAS_CHECK(cublasSetStream(cublas, stream));
    // A workspace of our own (32 MiB, NVIDIA's figure for Hopper), so cuBLAS never allocates inside a graph capture.
    cublas_workspace_bytes = size_t{32} << 20;
    cublas_workspace = cuda::alloc(cublas_workspace_bytes, device);
    LP_CUBLAS_CHECK(cublasSetWorkspace(cublas, cublas_workspace, cublas_workspace_bytes));
    // float32 GEMMs stay float32 (no TF32) unless a caller opts in: float32 is the reference.
    LP_CUBLAS_CHECK(cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH));
    LP_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
    LP_CUDA_CHECK(cudaDeviceGetAttribute(&max_smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  } catch (...) {
    release();
    throw;
  }
}

CudaState::~CudaState() { release(); }

void CudaState::release() noexcept {
  cuda::cudnn_state_destroy(cudnn);  // its descriptors and handle first (it never throws)
  cudnn = nullptr;
  for (auto& [key, plan] : plans_) {
    cufftResult r = cufftDestroy(plan.handle);
    if (r != CUFFT_SUCCESS)
      std::fprintf(stderr, "lowpass: cufftDestroy failed (%s) at %s:%d (ignored in a destructor)\n",
                   cuda::detail::cufft_status_name(r), __FILE__, __LINE__);
  }
  plans_.clear();
  if (cublas) {
    cublasStatus_t s = cublasDestroy(cublas);
    if (s != CUBLAS_STATUS_SUCCESS)
      std::fprintf(stderr, "lowpass: cublasDestroy failed (%s) at %s:%d (ignored in a destructor)\n",
                   cublasGetStatusString(s), __FILE__, __LINE__);
    cublas = nullptr;
  }
  cuda::free(cublas_workspace, cublas_workspace_bytes, device);  // stream-ordered reuse makes this safe
  cublas_workspace = nullptr;
}

CudaState::Plan CudaState::make_fft_plan(cufftType type, int64_t n, int64_t batch) {
  LP_CHECK(n >= 1 && n <= INT32_MAX && batch >= 1 && batch <= INT32_MAX, "cuFFT plan: length ", n,
           " and batch ", batch, " must lie in [1, 2^31)");
  bool r2c = type == CUFFT_R2C || type == CUFFT_D2Z;
  int len = static_cast<int>(n);
  int nc = len / 2 + 1;
  int idist = r2c ? len : nc, odist = r2c ? nc : len;
  int iemb = idist, oemb = odist;  // storage length of one row in and out
  Plan plan;
  const char* step = "";  // the call that failed, for the error
  auto attempt = [&]() {  // a fresh handle each time: a failed cufftMakePlanMany leaves the handle's state undefined
    step = "cufftCreate";
    cufftResult r = cufftCreate(&plan.handle);
    if (r != CUFFT_SUCCESS) return r;
    // No auto-allocation: the work area comes from the caching allocator per execution (cuda::FftPlan).
    step = "cufftSetAutoAllocation(plan, 0)";
    r = cufftSetAutoAllocation(plan.handle, 0);
    if (r == CUFFT_SUCCESS) {
      step = "cufftMakePlanMany";
      r = cufftMakePlanMany(plan.handle, 1, &len, &iemb, 1, idist, &oemb, 1, odist, type, static_cast<int>(batch),
                            &plan.work_bytes);
    }
    if (r == CUFFT_SUCCESS) {
      step = "cufftSetStream";
      r = cufftSetStream(plan.handle, stream);
    }
    if (r != CUFFT_SUCCESS) cufftDestroy(plan.handle);
    return r;
  };
  cufftResult r = attempt();
  // cuFFT's own plan data still comes from cudaMalloc: when that fails, the free memory may sit in the allocator's
  // cached blocks. They cannot be given back inside a graph capture (cudaFree would invalidate it).
  if (r == CUFFT_ALLOC_FAILED && !cuda::capturing(device)) {
    cuda::empty_cache(device);
    r = attempt();
  }
  if (r != CUFFT_SUCCESS) cuda::detail::fail_cufft(r, step, __FILE__, __LINE__);
  return plan;
}

cuda::FftPlan CudaState::fft_plan(cufftType type, int64_t n, int64_t batch) {
  auto key = std::make_tuple(static_cast<int>(type), n, batch);
  auto it = plans_.find(key);
  if (it == plans_.end()) it = plans_.emplace(key, make_fft_plan(type, n, batch)).first;
  return cuda::FftPlan(it->second.handle, it->second.work_bytes, device);
}

namespace cuda {

FftPlan::FftPlan(cufftHandle plan, size_t work_bytes, int device)
    : handle(plan), work_bytes_(work_bytes), device_(device) {
  if (work_bytes_ == 0) return;
  work_ = cuda::alloc(work_bytes_, device_);
  cufftResult r = cufftSetWorkArea(handle, work_);
  if (r != CUFFT_SUCCESS) {
    cuda::free(work_, work_bytes_, device_);
    LP_CUFFT_CHECK(r);
  }
}

FftPlan::~FftPlan() {
  cuda::free(work_, work_bytes_, device_);  // stream-ordered reuse: only work queued after the execution gets it
}

}  // namespace cuda

namespace cuda {

CudaState& state(Context& ctx, int device) {
  CudaState* s = ctx.cuda_state();
  if (!s) {
    ctx.set_cuda_state(std::make_shared<CudaState>(device));
    s = ctx.cuda_state();
  }
  LP_CHECK(s->device == device, "a Context drives one GPU: its tensors are on cuda:", s->device,
           " but one on cuda:", device, " reached an op");
  LP_CUDA_CHECK(cudaSetDevice(device));
  return *s;
}

CudaState& state_of(const Tensor& t) {
  LP_ASSERT(t.device().is_cuda(), "state_of on ", t.describe());
  return state(t.ctx(), t.device().index);
}

unsigned grid_1d(const CudaState& st, int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  int64_t cap = static_cast<int64_t>(st.sm_count) * 32;
  if (blocks > cap) blocks = cap;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

dim3 rows_grid(int64_t rows, int64_t len, int threads) {
  const int64_t bx = std::clamp<int64_t>((len + 4 * threads - 1) / (4 * threads), 1, 1024);
  return dim3(static_cast<unsigned>(bx), static_cast<unsigned>(std::clamp<int64_t>(rows, 1, 65535)));
}

}  // namespace cuda
}  // namespace lowpass
