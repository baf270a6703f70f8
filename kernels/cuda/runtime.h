// Host-side interface to the CUDA backend: device discovery, the caching allocator, copies.
// Implemented in kernels/cuda/runtime.cu (built when nvcc is found) or cuda_stub.cpp otherwise.
// Test: build/tests/lowpass_tests -ts=cuda (skips with a message when no GPU is visible).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lowpass {
class Context;
}

namespace lowpass::cuda {

// True when the backend was compiled in AND cudaGetDeviceCount succeeds with >= 1 device.
// Any CUDA error (e.g. 35, no driver) counts as "no device"; never throws. Cached after the first call.
bool available();
bool compiled();               // backend compiled in
std::string unavailable_reason();  // why available() is false, for skip messages

// Caching allocator: sizes are rounded up to a bucket (<= 12.5% waste, 512 B minimum) and freed
// blocks go to a per-device, per-bucket free list that later allocations of the same bucket reuse;
// cudaMalloc is called only on a miss (after warm-up, never). Thread-safe.
inline size_t allocator_bucket(size_t bytes) {
  size_t pow2 = 512;
  while (pow2 * 2 <= bytes) pow2 *= 2;           // largest power of two <= bytes (>= 512)
  size_t step = pow2 / 8 < 512 ? 512 : pow2 / 8;  // 8 buckets per octave above 4 KiB
  size_t b = (bytes + step - 1) / step * step;
  return b < 512 ? 512 : b;
}
void* alloc(size_t bytes, int device);
void free(void* p, size_t bytes, int device);
struct AllocatorStats {
  int64_t device_mallocs = 0;  // cudaMalloc calls so far
  int64_t cache_hits = 0;      // allocations served from a free list
  int64_t bytes_in_use = 0;    // bucket bytes handed out and not yet freed
  int64_t bytes_cached = 0;    // bucket bytes on the free lists
};
AllocatorStats allocator_stats(int device);
void empty_cache(int device);  // cudaFree every cached block of `device` (synchronises it)

// Copies and memset on the stream of `device`, the device that holds the memory (cuda_state.h: one stream per
// device, shared by every Context), which they make current. copy_d2h returns when the data is on the host; copy_h2d
// when the host buffer may be reused (pageable memory is staged); copy_d2d and memset_zero are stream-ordered (and
// may be captured into a CUDA graph). copy_d2d between two devices runs on the destination's stream after the work
// queued on the source's, and the source's stream waits for it.
void copy_h2d(void* dst, const void* src, size_t bytes, int device);
void copy_d2h(void* dst, const void* src, size_t bytes, int device);
void copy_d2d(void* dst, const void* src, size_t bytes, int dst_device, int src_device);
void memset_zero(void* dst, size_t bytes, int device);
// dst[0..n) = value as float32 (f64 = false) or float64, on the stream of `device` (for Tensor::fill_).
void fill(void* dst, int64_t n, double value, bool f64, int device);
void synchronize(int device);
// True while a CUDA-graph capture runs on the device's stream: work that would read back (a device
// synchronisation) must take a path that does not (conv1d's one-hot check does).
bool capturing(int device);

// A CUDA graph of the work queued on one device's stream between begin() and end() (docs/cuda.md, "CUDA graphs").
// Allocations made during the capture come from a private pool of the caching allocator that stays with the graph,
// so replays find their memory untouched by anything that ran in between. The captured work must not synchronise
// or read back; tensors allocated during the capture and still held afterwards keep their addresses, and a replay
// rewrites them. Destroying the graph synchronises the device and gives the pool back.
class Graph {
 public:
  explicit Graph(int device);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  void begin();   // opens the pool and starts capturing the stream (thread-local capture mode)
  void end();     // stops capturing, closes the pool and instantiates the graph; throws if the capture failed
  void replay();  // queues one run of the graph on the stream (asynchronous)
  bool ready() const { return exec_ != nullptr; }
  int64_t nodes() const { return nodes_; }           // kernels, copies and memsets captured
  int64_t pool_bytes() const;                         // device memory the graph's pool holds
 private:
  int device_ = 0;
  int64_t pool_ = 0;
  void* graph_ = nullptr;  // cudaGraph_t
  void* exec_ = nullptr;   // cudaGraphExec_t
  int64_t nodes_ = 0;
  bool capturing_ = false;
};
// The GPU's name and memory for logs, e.g. "NVIDIA H100 80GB HBM3, 79.1 GiB, sm_90".
std::string device_name(int device);
// How the float32 GEMMs of a Context (matmul, linear, conv1d's im2col path) compute:
//   Float32: cublasSgemm, plain float32 (the default and the reference);
//   TF32:    CUBLAS_COMPUTE_32F_FAST_TF32, inputs rounded to TF32 (10 mantissa bits), float32 sums;
//   BF16:    CUBLAS_COMPUTE_32F_FAST_16BF, inputs rounded to bfloat16 (7 mantissa bits), float32 sums.
// Tensors stay float32 in memory either way; float64 GEMMs are never affected. With BF16 the cuDNN conv backend
// declines float32 convolutions (its legacy API has no bfloat16 compute for float32 tensors), so they take the
// im2col path and its bfloat16 GEMMs; the direct kernels (conv_direct.h) are float32 FMA under every setting.
enum class GemmMath { Float32, TF32, BF16 };
inline const char* gemm_math_name(GemmMath m) {
  return m == GemmMath::TF32 ? "tf32" : m == GemmMath::BF16 ? "bf16" : "float32";
}
void set_gemm_math(Context& ctx, int device, GemmMath m);
GemmMath gemm_math(Context& ctx, int device);
inline void set_tf32(Context& ctx, int device, bool on) {
  set_gemm_math(ctx, device, on ? GemmMath::TF32 : GemmMath::Float32);
}
// The math a pair of switches asks for (train.tf32/train.bf16, --tf32/--bf16; callers refuse both on).
inline GemmMath gemm_math_for(bool tf32, bool bf16) {
  return bf16 ? GemmMath::BF16 : tf32 ? GemmMath::TF32 : GemmMath::Float32;
}

}  // namespace lowpass::cuda
