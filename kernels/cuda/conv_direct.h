// Direct (no im2col) conv1d correlation and weight grad for layers with few input or output channels per group
// (C <= kDirectMaxC or O <= kDirectMaxO): the first conv on one-hot DNA (4 -> 64, K 21: no one-hot check and no
// read-back needed), its input gradient (64 -> 4), the BPNet profile head (64 -> 2 strands, K 75), and any such
// layer. im2col would materialise C·K rows per output position (4800 for the profile head) to feed a GEMM with 2
// rows; these kernels read x in place instead.
// The arithmetic of one output (corr) and of one thread's share of a weight-grad block (wgrad) are host-device
// functions here, so the host tests run them over the whole grid against the CPU conv (tests/test_cuda_direct.cpp);
// kernels/cuda/conv1d_direct.cu wraps them in grid-stride loops and block sums.
// Legend as kernels/cuda/conv1d.h: B batch, G groups, C/O in/out channels per group, K taps, d dilation, p left
// offset (the tap k of output t reads x at t + k·d − p), Lin/Lout lengths.
#pragma once
#include <cstdint>

#include "kernels/cpu/corr_geom.h"  // CorrGeom: the CPU kernels' geometry, shared by the kernels here
#include "kernels/cpu/host_device.h"

#define LP_DIRECT_HD LP_HD
#if defined(__CUDA_ARCH__)
#define LP_DIRECT_UNROLL _Pragma("unroll")
#else
#define LP_DIRECT_UNROLL
#endif

namespace lowpass::cuda {

constexpr int64_t kDirectMaxO = 16;  // direct kernels serve layers with at most this many outputs per group,
constexpr int64_t kDirectMaxC = 16;  // or at most this many inputs per group
constexpr int kDirectKTile = 8;      // taps per weight-grad block (accumulators per thread)

using cpu::CorrGeom;

// Taps k in [k_lo, k_hi) read inside x for output position t: 0 <= t + k·d − p < Lin.
LP_DIRECT_HD inline void direct_tap_range(const CorrGeom& g, int64_t t, int64_t& k_lo, int64_t& k_hi) {
  const int64_t lo = g.p - t;          // need k·d >= lo
  const int64_t hi = g.Lin + g.p - t;  // need k·d < hi
  k_lo = lo <= 0 ? 0 : (lo + g.d - 1) / g.d;
  k_hi = hi <= 0 ? 0 : (hi + g.d - 1) / g.d;
  if (k_hi > g.K) k_hi = g.K;
  if (k_lo > k_hi) k_lo = k_hi;
}

// y[b, go, t] for row r = b·G·O + go of y (B, G·O, Lout): bias + Σ_{c,k} w[go, c, k]·x[b, gi·C + c, t + k·d − p],
// summed over c outer, k inner, in A. The kernels use double for both dtypes: with float sums (C·K = 4800 terms
// for the profile head) the float32 profile training step through these kernels missed its bound on the H200, head
// weight gradients up to 137 times the CPU's error against float64 (the multinomial NLL's gradient cancels over
// positions).
template <typename T, typename A>
LP_DIRECT_HD inline T direct_corr_row_at(const T* x, const T* w, const T* bias, int64_t r, int64_t t,
                                         const CorrGeom& g) {
  const int64_t go = r % (g.G * g.O), b = r / (g.G * g.O), gi = go / g.O;
  int64_t k_lo, k_hi;
  direct_tap_range(g, t, k_lo, k_hi);
  const T* xb = x + (b * g.G * g.C + gi * g.C) * g.Lin;
  const int64_t s0 = t - g.p;  // x position of tap 0 (>= 0 from k_lo on)
  const T* wo = w + go * g.C * g.K;
  A s = bias ? static_cast<A>(bias[go]) : A(0);
  for (int64_t c = 0; c < g.C; ++c) {
    const T* xc = xb + c * g.Lin;
    const T* wc = wo + c * g.K;
    for (int64_t k = k_lo; k < k_hi; ++k) s += static_cast<A>(wc[k]) * static_cast<A>(xc[s0 + k * g.d]);
  }
  return static_cast<T>(s);
}
// The same for e indexing y flat.
template <typename T, typename A>
LP_DIRECT_HD inline T direct_corr_at(const T* x, const T* w, const T* bias, int64_t e, const CorrGeom& g) {
  return direct_corr_row_at<T, A>(x, w, bias, e / g.Lout, e % g.Lout, g);
}

// Weight grad, one block per (go, c, tile of kDirectKTile taps starting at k0): thread `tid` of `nthreads`
// adds dy[b, go, t]·x[b, gi·C + c, t + k·d − p] over positions e = b·Lout + t ≡ tid (mod nthreads) into
// acc[j] for tap k0 + j (taps >= K stay 0). The block then sums acc over its threads (kernels/cuda/conv1d_direct.cu).
template <typename T>
LP_DIRECT_HD inline void direct_wgrad_partial(const T* x, const T* dy, int64_t go, int64_t c, int64_t k0, int64_t tid,
                                              int64_t nthreads, const CorrGeom& g, double (&acc)[kDirectKTile]) {
  const int64_t gi = go / g.O, n = g.B * g.Lout;
  const int64_t kn = g.K - k0 < kDirectKTile ? g.K - k0 : kDirectKTile;
  LP_DIRECT_UNROLL
  for (int j = 0; j < kDirectKTile; ++j) acc[j] = 0;
  // e = b·Lout + t steps by nthreads; (b, t) follow without divisions (64-bit ones cost more than the FMAs)
  int64_t b = tid / g.Lout, t = tid % g.Lout;
  const int64_t db = nthreads / g.Lout, dt = nthreads % g.Lout;
  for (int64_t e = tid; e < n; e += nthreads, b += db, t += dt) {
    if (t >= g.Lout) {
      t -= g.Lout;
      ++b;
    }
    const double v = static_cast<double>(dy[(b * g.G * g.O + go) * g.Lout + t]);
    const T* xr = x + (b * g.G * g.C + gi * g.C + c) * g.Lin;
    const int64_t s0 = t + k0 * g.d - g.p;  // x position of tap k0
    LP_DIRECT_UNROLL
    for (int j = 0; j < kDirectKTile; ++j) {  // fixed trip count: acc stays in registers
      const int64_t src = s0 + j * g.d;
      if (j < kn && src >= 0 && src < g.Lin) acc[j] += v * static_cast<double>(xr[src]);
    }
  }
}

// Blocks of the weight grad: one per (go, c, tap tile).
LP_DIRECT_HD inline int64_t direct_wgrad_blocks(const CorrGeom& g) {
  return g.G * g.O * g.C * ((g.K + kDirectKTile - 1) / kDirectKTile);
}
// Block index -> (go, c, k0).
LP_DIRECT_HD inline void direct_wgrad_block(const CorrGeom& g, int64_t blk, int64_t& go, int64_t& c, int64_t& k0) {
  const int64_t tiles = (g.K + kDirectKTile - 1) / kDirectKTile;
  k0 = (blk % tiles) * kDirectKTile;
  blk /= tiles;
  c = blk % g.C;
  go = blk / g.C;
}

}  // namespace lowpass::cuda
