// CUDA conv1d: im2col (batch chunks) + cuBLAS strided-batched GEMM for the correlation, one GEMM per
// group with k = chunk·Lout for the weight grad, one-hot gather/scatter kernels. float32 GEMMs run in
// plain float32 unless TF32 or bf16 is switched on (cuda::set_gemm_math). With the cuDNN backend selected
// (conv_backend.h, opt-in) the dense directions go to conv_cudnn.cu first and come back here when cuDNN declines.
// Test: build/tests/lowpass_tests -ts=cuda.
#include "kernels/cuda/conv1d.h"

#include <climits>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <vector>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/conv_direct.h"
#include "kernels/cuda/conv_tune.h"
#include "kernels/cuda/cuda_state.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/index.h"

namespace lowpass::cuda {
namespace {

constexpr int kThreads = 256;

// Index arithmetic in I: uint32_t when every index of the launch fits (division by a 64-bit divisor costs
// several times a 32-bit one, and these kernels do 2-5 per element), int64_t otherwise (fits32 below).
#define LP_GRID_STRIDE_I(I, i, n)                                                              \
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<I>(n); \
       i += static_cast<I>(gridDim.x) * blockDim.x)

// im2col for batches [b0, b0 + nb). kGroupMajor = false: col (nb, G, C·K, Lout) for the forward;
// true: col (G, C·K, nb, Lout) so that one GEMM per group sums over the whole chunk (weight grad).
// Rows of col along grid y, positions along x (im2col_row in kernels/cuda/index.h: one row's source, once).
template <typename T, bool kGroupMajor, typename I>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ col, I rows, I b0, I nb, I G, I C, I Lin,
                              I Lout, I K, I d, I p) {
  for (I r = blockIdx.y; r < rows; r += gridDim.y) {
    int64_t xrow;
    I kd;
    im2col_row<I, kGroupMajor>(r, b0, nb, G, C, Lin, K, d, xrow, kd);
    T* out = col + static_cast<int64_t>(r) * Lout;
    for (I t = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; t < Lout;
         t += static_cast<I>(gridDim.x) * blockDim.x) {
      const I sp = t + kd;
      out[t] = (sp >= p && sp < Lin + p) ? x[xrow + static_cast<int64_t>(sp - p)] : T(0);
    }
  }
}

// dyt (G, O, nb, Lout) = dy[b0 + bb, gO + o, t]; rows r = go·nb + bb along grid y.
template <typename T, typename I>
__global__ void dy_group_major_kernel(const T* __restrict__ dy, T* __restrict__ dyt, I rows, I b0, I nb, I G, I O,
                                      I Lout) {
  for (I r = blockIdx.y; r < rows; r += gridDim.y) {
    const I bb = r % nb, go = r / nb;  // go = gi·O + o
    const T* src = dy + static_cast<int64_t>((b0 + bb) * G * O + go) * Lout;
    T* out = dyt + static_cast<int64_t>(r) * Lout;
    for (I t = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; t < Lout;
         t += static_cast<I>(gridDim.x) * blockDim.x)
      out[t] = src[t];
  }
}

template <typename T, typename I>
__global__ void add_bias_kernel(T* __restrict__ y, const T* __restrict__ bias, I total, I Cout, I Lout) {
  LP_GRID_STRIDE_I(I, e, total) y[e] += bias[(e / Lout) % Cout];
}

// True when every value listed (sizes, element counts, largest index + 1) is below 2^31.
bool fits32(std::initializer_list<int64_t> vs) {
  for (int64_t v : vs)
    if (v < 0 || v >= (int64_t{1} << 31)) return false;
  return true;
}

// wt (G·C, O, K): wt[gC+c, o, K-1-k] = w[gO+o, c, k] (the input grad's weights).
template <typename T>
__global__ void flip_transpose_weight_kernel(const T* __restrict__ w, T* __restrict__ wt, int64_t total, int64_t G,
                                             int64_t O, int64_t C, int64_t K) {
  LP_GRID_STRIDE(e, total) {  // e indexes w
    int64_t k = e % K, r = e / K;
    int64_t c = r % C;
    r /= C;
    int64_t o = r % O, gi = r / O;
    wt[((gi * C + c) * O + o) * K + (K - 1 - k)] = w[e];
  }
}

template <typename T>
__global__ void onehot_codes_kernel(const T* __restrict__ x, int8_t* __restrict__ codes, int* __restrict__ bad,
                                    int64_t total, int64_t C, int64_t L) {
  LP_GRID_STRIDE(e, total) {  // e = b·L + l
    int64_t b = e / L, l = e % L;
    int code = -1, ones = 0;
    bool ok = true;
    for (int64_t c = 0; c < C; ++c) {
      T v = x[(b * C + c) * L + l];
      if (v == T(1)) {
        ++ones;
        code = static_cast<int>(c);
      } else if (v != T(0)) {
        ok = false;
      }
    }
    if (!ok || ones > 1) *bad = 1;
    codes[e] = static_cast<int8_t>(code);
  }
}

template <typename T, typename I>
__global__ void gather_fwd_kernel(const int8_t* __restrict__ codes, const T* __restrict__ w,
                                  const T* __restrict__ bias, T* __restrict__ y, I total, I C, I O, I Lin, I Lout,
                                  I K, I d, I p) {
  LP_GRID_STRIDE_I(I, e, total) {  // e indexes y (B, O, Lout)
    I t = e % Lout, r = e / Lout;
    I o = r % O, b = r / O;
    T s = bias ? bias[o] : T(0);
    const T* wo = w + o * C * K;
    for (I k = 0; k < K; ++k) {
      I sp = t + k * d;  // source column sp - p
      if (sp < p || sp >= Lin + p) continue;
      int code = codes[b * Lin + (sp - p)];
      if (code >= 0) s += wo[code * K + k];
    }
    y[e] = s;
  }
}

constexpr int kMaxOnehotC = 16;

// One block per (o, k): per-channel sums of dy over the positions whose source column holds that channel.
template <typename T>
__global__ void scatter_wgrad_kernel(const int8_t* __restrict__ codes, const T* __restrict__ dy, T* __restrict__ dw,
                                     int64_t B, int64_t C, int64_t O, int64_t Lin, int64_t Lout, int64_t K, int64_t d,
                                     int64_t p) {
  int64_t o = blockIdx.x / K, k = blockIdx.x % K;
  double acc[kMaxOnehotC];
#pragma unroll
  for (int c = 0; c < kMaxOnehotC; ++c) acc[c] = 0;
  for (int64_t e = threadIdx.x; e < B * Lout; e += blockDim.x) {
    int64_t b = e / Lout, t = e % Lout;
    int64_t src = t + k * d - p;
    if (src < 0 || src >= Lin) continue;
    int code = codes[b * Lin + src];
    double v = static_cast<double>(dy[(b * O + o) * Lout + t]);
#pragma unroll
    for (int c = 0; c < kMaxOnehotC; ++c) acc[c] += code == c ? v : 0.0;
  }
  __shared__ double part[kThreads];
  for (int64_t c = 0; c < C; ++c) {
    double v = 0;
#pragma unroll
    for (int cc = 0; cc < kMaxOnehotC; ++cc) v = cc == c ? acc[cc] : v;
    part[threadIdx.x] = v;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) dw[(o * C + c) * K + k] = static_cast<T>(part[0]);
    __syncthreads();
  }
}


int64_t chunk_batches(const CudaState& st, int64_t per_batch_elems, size_t elem, int64_t B) {
  int64_t per = std::max<int64_t>(1, per_batch_elems * static_cast<int64_t>(elem));
  return std::clamp<int64_t>(st.conv_workspace_bytes / per, 1, std::max<int64_t>(B, 1));
}

template <typename T>
void corr_t(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  CudaState& st = state_of(x);
  const int64_t CK = g.C * g.K;
  const int64_t nb_max = chunk_batches(st, g.G * CK * g.Lout, sizeof(T), g.B);
  DeviceBuffer<T> col(static_cast<size_t>(nb_max * g.G * CK * g.Lout), x.device().index);
  const T* px = x.data<T>();
  const T* pw = w.data<T>();
  T* py = y.data<T>();
  for (int64_t b0 = 0; b0 < g.B; b0 += nb_max) {
    int64_t nb = std::min(nb_max, g.B - b0);
    int64_t total = nb * g.G * CK * g.Lout, rows = nb * g.G * CK;
    const dim3 grid = rows_grid(rows, g.Lout, kThreads);
    if (fits32({total, g.B * g.G * g.C * g.Lin, g.Lout + g.K * g.d, g.Lin + g.p, g.p}))
      im2col_kernel<T, false, uint32_t><<<grid, kThreads, 0, st.stream>>>(px, col.get(), rows, b0, nb, g.G, g.C,
                                                                         g.Lin, g.Lout, g.K, g.d, g.p);
    else
      im2col_kernel<T, false, int64_t><<<grid, kThreads, 0, st.stream>>>(px, col.get(), rows, b0, nb, g.G, g.C,
                                                                        g.Lin, g.Lout, g.K, g.d, g.p);
    LP_CUDA_LAUNCH_CHECK();
    for (int64_t gi = 0; gi < g.G; ++gi)  // y_b[gO.., :] (O, Lout) = w_g (O, CK) · col_{b,g} (CK, Lout)
      gemm_strided_batched<T>(st, false, false, g.Lout, g.O, CK, col.get() + gi * CK * g.Lout, g.Lout,
                              g.G * CK * g.Lout, pw + gi * g.O * CK, CK, 0, T(0),
                              py + (b0 * g.G * g.O + gi * g.O) * g.Lout, g.Lout, g.G * g.O * g.Lout, nb);
  }
  if (bias.defined()) {
    int64_t total = g.B * g.G * g.O * g.Lout;
    if (fits32({total}))
      add_bias_kernel<T, uint32_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(py, bias.data<T>(), total,
                                                                                         g.G * g.O, g.Lout);
    else
      add_bias_kernel<T, int64_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(py, bias.data<T>(), total,
                                                                                        g.G * g.O, g.Lout);
    LP_CUDA_LAUNCH_CHECK();
  }
}

template <typename T>
void corr_wgrad_t(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g) {
  CudaState& st = state_of(x);
  const int64_t CK = g.C * g.K;
  const int64_t nb_max = chunk_batches(st, g.G * (CK + g.O) * g.Lout, sizeof(T), g.B);
  DeviceBuffer<T> col(static_cast<size_t>(nb_max * g.G * CK * g.Lout), x.device().index);
  DeviceBuffer<T> dyt(static_cast<size_t>(nb_max * g.G * g.O * g.Lout), x.device().index);
  T* pdw = dw.data<T>();
  for (int64_t b0 = 0; b0 < g.B; b0 += nb_max) {
    int64_t nb = std::min(nb_max, g.B - b0);
    int64_t N = nb * g.Lout;
    int64_t tc = g.G * CK * N, td = g.G * g.O * N;
    const bool small = fits32({tc, td, g.B * g.G * g.C * g.Lin, g.B * g.G * g.O * g.Lout, g.Lout + g.K * g.d,
                               g.Lin + g.p, g.p});
    const int64_t rc = g.G * CK * nb, rd = g.G * g.O * nb;
    const dim3 gc = rows_grid(rc, g.Lout, kThreads), gd = rows_grid(rd, g.Lout, kThreads);
    if (small)
      im2col_kernel<T, true, uint32_t><<<gc, kThreads, 0, st.stream>>>(x.data<T>(), col.get(), rc, b0, nb, g.G, g.C,
                                                                       g.Lin, g.Lout, g.K, g.d, g.p);
    else
      im2col_kernel<T, true, int64_t><<<gc, kThreads, 0, st.stream>>>(x.data<T>(), col.get(), rc, b0, nb, g.G, g.C,
                                                                      g.Lin, g.Lout, g.K, g.d, g.p);
    LP_CUDA_LAUNCH_CHECK();
    if (small)
      dy_group_major_kernel<T, uint32_t><<<gd, kThreads, 0, st.stream>>>(dy.data<T>(), dyt.get(), rd, b0, nb, g.G,
                                                                         g.O, g.Lout);
    else
      dy_group_major_kernel<T, int64_t><<<gd, kThreads, 0, st.stream>>>(dy.data<T>(), dyt.get(), rd, b0, nb, g.G,
                                                                        g.O, g.Lout);
    LP_CUDA_LAUNCH_CHECK();
    for (int64_t gi = 0; gi < g.G; ++gi)  // dw_g^T (CK, O) = col_g (CK, N) · dyt_g^T (N, O)
      gemm_strided_batched<T>(st, true, false, CK, g.O, N, col.get() + gi * CK * N, N, 0,
                              dyt.get() + gi * g.O * N, N, 0, T(b0 == 0 ? 0 : 1), pdw + gi * g.O * CK, CK, 0, 1);
  }
  if (g.B == 0) {
    LP_CUDA_CHECK(cudaMemsetAsync(pdw, 0, static_cast<size_t>(dw.numel()) * sizeof(T), st.stream));
  }
}

CorrGeom fwd_geom(const Tensor& x, const Tensor& w, const Conv1dOpts& o) {
  const int64_t K = w.size(2);
  const int64_t Lout = x.size(2) + o.pad_left + o.pad_right - o.dilation * (K - 1);
  return {x.size(0), o.groups, x.size(1) / o.groups, w.size(0) / o.groups, x.size(2), Lout, K, o.dilation, o.pad_left};
}

}  // namespace

void conv1d_corr(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  if (y.numel() == 0) return;
  dispatch_dtype(x.dtype(), [&]<typename T>() { corr_t<T>(x, w, bias, y, g); });
}

void conv1d_corr_wgrad(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g) {
  if (dw.numel() == 0) return;
  dispatch_dtype(x.dtype(), [&]<typename T>() { corr_wgrad_t<T>(x, dy, dw, g); });
}

bool onehot_codes(const Tensor& x, int8_t* codes) {
  int64_t B = x.size(0), C = x.size(1), L = x.size(2), total = B * L;
  if (total == 0) return true;
  const CudaState& st = state_of(x);
  // Inside a CUDA-graph capture the answer cannot be read back: the general (im2col) path runs, which is right for
  // any input. (LOWPASS_CUDA_CONV=direct needs no check at all.)
  if (capturing(x.device().index)) return false;
  DeviceBuffer<int> bad(1, x.device().index);
  LP_CUDA_CHECK(cudaMemsetAsync(bad.get(), 0, sizeof(int), st.stream));
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    onehot_codes_kernel<T><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(x.data<T>(), codes, bad.get(),
                                                                                     total, C, L);
    LP_CUDA_LAUNCH_CHECK();
  });
  int h = 0;
  LP_CUDA_CHECK(cudaMemcpyAsync(&h, bad.get(), sizeof(int), cudaMemcpyDeviceToHost, st.stream));
  LP_CUDA_CHECK(cudaStreamSynchronize(st.stream));
  return h == 0;
}

void conv1d_corr_gather(const int8_t* codes, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  LP_ASSERT(g.G == 1, "gather conv: groups must be 1");
  int64_t total = g.B * g.O * g.Lout;
  if (total == 0) return;
  const CudaState& st = state_of(w);
  dispatch_dtype(w.dtype(), [&]<typename T>() {
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    if (fits32({total, g.B * g.Lin, g.O * g.C * g.K, g.Lout + g.K * g.d, g.Lin + g.p, g.p}))
      gather_fwd_kernel<T, uint32_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
          codes, w.data<T>(), pb, y.data<T>(), total, g.C, g.O, g.Lin, g.Lout, g.K, g.d, g.p);
    else
      gather_fwd_kernel<T, int64_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
          codes, w.data<T>(), pb, y.data<T>(), total, g.C, g.O, g.Lin, g.Lout, g.K, g.d, g.p);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void conv1d_corr_wgrad_scatter(const int8_t* codes, const Tensor& dy, Tensor& dw, const CorrGeom& g) {
  LP_ASSERT(g.G == 1 && g.C <= kMaxOnehotC, "scatter wgrad: groups 1 and at most 16 channels");
  int64_t blocks = g.O * g.K;
  if (blocks == 0) return;
  LP_CHECK(blocks <= INT_MAX, "CUDA conv1d scatter: ", blocks, " (O, K) pairs");
  const CudaState& st = state_of(dy);
  dispatch_dtype(dy.dtype(), [&]<typename T>() {
    scatter_wgrad_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, st.stream>>>(
        codes, dy.data<T>(), dw.data<T>(), g.B, g.C, g.O, g.Lin, g.Lout, g.K, g.d, g.p);
    LP_CUDA_LAUNCH_CHECK();
  });
}

namespace {
// The backend the fixed routes follow: `tune` follows `auto` where no timed choice serves (a shape first met inside
// a CUDA-graph capture).
ConvBackend routing_backend(const Tensor& t) {
  const ConvBackend b = state_of(t).conv_backend;
  return b == ConvBackend::Tune ? ConvBackend::Auto : b;
}
// The cuDNN backend is selected for t's Context (its first conv runs through conv_cudnn.cu).
bool cudnn_selected(const Tensor& t) { return state_of(t).conv_backend == ConvBackend::Cudnn; }
// The direct kernels' geometry: at most kDirectMaxC inputs or kDirectMaxO outputs per group.
bool direct_geometry(const CorrGeom& g) { return g.O <= kDirectMaxO || g.C <= kDirectMaxC; }
// Few inputs and many outputs per group: a first conv on DNA (4 -> 64), a head's input grad (2 -> 64).
bool few_in_many_out(const CorrGeom& g) { return g.C <= kDirectMaxC && g.O >= kTiledNarrowMinO; }

// ---- `auto`: per geometry, the route `tune` chose on an H200 (docs/cuda.md, "What auto runs") ----

// The correlation (forward, input grad): few inputs and many outputs on im2col + cuBLAS (the tiled kernels decline
// K 21 and K 75, the direct ones ran 5-6x slower); few outputs on the narrow tiled kernels, then the direct ones;
// wide layers on the pipelined tiled kernels (float32 only, shared memory within 48 KiB), else im2col + cuBLAS.
void corr_auto(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  if (few_in_many_out(g)) return cuda::conv1d_corr(x, w, bias, y, g);
  if (g.O <= kDirectMaxO && cuda::conv1d_corr_narrow(x, w, bias, y, g)) return;
  if (direct_geometry(g)) return cuda::conv1d_corr_direct(x, w, bias, y, g);
  if (cuda::conv1d_corr_tiled(x, w, bias, y, g, true)) return;
  cuda::conv1d_corr(x, w, bias, y, g);
}
// The weight grad: few inputs and many outputs on the tiled kernel, few outputs on the narrow one (the direct
// kernels where these decline); wide layers on the taps route when the reduction B·Lout is long
// (kTapsWgradMinN), else im2col + cuBLAS.
void wgrad_auto(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g) {
  if (few_in_many_out(g) && cuda::conv1d_corr_wgrad_tiled(x, dy, dw, g, false)) return;
  if (g.O <= kDirectMaxO && cuda::conv1d_corr_wgrad_narrow(x, dy, dw, g)) return;
  if (direct_geometry(g)) return cuda::conv1d_corr_wgrad_direct(x, dy, dw, g);
  if (g.B * g.Lout >= kTapsWgradMinN && cuda::conv1d_corr_wgrad_taps(x, dy, dw, g)) return;
  cuda::conv1d_corr_wgrad(x, dy, dw, g);
}

// ---- `direct` and `tiled` ----

// The direct kernels serve g (backends direct and tiled, and the direct geometry). They come before the one-hot
// gather/scatter: a first layer on DNA then needs no one-hot check (a kernel and a read-back, i.e. a device
// synchronisation, per call).
bool direct_serves(const Tensor& t, const CorrGeom& g) {
  const ConvBackend b = routing_backend(t);
  return (b == ConvBackend::Direct || b == ConvBackend::Tiled) && direct_geometry(g);
}
bool tiled_selected(const Tensor& t) { return routing_backend(t) == ConvBackend::Tiled; }
// Under `tiled`: correlations with few inputs and many outputs go to the tiled kernels before the direct ones, and
// those with few outputs to the narrow tiled kernels (kernels/cuda/conv_narrow.h), when they fit; the tiled
// correlation and weight grad run their pipelined variants (conv_tiled.h).
bool tiled_first(const Tensor& t, const CorrGeom& g) { return tiled_selected(t) && few_in_many_out(g); }
bool narrow_selected(const Tensor& t, const CorrGeom& g) { return tiled_selected(t) && g.O <= kDirectMaxO; }

// The routes the forward and the input grad take; true when one of them ran. Under `direct`, `tiled`, `im2col` and
// `cudnn`, the forward then tries the one-hot gather and cuDNN, both then im2col.
bool corr_routes(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  if (routing_backend(x) == ConvBackend::Auto) {
    corr_auto(x, w, bias, y, g);
    return true;
  }
  if (tiled_first(x, g) && cuda::conv1d_corr_tiled(x, w, bias, y, g, true)) return true;
  if (narrow_selected(x, g) && cuda::conv1d_corr_narrow(x, w, bias, y, g)) return true;
  if (direct_serves(x, g)) {
    cuda::conv1d_corr_direct(x, w, bias, y, g);
    return true;
  }
  return tiled_selected(x) && cuda::conv1d_corr_tiled(x, w, bias, y, g, true);
}

// ---- The `tune` backend (kernels/cuda/conv_tune.h) ----

// One route of a correlation the forward and the input grad share (every route but cuDNN, whose calls differ); false
// when it declines g.
bool corr_route(ConvRoute r, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  switch (r) {
    case ConvRoute::Im2col: cuda::conv1d_corr(x, w, bias, y, g); return true;
    case ConvRoute::Direct: return direct_geometry(g) && (cuda::conv1d_corr_direct(x, w, bias, y, g), true);
    case ConvRoute::Tiled: return cuda::conv1d_corr_tiled(x, w, bias, y, g, false);
    case ConvRoute::TiledPipelined: return cuda::conv1d_corr_tiled(x, w, bias, y, g, true);
    case ConvRoute::Narrow: return cuda::conv1d_corr_narrow(x, w, bias, y, g);
    case ConvRoute::Taps: return cuda::conv1d_corr_taps(x, w, bias, y, g);
    case ConvRoute::Cudnn: break;
  }
  return false;
}

// out[0] += Σ (a − ref)², out[1] += Σ ref² in double (atomics: the order does not matter for a tolerance check).
template <typename T>
__global__ void diff_norms_kernel(const T* __restrict__ a, const T* __restrict__ ref, double* __restrict__ out,
                                  int64_t n) {
  __shared__ double scratch[32];
  double dd = 0, rr = 0;
  LP_GRID_STRIDE(i, n) {
    const double r = static_cast<double>(ref[i]), e = static_cast<double>(a[i]) - r;
    dd += e * e;
    rr += r * r;
  }
  dd = block_sum(dd, scratch);
  __syncthreads();
  rr = block_sum(rr, scratch);
  if (threadIdx.x == 0) {
    atomicAdd(out, dd);
    atomicAdd(out + 1, rr);
  }
}

ConvTuneKey tune_key(const Tensor& t, ConvDir dir, const CorrGeom& g, bool bias) {
  const CudaState& st = state_of(t);
  return {st.device, dir, g.B, g.G, g.C, g.O, g.Lin, g.Lout, g.K, g.d, g.p, static_cast<int>(dtype_size(t.dtype())),
          static_cast<int>(st.gemm_math), bias};
}

// Times every route of `run` (run(route) returns false when the route declines the shape) on `out`, the tensor the
// routes write, and caches the fastest that agrees with the first (im2col) within conv_tune_tolerance; `out` is left
// holding the chosen route's result. Inside a capture only a cached choice runs. Returns false when nothing ran
// here (capture without a choice): the caller's fixed routes follow `auto`.
template <typename Run>
bool tuned(const Tensor& t, const ConvTuneKey& key, Tensor& out, Run&& run) {
  const int dev = t.device().index;
  if (const ConvTuneEntry* e = conv_tune_find(key)) return run(e->chosen);
  if (capturing(dev) || out.numel() == 0) return false;
  const CudaState& st = state_of(t);
  const double tol = conv_tune_tolerance(key.dtype_bytes, key.gemm_math);
  constexpr int kRepeats = 3;
  return dispatch_dtype(out.dtype(), [&]<typename T>() {
    const int64_t n = out.numel();
    DeviceBuffer<T> ref(static_cast<size_t>(n), dev);
    DeviceBuffer<double> norms(2, dev);
    cudaEvent_t ev0, ev1;
    LP_CUDA_CHECK(cudaEventCreate(&ev0));
    LP_CUDA_CHECK(cudaEventCreate(&ev1));
    std::vector<ConvTrial> trials;
    int ref_index = -1;  // the first route that ran: the reference the others are compared with
    bool ref_finite = true;
    try {
      for (ConvRoute r : kConvRoutes) {
        ConvTrial tr;
        tr.route = r;
        try {
          tr.ran = run(r);
        } catch (const Error&) {  // e.g. cuDNN compiled in but its library not loadable: the route declines
          if (conv_tune_rethrows(trials)) throw;  // the reference's own failure (out of memory): the call's error
          tr.ran = false;
        }
        if (tr.ran) {
          const int index = static_cast<int>(trials.size());
          LP_CUDA_CHECK(cudaMemsetAsync(norms.get(), 0, 2 * sizeof(double), st.stream));
          if (ref_index < 0) {
            ref_index = index;
            LP_CUDA_CHECK(cudaMemcpyAsync(ref.get(), out.data<T>(), sizeof(T) * static_cast<size_t>(n),
                                          cudaMemcpyDeviceToDevice, st.stream));
          }
          diff_norms_kernel<T><<<grid_1d(st, n, kThreads), kThreads, 0, st.stream>>>(out.data<T>(), ref.get(),
                                                                                     norms.get(), n);
          LP_CUDA_LAUNCH_CHECK();
          double h[2] = {0, 0};
          LP_CUDA_CHECK(cudaMemcpyAsync(h, norms.get(), sizeof h, cudaMemcpyDeviceToHost, st.stream));
          LP_CUDA_CHECK(cudaStreamSynchronize(st.stream));
          if (ref_index == index) ref_finite = std::isfinite(h[1]);
          tr.rel_diff = h[1] > 0 ? std::sqrt(h[0] / h[1]) : (h[0] == 0 ? 0.0 : HUGE_VAL);
          tr.agrees = tr.rel_diff <= tol;  // false for NaN
          if (!tr.agrees && ref_finite)
            std::fprintf(stderr, "lowpass: conv tune: route %s disagrees with %s on %s (relative difference %.3g); "
                         "not used\n", conv_route_name(r), conv_route_name(trials[static_cast<size_t>(ref_index)].route),
                         key.describe().c_str(), tr.rel_diff);
          if (tr.agrees) {
            std::vector<double> ms;
            for (int i = 0; i < kRepeats; ++i) {
              LP_CUDA_CHECK(cudaEventRecord(ev0, st.stream));
              run(r);
              LP_CUDA_CHECK(cudaEventRecord(ev1, st.stream));
              LP_CUDA_CHECK(cudaEventSynchronize(ev1));
              float e = 0;
              LP_CUDA_CHECK(cudaEventElapsedTime(&e, ev0, ev1));
              ms.push_back(e);
            }
            tr.ms = conv_tune_median(ms);
          }
        }
        trials.push_back(tr);
      }
    } catch (...) {
      cudaEventDestroy(ev0);
      cudaEventDestroy(ev1);
      throw;
    }
    LP_CUDA_CHECK(cudaEventDestroy(ev0));
    LP_CUDA_CHECK(cudaEventDestroy(ev1));
    (void)conv_tune_reference(trials, key);  // = ref_index; throws Error when no route ran
    const int pick = ref_finite ? conv_tune_pick(trials) : -1;
    if (pick < 0) {  // a non-finite input: nothing to compare or keep; the output is the reference route's (later
                     // routes, declined ones included, may have written `out`)
      LP_CUDA_CHECK(cudaMemcpyAsync(out.data<T>(), ref.get(), sizeof(T) * static_cast<size_t>(n),
                                    cudaMemcpyDeviceToDevice, st.stream));
      return true;
    }
    ConvTuneEntry entry;
    entry.key = key;
    entry.chosen = trials[static_cast<size_t>(pick)].route;
    entry.trials = trials;
    const ConvRoute chosen = conv_tune_store(std::move(entry)).chosen;
    if (!conv_tune_output_is(trials, pick, chosen)) run(chosen);
    return true;
  });
}
}  // namespace

void conv1d_fwd_cuda(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const Conv1dOpts& o) {
  CorrGeom g = fwd_geom(x, w, o);
  if (state_of(x).conv_backend == ConvBackend::Tune &&
      tuned(x, tune_key(x, ConvDir::Fwd, g, bias.defined()), y, [&](ConvRoute r) {
        return r == ConvRoute::Cudnn ? cuda::conv1d_fwd_cudnn(x, w, bias, y, o) : corr_route(r, x, w, bias, y, g);
      }))
    return;
  if (corr_routes(x, w, bias, y, g)) return;
  if (o.groups == 1 && x.size(1) <= kMaxOnehotC && x.numel() > 0) {
    DeviceBuffer<int8_t> codes(static_cast<size_t>(g.B * g.Lin), x.device().index);
    if (onehot_codes(x, codes.get())) return cuda::conv1d_corr_gather(codes.get(), w, bias, y, g);
  }
  if (cudnn_selected(x) && cuda::conv1d_fwd_cudnn(x, w, bias, y, o)) return;
  cuda::conv1d_corr(x, w, bias, y, g);
}

void conv1d_bwd_input_cuda(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv1dOpts& o) {
  if (cudnn_selected(dy) && cuda::conv1d_bwd_input_cudnn(dy, w, dx, o)) return;
  const int64_t G = o.groups, O = w.size(0) / G, C = w.size(1), K = w.size(2);
  Tensor wt = Tensor::empty(w.ctx(), {G * C, O, K}, w.dtype(), w.device());
  int64_t total = w.numel();
  if (total > 0) {
    const CudaState& st = state_of(w);
    dispatch_dtype(w.dtype(), [&]<typename T>() {
      flip_transpose_weight_kernel<T><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
          w.data<T>(), wt.data<T>(), total, G, O, C, K);
      LP_CUDA_LAUNCH_CHECK();
    });
  }
  CorrGeom g{dy.size(0), G, O, C, dy.size(2), dx.size(2), K, o.dilation, o.dilation * (K - 1) - o.pad_left};
  if (state_of(dy).conv_backend == ConvBackend::Tune &&
      tuned(dy, tune_key(dy, ConvDir::BwdInput, g, false), dx, [&](ConvRoute r) {
        return r == ConvRoute::Cudnn ? cuda::conv1d_bwd_input_cudnn(dy, w, dx, o)
                                     : corr_route(r, dy, wt, Tensor(), dx, g);
      }))
    return;
  if (corr_routes(dy, wt, Tensor(), dx, g)) return;
  cuda::conv1d_corr(dy, wt, Tensor(), dx, g);
}

void conv1d_bwd_weight_cuda(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv1dOpts& o) {
  CorrGeom g{x.size(0), o.groups, x.size(1) / o.groups, dy.size(1) / o.groups, x.size(2), dy.size(2), dw.size(2),
             o.dilation, o.pad_left};
  if (state_of(x).conv_backend == ConvBackend::Tune &&
      tuned(x, tune_key(x, ConvDir::BwdWeight, g, false), dw, [&](ConvRoute r) {
        switch (r) {
          case ConvRoute::Im2col: cuda::conv1d_corr_wgrad(x, dy, dw, g); return true;
          case ConvRoute::Direct: return direct_geometry(g) && (cuda::conv1d_corr_wgrad_direct(x, dy, dw, g), true);
          case ConvRoute::Tiled: return cuda::conv1d_corr_wgrad_tiled(x, dy, dw, g, false);
          case ConvRoute::TiledPipelined: return cuda::conv1d_corr_wgrad_tiled(x, dy, dw, g, true);
          case ConvRoute::Narrow: return cuda::conv1d_corr_wgrad_narrow(x, dy, dw, g);
          case ConvRoute::Taps: return cuda::conv1d_corr_wgrad_taps(x, dy, dw, g);
          case ConvRoute::Cudnn: return cuda::conv1d_bwd_weight_cudnn(x, dy, dw, o);
        }
        return false;
      }))
    return;
  if (routing_backend(x) == ConvBackend::Auto) return wgrad_auto(x, dy, dw, g);
  if (tiled_first(x, g) && cuda::conv1d_corr_wgrad_tiled(x, dy, dw, g, true)) return;
  if (narrow_selected(x, g) && cuda::conv1d_corr_wgrad_narrow(x, dy, dw, g)) return;
  if (direct_serves(x, g)) return cuda::conv1d_corr_wgrad_direct(x, dy, dw, g);
  if (tiled_selected(x) && cuda::conv1d_corr_wgrad_tiled(x, dy, dw, g, true)) return;
  if (o.groups == 1 && x.size(1) <= kMaxOnehotC && x.numel() > 0) {
    DeviceBuffer<int8_t> codes(static_cast<size_t>(g.B * g.Lin), x.device().index);
    if (onehot_codes(x, codes.get())) return cuda::conv1d_corr_wgrad_scatter(codes.get(), dy, dw, g);
  }
  if (cudnn_selected(x) && cuda::conv1d_bwd_weight_cudnn(x, dy, dw, o)) return;
  cuda::conv1d_corr_wgrad(x, dy, dw, g);
}

}  // namespace lowpass::cuda
