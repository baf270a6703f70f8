// CUDA kernels behind the neural-net layers (twins of kernels/cpu/nn.cpp): batch-norm statistics
// (shifted one-pass, double), affine map, fused backward; max-pool with argmax routing; (log-)softmax.
// Legend: B batch, C channels, L length, Lo pooled length. Test: build/tests/lowpass_tests -ts=cuda.
#include <math_constants.h>

#include <algorithm>

#include "kernels/cpu/bn2_coef.h"
#include "kernels/cpu/deeplift_rule.h"
#include "kernels/cpu/nn.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_state.h"
#include "kernels/cuda/device_buffer.h"

namespace lowpass::cuda {
namespace {

constexpr int kThreads = 256;

struct BCL {
  int64_t B, C, L;
};
BCL bcl(const Tensor& x) { return {x.size(0), x.size(1), x.dim() == 3 ? x.size(2) : 1}; }

// The per-channel sums of batch norm run in two passes so that the whole GPU works on them: pass 1 has S blocks
// per channel c (blockIdx.y = c), block i summing the batch rows [i·B/S, (i+1)·B/S) into a double pair
// part[(c·S + i)·2 + {0, 1}]; pass 2 has one thread per channel that adds its S pairs in order (deterministic) and
// finishes. S = bn_splits(...). f(off) adds element off of channel c to the thread's two sums.
template <typename F>
__device__ __forceinline__ void channel_span(int64_t B, int64_t C, int64_t L, int64_t c, int64_t S, F&& f) {
  const int64_t i = blockIdx.x, b0 = i * B / S, b1 = (i + 1) * B / S;
  if (L >= static_cast<int64_t>(blockDim.x)) {  // rows of one channel, threads along L: no divisions
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t l = threadIdx.x; l < L; l += blockDim.x) f((b * C + c) * L + l);
  } else {
    for (int64_t e = b0 * L + threadIdx.x; e < b1 * L; e += blockDim.x) f((e / L * C + c) * L + e % L);
  }
}

// Writes the block's two sums (valid in thread 0 after block_sum) to part.
__device__ __forceinline__ void store_pair(double s1, double s2, double* __restrict__ part, int64_t c, int64_t S) {
  __shared__ double scratch[32];
  s1 = block_sum(s1, scratch);
  __syncthreads();
  s2 = block_sum(s2, scratch);
  if (threadIdx.x == 0) {
    part[(c * S + blockIdx.x) * 2] = s1;
    part[(c * S + blockIdx.x) * 2 + 1] = s2;
  }
}

// Pass 2's sums: channel c's S pairs added in split order.
__device__ __forceinline__ void sum_pairs(const double* __restrict__ part, int64_t c, int64_t S, double& s1,
                                          double& s2) {
  s1 = 0;
  s2 = 0;
  for (int64_t i = 0; i < S; ++i) {
    s1 += part[(c * S + i) * 2];
    s2 += part[(c * S + i) * 2 + 1];
  }
}

// Pass 1 of the statistics: Σ (x - k) and Σ (x - k)² in double, k = x[0, c, 0] (shifted one-pass).
template <typename T>
__global__ void channel_stats_part_kernel(const T* __restrict__ x, double* __restrict__ part, int64_t B, int64_t C,
                                          int64_t L, int64_t S) {
  const int64_t c = blockIdx.y;
  const double k = x[c * L];
  double s1 = 0, s2 = 0;
  channel_span(B, C, L, c, S, [&](int64_t off) {
    double d = static_cast<double>(x[off]) - k;
    s1 += d;
    s2 += d * d;
  });
  store_pair(s1, s2, part, c, S);
}

template <typename T>
__global__ void channel_stats_finish_kernel(const T* __restrict__ x, const double* __restrict__ part,
                                            T* __restrict__ mean, T* __restrict__ var, int64_t B, int64_t C,
                                            int64_t L, int64_t S) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < C;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double s1, s2;
    sum_pairs(part, c, S, s1, s2);
    const double k = x[c * L], n = static_cast<double>(B * L), m = s1 / n;
    mean[c] = static_cast<T>(k + m);
    var[c] = static_cast<T>(fmax(0.0, s2 / n - m * m));
  }
}

template <typename T, typename I>
__global__ void channel_affine_kernel(const T* __restrict__ x, const T* __restrict__ scale,
                                      const T* __restrict__ shift, T* __restrict__ y, I total, I C,
                                      I L) {
  for (I e = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<I>(gridDim.x) * blockDim.x) {  // I: uint32_t when total < 2^31 (cheaper division)
    I c = (e / L) % C;
    y[e] = x[e] * scale[c] + shift[c];
  }
}

template <typename T, typename I>
__global__ void channel_affine2_kernel(const T* __restrict__ g, const T* __restrict__ h, const T* __restrict__ a,
                                       const T* __restrict__ bc, const T* __restrict__ cc, T* __restrict__ y,
                                       I total, I C, I L) {
  for (I e = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<I>(gridDim.x) * blockDim.x) {  // I: uint32_t when total < 2^31 (cheaper division)
    I c = (e / L) % C;
    y[e] = g[e] * a[c] + h[e] * bc[c] + cc[c];
  }
}

// Pass 1 of the backward sums (two passes as the statistics): sg = Σ g, sgx = Σ g·(x - mean) in double.
template <typename T>
__global__ void batch_norm_bwd_part_kernel(const T* __restrict__ g, const T* __restrict__ x,
                                           const T* __restrict__ mean, double* __restrict__ part, int64_t B,
                                           int64_t C, int64_t L, int64_t S) {
  const int64_t c = blockIdx.y;
  const double m = mean[c];
  double a = 0, b2 = 0;
  channel_span(B, C, L, c, S, [&](int64_t off) {
    double gv = static_cast<double>(g[off]);
    a += gv;
    b2 += gv * (static_cast<double>(x[off]) - m);
  });
  store_pair(a, b2, part, c, S);
}

// Pass 2: the per-channel coefficients of dx = A·g + Bc·x + Cc (coef (3, C)), dgamma = sgx·invstd, dbeta = sg.
template <typename T>
__global__ void batch_norm_bwd_finish_kernel(const double* __restrict__ part, const T* __restrict__ mean,
                                             const T* __restrict__ invstd, const T* __restrict__ gamma,
                                             T* __restrict__ coef, T* __restrict__ dgamma, T* __restrict__ dbeta,
                                             int64_t B, int64_t C, int64_t L, int64_t S) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < C;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double a, b2;
    sum_pairs(part, c, S, a, b2);
    const double n = static_cast<double>(B * L), m = mean[c];
    const double is = invstd[c], gm = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double A = gm * is, Bc = -A * is * is * b2 / n;
    coef[c] = static_cast<T>(A);
    coef[C + c] = static_cast<T>(Bc);
    coef[2 * C + c] = static_cast<T>(-A * a / n - Bc * m);
    if (dgamma) dgamma[c] = static_cast<T>(b2 * is);
    if (dbeta) dbeta[c] = static_cast<T>(a);
  }
}

template <typename T, typename I>
__global__ void batch_norm_bwd_dx_kernel(const T* __restrict__ g, const T* __restrict__ x,
                                         const T* __restrict__ coef, T* __restrict__ dx, I total, I C,
                                         I L) {
  for (I e = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<I>(gridDim.x) * blockDim.x) {  // I: uint32_t when total < 2^31 (cheaper division)
    I c = (e / L) % C;
    dx[e] = coef[c] * g[e] + coef[C + c] * x[e] + coef[2 * C + c];
  }
}

// ---- batch norm's second-derivative rule (kernels/cpu/nn.h, batch_norm_bwd2) ----
constexpr int kBn2Sums = 5;  // Σu, Σg, Σu·xc, Σg·xc, Σu·g (xc = x − mean)
constexpr int kBn2Coefs = 8;  // a1, b1, c1 (dg), a2, g2, b2, c2 (dx), dgamma

// Pass 1: the five sums of channel c over the block's batch rows, in double, to part[(c·S + i)·5 + j].
template <typename T>
__global__ void batch_norm_bwd2_part_kernel(const T* __restrict__ u, const T* __restrict__ g,
                                            const T* __restrict__ x, const T* __restrict__ mean,
                                            double* __restrict__ part, int64_t B, int64_t C, int64_t L, int64_t S) {
  __shared__ double scratch[32];
  const int64_t c = blockIdx.y;
  const double m = mean[c];
  double v[kBn2Sums] = {0, 0, 0, 0, 0};
  channel_span(B, C, L, c, S, [&](int64_t off) {
    const double uv = static_cast<double>(u[off]), gv = static_cast<double>(g[off]);
    const double xc = static_cast<double>(x[off]) - m;
    v[0] += uv;
    v[1] += gv;
    v[2] += uv * xc;
    v[3] += gv * xc;
    v[4] += uv * gv;
  });
  for (int j = 0; j < kBn2Sums; ++j) {
    const double t = block_sum(v[j], scratch);
    if (threadIdx.x == 0) part[(c * S + blockIdx.x) * kBn2Sums + j] = t;
    __syncthreads();  // scratch is reused by the next sum
  }
}

// Pass 2: one thread per channel adds its S partials in order and writes the coefficients coef[j·C + c]
// (bn2_coef, kernels/cpu/bn2_coef.h, as the CPU kernel) and dgamma.
template <typename T>
__global__ void batch_norm_bwd2_finish_kernel(const double* __restrict__ part, const T* __restrict__ invstd,
                                              const T* __restrict__ gamma, double* __restrict__ coef,
                                              T* __restrict__ dgamma, int64_t B, int64_t C, int64_t L, int64_t S) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < C;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double t[kBn2Sums] = {0, 0, 0, 0, 0};
    for (int64_t i = 0; i < S; ++i)
      for (int j = 0; j < kBn2Sums; ++j) t[j] += part[(c * S + i) * kBn2Sums + j];
    const double gm = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const Bn2Coef k = bn2_coef(t[0], t[1], t[2], t[3], t[4], static_cast<double>(B * L), invstd[c], gm);
    const double co[kBn2Coefs] = {k.a1, k.b1, k.c1, k.a2, k.g2, k.b2, k.c2, k.dgamma};
    for (int j = 0; j < kBn2Coefs; ++j) coef[j * C + c] = co[j];
    if (dgamma) dgamma[c] = static_cast<T>(co[7]);
  }
}

// dg = a1·u + b1·xc + c1, dx = a2·u + g2·g + b2·xc + c2 (either output may be null), coefficients cast to T as the
// CPU kernel does.
template <typename T, typename I>
__global__ void batch_norm_bwd2_apply_kernel(const T* __restrict__ u, const T* __restrict__ g,
                                             const T* __restrict__ x, const T* __restrict__ mean,
                                             const double* __restrict__ coef, T* __restrict__ dg,
                                             T* __restrict__ dx, I total, I C, I L) {
  for (I e = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<I>(gridDim.x) * blockDim.x) {
    const I c = (e / L) % C;
    const T xc = x[e] - mean[c];
    if (dg) dg[e] = static_cast<T>(coef[c]) * u[e] + static_cast<T>(coef[C + c]) * xc + static_cast<T>(coef[2 * C + c]);
    if (dx)
      dx[e] = static_cast<T>(coef[3 * C + c]) * u[e] + static_cast<T>(coef[4 * C + c]) * g[e] +
              static_cast<T>(coef[5 * C + c]) * xc + static_cast<T>(coef[6 * C + c]);
  }
}

// One thread per pooled output (r, j): first maximum of row r over [j·stride, j·stride + k).
template <typename T>
__global__ void max_pool1d_fwd_kernel(const T* __restrict__ x, T* __restrict__ out, int32_t* __restrict__ idx,
                                      int64_t total, int64_t L, int64_t Lo, int64_t k, int64_t stride) {
  LP_GRID_STRIDE(e, total) {
    int64_t r = e / Lo, j = e % Lo;
    const T* row = x + r * L;
    int64_t s = j * stride, best = s;
    T m = row[s];
    for (int64_t t = s + 1; t < s + k; ++t)
      if (m == m && !(row[t] <= m)) {  // larger, or the first NaN: a NaN stays, as on the CPU
        m = row[t];
        best = t;
      }
    out[e] = m;
    idx[e] = static_cast<int32_t>(best);
  }
}

// out[r, idx[r, j]] += g[r, j]: one warp per row, which zeroes it and then adds in ascending j exactly as the CPU
// does (deterministic for any idx, overlapping windows and NaN-routed ones included). The lanes take 32 consecutive
// j at a time; lanes with the same target form a group (__match_any_sync) whose lowest lane adds the group's values
// one by one in lane order, i.e. the CPU's additions in the CPU's order.
template <typename T>
__global__ void max_pool1d_scatter_warp_kernel(const T* __restrict__ g, T* __restrict__ out,
                                               const int32_t* __restrict__ idx, int64_t rows, int64_t L,
                                               int64_t Lo) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int64_t per_block = blockDim.x / 32;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * per_block + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * per_block) {  // the same r for all lanes of a warp
    T* dst = out + r * L;
    const T* gr = g + r * Lo;
    for (int64_t t = lane; t < L; t += 32) dst[t] = T(0);
    __syncwarp();
    for (int64_t j0 = 0; j0 < Lo; j0 += 32) {
      const bool on = j0 + lane < Lo;
      const int32_t t = on ? idx[r * Lo + j0 + lane] : -1 - lane;  // idle lanes: keys of their own
      const unsigned peers = __match_any_sync(0xffffffffu, t);
      if (on && (peers & ((1u << lane) - 1u)) == 0u) {
        T acc = dst[t];
        for (unsigned m = peers; m != 0u; m &= m - 1u) acc += gr[j0 + __ffs(static_cast<int>(m)) - 1];
        dst[t] = acc;
      }
      __syncwarp();  // the next 32 j may target the same positions
    }
  }
}

template <typename T>
__global__ void max_pool1d_gather_kernel(const T* __restrict__ h, T* __restrict__ out,
                                         const int32_t* __restrict__ idx, int64_t total, int64_t L, int64_t Lo) {
  LP_GRID_STRIDE(e, total) {
    int64_t r = e / Lo;
    out[e] = h[r * L + idx[e]];
  }
}

// (log-)softmax along the middle axis of (outer, n, inner); one thread per (o, i), as the CPU computes it:
// m = max (0 when not finite), s = Σ exp(double(x - m)), out = x - m - log s, or exp(x - m) / s.
template <typename T, bool LOG>
__global__ void softmax_axis_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t rows, int64_t n,
                                    int64_t inner) {
  LP_GRID_STRIDE(r, rows) {
    int64_t o = r / inner, i = r % inner;
    const T* src = x + o * n * inner + i;
    T* dst = out + o * n * inner + i;
    T m = -CUDART_INF_F;
    for (int64_t j = 0; j < n; ++j) m = m < src[j * inner] ? src[j * inner] : m;
    if (!isfinite(m)) m = 0;
    double s = 0;
    for (int64_t j = 0; j < n; ++j) s += exp(static_cast<double>(src[j * inner] - m));
    if constexpr (LOG) {
      T lse = static_cast<T>(log(s));
      for (int64_t j = 0; j < n; ++j) dst[j * inner] = src[j * inner] - m - lse;
    } else {
      double inv = 1.0 / s;
      for (int64_t j = 0; j < n; ++j) dst[j * inner] = static_cast<T>(exp(static_cast<double>(src[j * inner] - m)) * inv);
    }
  }
}

// inner == 1: one warp per row (coalesced); same arithmetic, the sum of exps reduced by shuffles.
template <typename T, bool LOG>
__global__ void softmax_rows_warp_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t rows, int64_t n) {
  int lane = threadIdx.x % 32;
  int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  int64_t nwarps = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  for (int64_t r = warp; r < rows; r += nwarps) {
    const T* src = x + r * n;
    T* dst = out + r * n;
    T m = -CUDART_INF_F;
    for (int64_t j = lane; j < n; j += 32) m = m < src[j] ? src[j] : m;
    for (int off = 16; off > 0; off >>= 1) {
      T o = __shfl_xor_sync(0xffffffffu, m, off);
      m = m < o ? o : m;
    }
    if (!isfinite(m)) m = 0;
    double s = 0;
    for (int64_t j = lane; j < n; j += 32) s += exp(static_cast<double>(src[j] - m));
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if constexpr (LOG) {
      T lse = static_cast<T>(log(s));
      for (int64_t j = lane; j < n; j += 32) dst[j] = src[j] - m - lse;
    } else {
      double inv = 1.0 / s;
      for (int64_t j = lane; j < n; j += 32) dst[j] = static_cast<T>(exp(static_cast<double>(src[j] - m)) * inv);
    }
  }
}

template <typename T>
const T* ptr_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
template <typename T>
T* mut_ptr_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

template <bool LOG>
void softmax_launch(const Tensor& x, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  int64_t rows = outer * inner;
  if (rows == 0 || n == 0) return;
  const CudaState& st = state_of(x);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    if (inner == 1) {
      softmax_rows_warp_kernel<T, LOG><<<grid_1d(st, rows * 32, kThreads), kThreads, 0, st.stream>>>(
          x.data<T>(), out.data<T>(), rows, n);
    } else {
      softmax_axis_kernel<T, LOG><<<grid_1d(st, rows, kThreads), kThreads, 0, st.stream>>>(x.data<T>(), out.data<T>(),
                                                                                          rows, n, inner);
    }
    LP_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

// Blocks per channel of the two-pass sums: about 8 blocks per SM in all, at most one per batch row, at most 65535
// channels (grid y).
int64_t bn_splits(const CudaState& st, int64_t B, int64_t C) {
  LP_CHECK(C <= 65535, "CUDA batch norm: ", C, " channels (at most 65535)");
  const int64_t want = (8 * static_cast<int64_t>(st.sm_count) + C - 1) / C;
  return std::max<int64_t>(1, std::min(B, want));
}

void channel_stats(const Tensor& x, Tensor& mean, Tensor& var) {
  auto [B, C, L] = bcl(x);
  if (C == 0) return;
  LP_CHECK(B * L > 0, "batch norm statistics over an empty batch: ", x.describe());
  const CudaState& st = state_of(x);
  const int64_t S = bn_splits(st, B, C);
  DeviceBuffer<double> part(static_cast<size_t>(2 * C * S), x.device().index);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    channel_stats_part_kernel<T><<<dim3(static_cast<unsigned>(S), static_cast<unsigned>(C)), kThreads, 0,
                                   st.stream>>>(x.data<T>(), part.get(), B, C, L, S);
    LP_CUDA_LAUNCH_CHECK();
    channel_stats_finish_kernel<T><<<grid_1d(st, C, 128), 128, 0, st.stream>>>(x.data<T>(), part.get(),
                                                                              mean.data<T>(), var.data<T>(), B, C,
                                                                              L, S);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& y) {
  auto [B, C, L] = bcl(x);
  int64_t total = B * C * L;
  if (total == 0) return;
  const CudaState& st = state_of(x);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    if (total < (int64_t{1} << 31))
      channel_affine_kernel<T, uint32_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
          x.data<T>(), scale.data<T>(), shift.data<T>(), y.data<T>(), total, C, L);
    else
      channel_affine_kernel<T, int64_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
          x.data<T>(), scale.data<T>(), shift.data<T>(), y.data<T>(), total, C, L);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void channel_affine2(const Tensor& g, const Tensor& h, const Tensor& a, const Tensor& bc, const Tensor& cc, Tensor& y) {
  auto [B, C, L] = bcl(g);
  int64_t total = B * C * L;
  if (total == 0) return;
  const CudaState& st = state_of(g);
  dispatch_dtype(g.dtype(), [&]<typename T>() {
    if (total < (int64_t{1} << 31))
      channel_affine2_kernel<T, uint32_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
          g.data<T>(), h.data<T>(), a.data<T>(), bc.data<T>(), cc.data<T>(), y.data<T>(), total, C, L);
    else
      channel_affine2_kernel<T, int64_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
          g.data<T>(), h.data<T>(), a.data<T>(), bc.data<T>(), cc.data<T>(), y.data<T>(), total, C, L);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void batch_norm_bwd(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& gamma,
                    Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  auto [B, C, L] = bcl(x);
  if (C == 0) return;
  const CudaState& st = state_of(x);
  const int64_t S = bn_splits(st, B, C);
  DeviceBuffer<double> part(static_cast<size_t>(2 * C * S), x.device().index);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    DeviceBuffer<T> coef(static_cast<size_t>(3 * C), x.device().index);  // (3, C): A, Bc, Cc
    batch_norm_bwd_part_kernel<T><<<dim3(static_cast<unsigned>(S), static_cast<unsigned>(C)), kThreads, 0,
                                    st.stream>>>(g.data<T>(), x.data<T>(), mean.data<T>(), part.get(), B, C, L, S);
    LP_CUDA_LAUNCH_CHECK();
    batch_norm_bwd_finish_kernel<T><<<grid_1d(st, C, 128), 128, 0, st.stream>>>(
        part.get(), mean.data<T>(), invstd.data<T>(), ptr_or_null<T>(gamma), coef.get(), mut_ptr_or_null<T>(dgamma),
        mut_ptr_or_null<T>(dbeta), B, C, L, S);
    LP_CUDA_LAUNCH_CHECK();
    int64_t total = B * C * L;
    if (dx.defined() && total > 0) {
      if (total < (int64_t{1} << 31))
        batch_norm_bwd_dx_kernel<T, uint32_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
            g.data<T>(), x.data<T>(), coef.get(), dx.data<T>(), total, C, L);
      else
        batch_norm_bwd_dx_kernel<T, int64_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
            g.data<T>(), x.data<T>(), coef.get(), dx.data<T>(), total, C, L);
      LP_CUDA_LAUNCH_CHECK();
    }
  });
}

void batch_norm_bwd2(const Tensor& u, const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                     const Tensor& gamma, Tensor& dg, Tensor& dx, Tensor& dgamma) {
  auto [B, C, L] = bcl(x);
  if (C == 0) return;
  const CudaState& st = state_of(x);
  const int64_t S = bn_splits(st, B, C);
  const int dev = x.device().index;
  DeviceBuffer<double> part(static_cast<size_t>(kBn2Sums * C * S), dev), coef(static_cast<size_t>(kBn2Coefs * C), dev);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    batch_norm_bwd2_part_kernel<T><<<dim3(static_cast<unsigned>(S), static_cast<unsigned>(C)), kThreads, 0,
                                     st.stream>>>(u.data<T>(), g.data<T>(), x.data<T>(), mean.data<T>(), part.get(), B,
                                                  C, L, S);
    LP_CUDA_LAUNCH_CHECK();
    batch_norm_bwd2_finish_kernel<T><<<grid_1d(st, C, 128), 128, 0, st.stream>>>(
        part.get(), invstd.data<T>(), ptr_or_null<T>(gamma), coef.get(), mut_ptr_or_null<T>(dgamma), B, C, L, S);
    LP_CUDA_LAUNCH_CHECK();
    const int64_t total = B * C * L;
    T* pdg = mut_ptr_or_null<T>(dg);
    T* pdx = mut_ptr_or_null<T>(dx);
    if ((pdg || pdx) && total > 0) {
      if (total < (int64_t{1} << 31))
        batch_norm_bwd2_apply_kernel<T, uint32_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
            u.data<T>(), g.data<T>(), x.data<T>(), mean.data<T>(), coef.get(), pdg, pdx, total, C, L);
      else
        batch_norm_bwd2_apply_kernel<T, int64_t><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
            u.data<T>(), g.data<T>(), x.data<T>(), mean.data<T>(), coef.get(), pdg, pdx, total, C, L);
      LP_CUDA_LAUNCH_CHECK();
    }
  });
}

void max_pool1d_fwd(const Tensor& x, Tensor& out, int32_t* idx, int64_t kernel, int64_t stride) {
  int64_t rows = x.size(0) * x.size(1), L = x.size(2), Lo = out.size(2);
  int64_t total = rows * Lo;
  if (total == 0) return;
  LP_CHECK(L <= INT32_MAX, "CUDA max-pool: length ", L, " does not fit the int32 routing indices");
  const CudaState& st = state_of(x);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    max_pool1d_fwd_kernel<T><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
        x.data<T>(), out.data<T>(), idx, total, L, Lo, kernel, stride);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void max_pool1d_scatter(const Tensor& g, Tensor& out, const int32_t* idx) {
  int64_t rows = g.size(0) * g.size(1), Lo = g.size(2), L = out.size(2);
  if (rows * L == 0) return;
  const CudaState& st = state_of(g);
  dispatch_dtype(g.dtype(), [&]<typename T>() {
    max_pool1d_scatter_warp_kernel<T><<<grid_1d(st, rows * 32, 256), 256, 0, st.stream>>>(
        g.data<T>(), out.data<T>(), idx, rows, L, Lo);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void max_pool1d_gather(const Tensor& h, Tensor& out, const int32_t* idx) {
  int64_t rows = h.size(0) * h.size(1), L = h.size(2), Lo = out.size(2);
  int64_t total = rows * Lo;
  if (total == 0) return;
  const CudaState& st = state_of(h);
  dispatch_dtype(h.dtype(), [&]<typename T>() {
    max_pool1d_gather_kernel<T><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
        h.data<T>(), out.data<T>(), idx, total, L, Lo);
    LP_CUDA_LAUNCH_CHECK();
  });
}

namespace {
// DeepLIFT's rules (kernels/cpu/nn.h), one thread per pair (i, i + n); formulas in kernels/cpu/deeplift_rule.h.
template <typename T>
__global__ void deeplift_rescale_kernel(const T* __restrict__ in, const T* __restrict__ num, const T* __restrict__ out,
                                        const T* __restrict__ regular, T* __restrict__ res, int64_t n, int64_t nn,
                                        double eps) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double rx, rr;
    deeplift_rescale_pair(double(in[i]), double(in[i + n]), double(num[i]), double(num[i + nn]), out != nullptr,
                          out ? double(out[i]) : 0.0, out ? double(out[i + n]) : 0.0, double(regular[i]),
                          double(regular[i + n]), eps, rx, rr);
    res[i] = T(rx), res[i + n] = T(rr);
  }
}

template <typename T>
__global__ void deeplift_pool_seed_kernel(const T* __restrict__ out, const T* __restrict__ g, T* __restrict__ G,
                                          int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double gx, gr;
    deeplift_pool_pair(double(out[i]), double(out[i + n]), double(g[i]), double(g[i + n]), gx, gr);
    G[i] = T(gx), G[i + n] = T(gr);
  }
}
}  // namespace

void deeplift_rescale(const Tensor& in, const Tensor& num, const Tensor& out, const Tensor& regular, double eps,
                      Tensor& res) {
  const int64_t n = in.numel() / 2, nn = out.defined() ? n : 0;  // nn as in the CPU kernel
  if (n == 0) return;
  const CudaState& st = state_of(in);
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    deeplift_rescale_kernel<T><<<grid_1d(st, n, kThreads), kThreads, 0, st.stream>>>(
        in.data<T>(), num.data<T>(), out.defined() ? out.data<T>() : nullptr, regular.data<T>(), res.data<T>(), n,
        nn, eps);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void deeplift_pool_seed(const Tensor& out, const Tensor& g, Tensor& G) {
  const int64_t n = out.numel() / 2;
  if (n == 0) return;
  const CudaState& st = state_of(out);
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    deeplift_pool_seed_kernel<T><<<grid_1d(st, n, kThreads), kThreads, 0, st.stream>>>(out.data<T>(), g.data<T>(),
                                                                                       G.data<T>(), n);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void log_softmax(const Tensor& x, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  softmax_launch<true>(x, out, outer, n, inner);
}
void softmax(const Tensor& x, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  softmax_launch<false>(x, out, outer, n, inner);
}

}  // namespace lowpass::cuda
