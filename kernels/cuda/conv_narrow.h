// Tiled conv1d correlation for layers with few outputs per group (O <= kDirectMaxO = 16): BPNet's profile head
// (64 -> 2 strands, K 75) and a first conv's input grad (64 -> 4, K 21), where the direct kernel (one thread per
// output, every tap's weight and input read from global memory) ran at 2.4–3.1 TFLOP/s on an H200 and im2col +
// cuBLAS at 0.6 (a 2-row GEMM behind a C·K-row im2col). Opt-in: LOWPASS_CUDA_CONV=tiled (kernels/cuda/conv1d.cu);
// NOT YET RUN ON A GPU.
//   y[b, gi·O + o, t] = bias + Σ_{c,k} w[gi·O + o, c, k]·x[b, gi·C + c, t + k·d − p]
// A block of kNarrowThreads threads owns all O outputs of kNarrowT = kNarrowThreads·kNarrowP positions of one
// (batch item, group). It walks the input channels in chunks of narrow_cc(g), staging the chunk's x windows
// (cc × (kNarrowT + (K−1)·d)) and weights (cc × K × OM) in shared memory as double; thread tid keeps OM ×
// kNarrowP double sums for positions t0 + tid + kNarrowThreads·j (OM = O rounded up to 2, 4, 8 or 16: a template
// argument, so the sums stay in registers; the padded weights are 0). Per (channel, tap): kNarrowP conflict-free x
// loads and OM broadcast weight loads feed OM·kNarrowP double FMAs. Double sums, as the direct kernel (its float
// sums had failed the float32 profile training step), in the order channel outer, tap inner; the bias is added at
// the store.
// The load, compute and store phases are host-device functions over one thread's share, so the host test runs every
// block phase by phase against the CPU conv (tests/test_cuda_narrow.cpp); kernels/cuda/conv1d_narrow.cu wraps them
// with shared memory and barriers.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/cuda/conv_direct.h"  // LP_DIRECT_HD, LP_DIRECT_UNROLL, CorrGeom, kDirectMaxO

namespace lowpass::cuda {

constexpr int kNarrowThreads = 128;
constexpr int kNarrowP = 2;                                // positions per thread, kNarrowThreads apart
constexpr int kNarrowT = kNarrowThreads * kNarrowP;        // positions per block
constexpr int64_t kNarrowSmemBytes = 40 * 1024;            // within the 48 KiB needing no opt-in

// Outputs per group rounded up to the kernel's register tile: 2, 4, 8 or 16 (0 when O > 16).
LP_DIRECT_HD inline int narrow_om(const CorrGeom& g) {
  return g.O <= 2 ? 2 : g.O <= 4 ? 4 : g.O <= 8 ? 8 : g.O <= 16 ? 16 : 0;
}
LP_DIRECT_HD inline int64_t narrow_xw(const CorrGeom& g) { return kNarrowT + (g.K - 1) * g.d; }
// Input channels per staged chunk: as many as fit kNarrowSmemBytes, at most C (0: not even one fits).
LP_DIRECT_HD inline int64_t narrow_cc(const CorrGeom& g) {
  const int64_t per = (narrow_xw(g) + g.K * narrow_om(g)) * static_cast<int64_t>(sizeof(double));
  const int64_t cc = kNarrowSmemBytes / per;
  return cc < g.C ? cc : g.C;
}
LP_DIRECT_HD inline int64_t narrow_ws_doubles(const CorrGeom& g) { return narrow_cc(g) * g.K * narrow_om(g); }
LP_DIRECT_HD inline int64_t narrow_smem_doubles(const CorrGeom& g) {
  return narrow_ws_doubles(g) + narrow_cc(g) * narrow_xw(g);
}
// Whether the kernel takes g: at most 16 outputs per group, one channel's tiles within the budget, batch · groups
// within the grid's y extent, something to compute.
inline bool narrow_fits(const CorrGeom& g) {
  return g.O >= 1 && g.O <= kDirectMaxO && g.C >= 1 && g.K >= 1 && g.d >= 1 && g.Lout >= 1 && g.B * g.G >= 1 &&
         g.B * g.G <= 65535 && narrow_cc(g) >= 1;
}

struct NarrowBlock {
  int64_t t0, b, gi;  // first position, batch item, group
};
// Block coordinates: x = position tile, y = b·G + gi.
LP_DIRECT_HD inline NarrowBlock narrow_block(const CorrGeom& g, int64_t bx, int64_t by) {
  return {bx * kNarrowT, by / g.G, by % g.G};
}
LP_DIRECT_HD inline int64_t narrow_grid_x(const CorrGeom& g) { return (g.Lout + kNarrowT - 1) / kNarrowT; }

// Load phase for the chunk of input channels c0 .. c0 + cc − 1, thread tid's share:
//   ws[(c·K + k)·OM + o] = w[gi·O + o, c0 + c, k]   (0 past O or C)
//   xs[c·XW + u]         = x[b, gi·C + c0 + c, t0 − p + u] (0 outside x or past C)
template <int OM, typename T>
LP_DIRECT_HD inline void narrow_load(const T* x, const T* w, double* ws, double* xs, const CorrGeom& g,
                                     const NarrowBlock& blk, int64_t c0, int tid) {
  const int K = static_cast<int>(g.K), CC = static_cast<int>(narrow_cc(g));  // in-tile indices in 32 bits
  for (int e = tid; e < CC * K * OM; e += kNarrowThreads) {
    const int o = e % OM, r = e / OM, c = r / K, k = r - c * K;
    const int64_t ci = c0 + c;
    ws[e] = (o < g.O && ci < g.C) ? static_cast<double>(w[((blk.gi * g.O + o) * g.C + ci) * g.K + k]) : 0.0;
  }
  const int XW = static_cast<int>(narrow_xw(g));
  const int64_t s0 = blk.t0 - g.p;
  for (int e = tid; e < CC * XW; e += kNarrowThreads) {
    const int c = e / XW, u = e - c * XW;
    const int64_t ci = c0 + c, s = s0 + u;
    xs[e] = (ci < g.C && s >= 0 && s < g.Lin) ? static_cast<double>(x[((blk.b * g.G + blk.gi) * g.C + ci) * g.Lin + s])
                                              : 0.0;
  }
}

// Compute phase: thread tid adds the chunk's products (channels c < cn of the chunk) into acc[o][j] for output
// o and position t0 + tid + kNarrowThreads·j.
template <int OM>
LP_DIRECT_HD inline void narrow_compute(const double* ws, const double* xs, const CorrGeom& g, int64_t cn, int tid,
                                        double (&acc)[OM][kNarrowP]) {
  const int K = static_cast<int>(g.K), d = static_cast<int>(g.d), XW = static_cast<int>(narrow_xw(g));
  for (int c = 0; c < static_cast<int>(cn); ++c)
    for (int k = 0; k < K; ++k) {
      const double* wr = ws + (c * K + k) * OM;
      const double* xr = xs + c * XW + k * d + tid;
      double xv[kNarrowP];
      LP_DIRECT_UNROLL
      for (int j = 0; j < kNarrowP; ++j) xv[j] = xr[kNarrowThreads * j];
      LP_DIRECT_UNROLL
      for (int o = 0; o < OM; ++o) {
        const double wv = wr[o];
        LP_DIRECT_UNROLL
        for (int j = 0; j < kNarrowP; ++j) acc[o][j] = fma(wv, xv[j], acc[o][j]);
      }
    }
}

// Store phase: y[b, gi·O + o, t] = acc + bias for the thread's outputs inside y.
template <int OM, typename T>
LP_DIRECT_HD inline void narrow_store(T* y, const T* bias, const CorrGeom& g, const NarrowBlock& blk, int tid,
                                      const double (&acc)[OM][kNarrowP]) {
  LP_DIRECT_UNROLL
  for (int o = 0; o < OM; ++o) {
    if (o >= g.O) break;
    const int64_t go = blk.gi * g.O + o;
    const double bv = bias ? static_cast<double>(bias[go]) : 0.0;
    T* yr = y + (blk.b * g.G * g.O + go) * g.Lout;
    LP_DIRECT_UNROLL
    for (int j = 0; j < kNarrowP; ++j) {
      const int64_t t = blk.t0 + tid + kNarrowThreads * j;
      if (t < g.Lout) yr[t] = static_cast<T>(acc[o][j] + bv);
    }
  }
}

}  // namespace lowpass::cuda
