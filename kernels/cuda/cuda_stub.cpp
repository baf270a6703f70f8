// Stand-in for the CUDA backend when lowpass is built without nvcc (-Dcuda=disabled or no nvcc).
#include "engine/error.h"
#include "kernels/cuda/conv_backend.h"
#include "kernels/cuda/runtime.h"

namespace lowpass::cuda {
namespace {
[[noreturn]] void no_cuda() { throw Error("lowpass was built without the CUDA backend (-Dcuda=disabled or no nvcc)"); }
}  // namespace
bool available() { return false; }
bool compiled() { return false; }
std::string unavailable_reason() { return "built without CUDA"; }
void* alloc(size_t, int) { no_cuda(); }
void free(void*, size_t, int) {}
void copy_h2d(void*, const void*, size_t, int) { no_cuda(); }
void copy_d2h(void*, const void*, size_t, int) { no_cuda(); }
void copy_d2d(void*, const void*, size_t, int, int) { no_cuda(); }
void memset_zero(void*, size_t, int) { no_cuda(); }
void fill(void*, int64_t, double, bool, int) { no_cuda(); }
AllocatorStats allocator_stats(int) { return {}; }
void empty_cache(int) {}
void synchronize(int) { no_cuda(); }
std::string device_name(int) { return ""; }
bool capturing(int) { return false; }
Graph::Graph(int) { no_cuda(); }
Graph::~Graph() = default;
void Graph::begin() { no_cuda(); }
void Graph::end() { no_cuda(); }
void Graph::replay() { no_cuda(); }
int64_t Graph::pool_bytes() const { return 0; }
void set_gemm_math(Context&, int, GemmMath m) {
  if (m != GemmMath::Float32) no_cuda();
}
GemmMath gemm_math(Context&, int) { return GemmMath::Float32; }
bool cudnn_compiled() { return false; }
std::string cudnn_version() { return ""; }
void set_conv_backend(Context&, int, ConvBackend b) {
  if (b == ConvBackend::Cudnn) no_cuda();
}
ConvBackend conv_backend(Context&, int) { return ConvBackend::Im2col; }
}  // namespace lowpass::cuda
