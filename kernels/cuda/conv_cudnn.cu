// cuDNN conv1d (kernels/cuda/conv_cudnn.h): conv1d as cuDNN's legacy 2-d cross-correlation with H = 1, symmetric zero
// padding p, stride 1, dilation d, groups G; a plan per geometry (descriptors + the fastest deterministic algorithm
// from cudnnFind*AlgorithmEx on the call's buffers); workspace from the caching allocator; bias by a small kernel.
// Ran on an H200 (cuDNN 9.19.0; docs/cuda.md). Test: build/tests/lowpass_tests -ts=cuda -sf='*cudnn*'
// Legend: B batch, G groups, C/O input/output channels per group, K taps, d dilation, p padding (each side), L lengths.
#include "kernels/cuda/conv_cudnn.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cuda/conv_backend.h"
#include "kernels/cuda/cuda_state.h"
#include "kernels/cuda/device_buffer.h"
#ifdef LOWPASS_HAVE_CUDNN
#include <cudnn.h>
#endif

#ifdef LOWPASS_HAVE_CUDNN
namespace lowpass::cuda::detail {
[[noreturn]] void fail_cudnn(cudnnStatus_t s, const char* stmt, const char* file, int line) {
  throw Error(::lowpass::detail::concat("cuDNN error ", static_cast<int>(s), " (", cudnnGetErrorString(s), ") in `",
                                        stmt, "` at ", file, ":", line));
}
void print_cudnn(cudnnStatus_t s, const char* stmt, const char* file, int line) {
  std::fprintf(stderr, "lowpass: cuDNN error %d (%s) in `%s` at %s:%d (ignored in a destructor)\n",
               static_cast<int>(s), cudnnGetErrorString(s), stmt, file, line);
}
}  // namespace lowpass::cuda::detail

// Every cuDNN call is checked (STYLE rule 3); the message names the call, file and line.
#define LP_CUDNN_CHECK(stmt)                                                                             \
  do {                                                                                                   \
    cudnnStatus_t lp_cs_ = (stmt);                                                                       \
    if (lp_cs_ != CUDNN_STATUS_SUCCESS) ::lowpass::cuda::detail::fail_cudnn(lp_cs_, #stmt, __FILE__, __LINE__); \
  } while (0)
#define LP_CUDNN_CHECK_PRINT(stmt)                                                                        \
  do {                                                                                                    \
    cudnnStatus_t lp_cs_ = (stmt);                                                                        \
    if (lp_cs_ != CUDNN_STATUS_SUCCESS) ::lowpass::cuda::detail::print_cudnn(lp_cs_, #stmt, __FILE__, __LINE__); \
  } while (0)
#endif

namespace lowpass {

#ifdef LOWPASS_HAVE_CUDNN
namespace {

enum class Dir { Fwd = 0, BwdData = 1, BwdFilter = 2 };
const char* dir_name(Dir d) { return d == Dir::Fwd ? "fwd" : d == Dir::BwdData ? "bwd_data" : "bwd_filter"; }

// One conv geometry in cuDNN's terms: x (B, G·C, 1, Lin), w (G·O, C, 1, K), y (B, G·O, 1, Lout), pad p both sides.
struct Geo {
  int64_t B, G, C, O, Lin, Lout, K, d, p;
};

// (direction, dtype, tf32, B, G, C, O, Lin, Lout, K, d, p)
using PlanKey = std::array<int64_t, 12>;

// Descriptors and the chosen algorithm of one (direction, geometry, dtype, math); owns the descriptors.
struct Plan {
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (xd) LP_CUDNN_CHECK_PRINT(cudnnDestroyTensorDescriptor(xd));
    if (yd) LP_CUDNN_CHECK_PRINT(cudnnDestroyTensorDescriptor(yd));
    if (wd) LP_CUDNN_CHECK_PRINT(cudnnDestroyFilterDescriptor(wd));
    if (cd) LP_CUDNN_CHECK_PRINT(cudnnDestroyConvolutionDescriptor(cd));
  }
  bool ok = false;  // false: cuDNN declined the geometry (remembered, so the search runs once)
  cudnnTensorDescriptor_t xd = nullptr, yd = nullptr;
  cudnnFilterDescriptor_t wd = nullptr;
  cudnnConvolutionDescriptor_t cd = nullptr;
  int algo = 0;         // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  size_t workspace = 0;  // bytes the algorithm needs
  std::string what;     // cudnn_plan_descriptions' line
};

size_t version_major(size_t v) { return v >= 10000 ? v / 10000 : v / 1000; }  // 9.x: M·10000 + m·100 + p; 8.x: M·1000
std::string version_string(size_t v) {
  const size_t major = version_major(v), minor = v >= 10000 ? (v / 100) % 100 : (v / 100) % 10, patch = v % 100;
  return ::lowpass::detail::concat(major, ".", minor, ".", patch);
}

}  // namespace

struct CudnnState {
  CudnnState() = default;
  CudnnState(const CudnnState&) = delete;
  CudnnState& operator=(const CudnnState&) = delete;
  ~CudnnState() {
    plans.clear();  // descriptors before the handle
    if (handle) LP_CUDNN_CHECK_PRINT(cudnnDestroy(handle));
  }
  cudnnHandle_t handle = nullptr;
  std::map<PlanKey, std::unique_ptr<Plan>> plans;
  cuda::CudnnStats stats;
};

namespace cuda {
namespace {

constexpr int kThreads = 256;

// y[b, co, t] += bias[co] over y (B, Cout, Lout).
template <typename T>
__global__ void add_channel_bias_kernel(T* __restrict__ y, const T* __restrict__ bias, int64_t total, int64_t Cout,
                                        int64_t Lout) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[e] += bias[(e / Lout) % Cout];
}

// The CudaState's cuDNN state, created on first use: checks the run-time major version, then makes the handle and
// binds it to the state's stream.
CudnnState& cudnn_of(CudaState& st) {
  if (!st.cudnn) {
    const size_t v = cudnnGetVersion();
    LP_CHECK(version_major(v) == CUDNN_MAJOR, "cuDNN: the run-time library is version ", version_string(v),
             " but lowpass was built against cuDNN ", CUDNN_MAJOR, ".", CUDNN_MINOR, ".", CUDNN_PATCHLEVEL,
             " and needs major version ", CUDNN_MAJOR,
             " (put the directory holding libcudnn.so.9 first on LD_LIBRARY_PATH, e.g. PyTorch's nvidia/cudnn/lib)");
    auto s = std::make_unique<CudnnState>();
    LP_CUDNN_CHECK(cudnnCreate(&s->handle));
    LP_CUDNN_CHECK(cudnnSetStream(s->handle, st.stream));
    st.cudnn = s.release();
  }
  return *st.cudnn;
}

bool fits_int(std::initializer_list<int64_t> vs) {
  for (int64_t v : vs)
    if (v < 1 || v > INT_MAX) return false;
  return true;
}

// Whether cuDNN's legacy API can express the problem: symmetric padding, nothing empty, 32-bit sizes and element counts.
bool expressible(const Geo& g, const Conv1dOpts& o) {
  if (o.pad_left != o.pad_right) return false;  // cuDNN pads both sides alike
  LP_ASSERT(g.Lout == g.Lin + 2 * g.p - g.d * (g.K - 1), "cuDNN conv1d: inconsistent geometry");
  return fits_int({g.B, g.G, g.C, g.O, g.Lin, g.Lout, g.K, g.d, g.p + 1, g.G * g.C, g.G * g.O, g.B * g.G * g.C * g.Lin,
                   g.B * g.G * g.O * g.Lout, g.G * g.O * g.C * g.K});
}

template <typename T>
cudnnDataType_t cudnn_dtype() {
  return std::is_same_v<T, float> ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

const char* math_name(cudnnMathType_t m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor-op-allow-conversion";
    case CUDNN_FMA_MATH: return "fma";
    default: return "?";
  }
}

// Picks the fastest result (Find sorts by time) that succeeded, is deterministic, fits the workspace and uses an
// allowed math: never down-conversion; float32 without the TF32 switch: FMA only. Returns its index or -1.
template <typename Perf>
int choose(const Perf* perf, int n, size_t ws_size, bool fma_only, int& deterministic) {
  int pick = -1;
  deterministic = 0;
  for (int i = 0; i < n; ++i) {
    const Perf& r = perf[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.determinism != CUDNN_DETERMINISTIC) continue;
    ++deterministic;
    if (r.memory > ws_size || r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
    if (fma_only && r.mathType != CUDNN_FMA_MATH) continue;
    if (pick < 0) pick = i;
  }
  return pick;
}

// Operand pointers of one call: a = x (fwd, bwd_filter) or dy (bwd_data); b = w (fwd, bwd_data) or dy (bwd_filter);
// out = y, dx or dw.
struct Operands {
  const void* a;
  const void* b;
  void* out;
};

// Creates the descriptors, searches the algorithms on the call's buffers and fills `p` (p.ok = false: declined).
template <typename T>
void make_plan(CudaState& st, CudnnState& cs, Plan& p, Dir dir, const Geo& g, const Operands& op, int device) {
  const cudnnDataType_t dt = cudnn_dtype<T>();
  const bool fma_only = std::is_same_v<T, float> && st.gemm_math == GemmMath::Float32;
  LP_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.xd));
  LP_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.yd));
  LP_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.wd));
  LP_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p.cd));
  LP_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.xd, CUDNN_TENSOR_NCHW, dt, int(g.B), int(g.G * g.C), 1, int(g.Lin)));
  LP_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.yd, CUDNN_TENSOR_NCHW, dt, int(g.B), int(g.G * g.O), 1, int(g.Lout)));
  LP_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p.wd, dt, CUDNN_TENSOR_NCHW, int(g.G * g.O), int(g.C), 1, int(g.K)));
  LP_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p.cd, /*pad_h=*/0, /*pad_w=*/int(g.p), /*u=*/1, /*v=*/1,
                                                 /*dilation_h=*/1, /*dilation_w=*/int(g.d), CUDNN_CROSS_CORRELATION, dt));
  LP_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p.cd, int(g.G)));
  // float32: plain FMA unless the TF32 switch is on (then cuDNN may pick TF32 tensor-core kernels); float64: default.
  LP_CUDNN_CHECK(cudnnSetConvolutionMathType(p.cd, fma_only ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH));
  int on = 0, oc = 0, oh = 0, ow = 0;
  LP_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p.cd, p.xd, p.wd, &on, &oc, &oh, &ow));
  LP_ASSERT(on == g.B && oc == g.G * g.O && oh == 1 && ow == g.Lout, "cuDNN conv1d: cuDNN's output (", on, ", ", oc,
            ", ", oh, ", ", ow, ") is not (B, G·O, 1, Lout)");

  // Search workspace: the most any algorithm asks for, within st.cudnn_workspace_limit.
  const size_t limit = static_cast<size_t>(std::max<int64_t>(st.cudnn_workspace_limit, 0));
  size_t ws_size = 0;
  auto consider = [&](cudnnStatus_t s, size_t bytes) {
    if (s == CUDNN_STATUS_SUCCESS && bytes <= limit) ws_size = std::max(ws_size, bytes);
  };
  int max_n = 0;
  if (dir == Dir::Fwd) {
    for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; ++a) {
      size_t b = 0;
      consider(cudnnGetConvolutionForwardWorkspaceSize(cs.handle, p.xd, p.wd, p.cd, p.yd,
                                                       static_cast<cudnnConvolutionFwdAlgo_t>(a), &b), b);
    }
    LP_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(cs.handle, &max_n));
  } else if (dir == Dir::BwdData) {
    for (int a = 0; a < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; ++a) {
      size_t b = 0;
      consider(cudnnGetConvolutionBackwardDataWorkspaceSize(cs.handle, p.wd, p.yd, p.cd, p.xd,
                                                            static_cast<cudnnConvolutionBwdDataAlgo_t>(a), &b), b);
    }
    LP_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cs.handle, &max_n));
  } else {
    for (int a = 0; a < CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT; ++a) {
      size_t b = 0;
      consider(cudnnGetConvolutionBackwardFilterWorkspaceSize(cs.handle, p.xd, p.yd, p.cd, p.wd,
                                                              static_cast<cudnnConvolutionBwdFilterAlgo_t>(a), &b), b);
    }
    LP_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cs.handle, &max_n));
  }
  max_n = std::max(max_n, 1);
  DeviceBuffer<unsigned char> ws(ws_size, device);

  // cudnnFind*AlgorithmEx runs every algorithm on these buffers (it overwrites the output, which the call then
  // overwrites again) and returns them sorted by time. NOT_SUPPORTED means no algorithm takes this geometry.
  int n = 0, deterministic = 0, pick = -1;
  cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  float ms = 0;
  if (dir == Dir::Fwd) {
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(max_n));
    s = cudnnFindConvolutionForwardAlgorithmEx(cs.handle, p.xd, op.a, p.wd, op.b, p.cd, p.yd, op.out, max_n, &n,
                                               perf.data(), ws.get(), ws_size);
    if (s == CUDNN_STATUS_SUCCESS && (pick = choose(perf.data(), n, ws_size, fma_only, deterministic)) >= 0)
      p.algo = perf[pick].algo, math = perf[pick].mathType, ms = perf[pick].time;
  } else if (dir == Dir::BwdData) {
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<size_t>(max_n));
    s = cudnnFindConvolutionBackwardDataAlgorithmEx(cs.handle, p.wd, op.b, p.yd, op.a, p.cd, p.xd, op.out, max_n, &n,
                                                    perf.data(), ws.get(), ws_size);
    if (s == CUDNN_STATUS_SUCCESS && (pick = choose(perf.data(), n, ws_size, fma_only, deterministic)) >= 0)
      p.algo = perf[pick].algo, math = perf[pick].mathType, ms = perf[pick].time;
  } else {
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(static_cast<size_t>(max_n));
    s = cudnnFindConvolutionBackwardFilterAlgorithmEx(cs.handle, p.xd, op.a, p.yd, op.b, p.cd, p.wd, op.out, max_n,
                                                      &n, perf.data(), ws.get(), ws_size);
    if (s == CUDNN_STATUS_SUCCESS && (pick = choose(perf.data(), n, ws_size, fma_only, deterministic)) >= 0)
      p.algo = perf[pick].algo, math = perf[pick].mathType, ms = perf[pick].time;
  }
  if (s != CUDNN_STATUS_NOT_SUPPORTED) LP_CUDNN_CHECK(s);
  const std::string head = ::lowpass::detail::concat(
      "cudnn ", dir_name(dir), " ", std::is_same_v<T, float> ? "f32" : "f64",
      std::is_same_v<T, float> && st.gemm_math == GemmMath::TF32 ? " (tf32 allowed)" : "", " B",
      g.B, " G", g.G, " C", g.C, " O", g.O, " L", g.Lin, "->", g.Lout, " K", g.K, " d", g.d, " p", g.p, ": ");
  if (pick < 0) {
    p.what = head + (s == CUDNN_STATUS_NOT_SUPPORTED
                         ? std::string("declined (cuDNN: not supported)")
                         : ::lowpass::detail::concat("declined (", n, " algorithms ran, ", deterministic,
                                                     " deterministic, none with the allowed math and workspace)"));
    return;
  }
  // cuDNN picks kernels by (algorithm, math type): run with the math the search measured (PyTorch does the same).
  LP_CUDNN_CHECK(cudnnSetConvolutionMathType(p.cd, math));
  size_t need = 0;
  if (dir == Dir::Fwd)
    LP_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(cs.handle, p.xd, p.wd, p.cd, p.yd,
                                                           static_cast<cudnnConvolutionFwdAlgo_t>(p.algo), &need));
  else if (dir == Dir::BwdData)
    LP_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
        cs.handle, p.wd, p.yd, p.cd, p.xd, static_cast<cudnnConvolutionBwdDataAlgo_t>(p.algo), &need));
  else
    LP_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
        cs.handle, p.xd, p.yd, p.cd, p.wd, static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.algo), &need));
  p.workspace = need;
  p.ok = true;
  p.what = head + ::lowpass::detail::concat("algo ", p.algo, ", math ", math_name(math), ", workspace ", need,
                                            " B, ", ms, " ms in the search (", deterministic, " deterministic of ", n,
                                            ")");
}

// Looks up (or makes) the plan of this call; nullptr when cuDNN declines it.
template <typename T>
const Plan* plan_for(CudaState& st, CudnnState& cs, Dir dir, const Geo& g, const Operands& op, int device) {
  const bool f32 = std::is_same_v<T, float>;  // the TF32 switch only matters for float32
  const PlanKey key{static_cast<int64_t>(dir), f32 ? 0 : 1, f32 && st.gemm_math == GemmMath::TF32 ? 1 : 0,
                    g.B, g.G, g.C, g.O, g.Lin, g.Lout, g.K, g.d, g.p};
  auto it = cs.plans.find(key);
  if (it == cs.plans.end()) {
    auto p = std::make_unique<Plan>();
    make_plan<T>(st, cs, *p, dir, g, op, device);
    cs.stats.plans++;
    it = cs.plans.emplace(key, std::move(p)).first;
  }
  return it->second->ok ? it->second.get() : nullptr;
}

// Runs one direction: plans on first use, then the cuDNN call with a workspace from the caching allocator.
template <typename T>
bool run(const Tensor& any, Dir dir, const Geo& g, const Conv1dOpts& o, const Operands& op, const Tensor& bias) {
  CudaState& st = state_of(any);
  CudnnState& cs = cudnn_of(st);
  // bfloat16 compute for float32 tensors does not exist in cuDNN's legacy API: with the BF16 switch, float32
  // convolutions are declined and take the im2col path, whose cuBLAS GEMMs honour it (runtime.h, GemmMath).
  if (!expressible(g, o) || (std::is_same_v<T, float> && st.gemm_math == GemmMath::BF16)) {
    cs.stats.declined++;
    return false;
  }
  const int device = any.device().index;
  const Plan* p = plan_for<T>(st, cs, dir, g, op, device);
  if (!p) {
    cs.stats.declined++;
    return false;
  }
  DeviceBuffer<unsigned char> ws(p->workspace, device);
  const T one = 1, zero = 0;  // cuDNN's scaling factors are double for double data, float otherwise
  if (dir == Dir::Fwd) {
    LP_CUDNN_CHECK(cudnnConvolutionForward(cs.handle, &one, p->xd, op.a, p->wd, op.b, p->cd,
                                           static_cast<cudnnConvolutionFwdAlgo_t>(p->algo), ws.get(), p->workspace,
                                           &zero, p->yd, op.out));
    if (bias.defined()) {
      const int64_t total = g.B * g.G * g.O * g.Lout;
      add_channel_bias_kernel<T><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
          static_cast<T*>(op.out), bias.data<T>(), total, g.G * g.O, g.Lout);
      LP_CUDA_LAUNCH_CHECK();
    }
    cs.stats.fwd++;
  } else if (dir == Dir::BwdData) {
    LP_CUDNN_CHECK(cudnnConvolutionBackwardData(cs.handle, &one, p->wd, op.b, p->yd, op.a, p->cd,
                                                static_cast<cudnnConvolutionBwdDataAlgo_t>(p->algo), ws.get(),
                                                p->workspace, &zero, p->xd, op.out));
    cs.stats.bwd_data++;
  } else {
    LP_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cs.handle, &one, p->xd, op.a, p->yd, op.b, p->cd,
                                                  static_cast<cudnnConvolutionBwdFilterAlgo_t>(p->algo), ws.get(),
                                                  p->workspace, &zero, p->wd, op.out));
    cs.stats.bwd_filter++;
  }
  return true;
}

}  // namespace

bool conv1d_fwd_cudnn(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const Conv1dOpts& o) {
  const int64_t G = o.groups;
  const Geo g{x.size(0), G, x.size(1) / G, w.size(0) / G, x.size(2), y.size(2), w.size(2), o.dilation, o.pad_left};
  return dispatch_dtype(x.dtype(), [&]<typename T>() {
    return run<T>(x, Dir::Fwd, g, o, {x.data<T>(), w.data<T>(), y.data<T>()}, bias);
  });
}

bool conv1d_bwd_input_cudnn(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv1dOpts& o) {
  const int64_t G = o.groups;
  const Geo g{dy.size(0), G, w.size(1), w.size(0) / G, dx.size(2), dy.size(2), w.size(2), o.dilation, o.pad_left};
  return dispatch_dtype(dy.dtype(), [&]<typename T>() {
    return run<T>(dy, Dir::BwdData, g, o, {dy.data<T>(), w.data<T>(), dx.data<T>()}, Tensor());
  });
}

bool conv1d_bwd_weight_cudnn(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv1dOpts& o) {
  const int64_t G = o.groups;
  const Geo g{x.size(0), G, x.size(1) / G, dy.size(1) / G, x.size(2), dy.size(2), dw.size(2), o.dilation, o.pad_left};
  return dispatch_dtype(x.dtype(), [&]<typename T>() {
    return run<T>(x, Dir::BwdFilter, g, o, {x.data<T>(), dy.data<T>(), dw.data<T>()}, Tensor());
  });
}

CudnnStats cudnn_stats(Context& ctx, int device) {
  const CudaState& st = state(ctx, device);
  return st.cudnn ? st.cudnn->stats : CudnnStats{};
}

std::vector<std::string> cudnn_plan_descriptions(Context& ctx, int device) {
  const CudaState& st = state(ctx, device);
  std::vector<std::string> out;
  if (st.cudnn)
    for (const auto& [key, p] : st.cudnn->plans) out.push_back(p->what);
  return out;
}

void cudnn_state_destroy(CudnnState* s) noexcept { delete s; }

bool cudnn_compiled() { return true; }
std::string cudnn_version() { return version_string(cudnnGetVersion()); }

}  // namespace cuda

#else  // built without cuDNN: the cuDNN entry points decline and set_conv_backend(Cudnn) throws

struct CudnnState {};

namespace cuda {
bool conv1d_fwd_cudnn(const Tensor&, const Tensor&, const Tensor&, Tensor&, const Conv1dOpts&) { return false; }
bool conv1d_bwd_input_cudnn(const Tensor&, const Tensor&, Tensor&, const Conv1dOpts&) { return false; }
bool conv1d_bwd_weight_cudnn(const Tensor&, const Tensor&, Tensor&, const Conv1dOpts&) { return false; }
CudnnStats cudnn_stats(Context&, int) { return {}; }
std::vector<std::string> cudnn_plan_descriptions(Context&, int) { return {}; }
void cudnn_state_destroy(CudnnState* s) noexcept { delete s; }
bool cudnn_compiled() { return false; }
std::string cudnn_version() { return ""; }
}  // namespace cuda

#endif  // LOWPASS_HAVE_CUDNN

namespace cuda {

void set_conv_backend(Context& ctx, int device, ConvBackend b) {
  if (b == ConvBackend::Cudnn) require_cudnn("set_conv_backend");
  state(ctx, device).conv_backend = b;
}

ConvBackend conv_backend(Context& ctx, int device) { return state(ctx, device).conv_backend; }

}  // namespace cuda
}  // namespace lowpass
