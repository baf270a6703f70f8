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
// the store. The weight grad of such layers has a kernel of the same build (below).
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
// f.template operator()<OM>() with OM = narrow_om(g) (16 for anything above 8): one instantiation per register tile,
// for the launchers (kernels/cuda/conv1d_narrow.cu) and the host tests alike.
template <typename F>
decltype(auto) dispatch_narrow_om(const CorrGeom& g, F&& f) {
  switch (narrow_om(g)) {
    case 2: return f.template operator()<2>();
    case 4: return f.template operator()<4>();
    case 8: return f.template operator()<8>();
    default: return f.template operator()<16>();
  }
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

// ---- Weight grad for few outputs: dw[gi·O + o, c, k] = Σ_{b,t} dy[b, gi·O + o, t]·x[b, gi·C + c, t + k·d − p] ----
// A block owns all OM outputs × a column block of narrow_wcc(g) input channels × K taps (at most 128·R columns, R =
// 8 / OM or 1) of one group, and a split s of the (batch item, kNarrowWT-position chunk) pairs (s, s + S, ...). Per
// chunk it stages dy (OM × kNarrowWT) and the x windows (wcc × (kNarrowWT + (K−1)·d)) as double; thread tid keeps
// R columns tid + 128·r, each with OM double sums: per position, OM broadcast dy loads and R x loads feed R·OM
// double FMAs. Each split writes its double partial sums to part[s]; a second kernel adds the S partials in order
// (deterministic). Replaces the direct weight grad (one block per (output, channel, 8 taps) streaming every
// position: 1.6–1.7 TFLOP/s on an H200) under LOWPASS_CUDA_CONV=tiled; NOT YET RUN ON A GPU.
constexpr int kNarrowWT = 128;  // positions per staged chunk

template <int OM>
constexpr int narrow_wr() {  // columns per thread
  return OM >= 8 ? 1 : 8 / OM;
}
LP_DIRECT_HD inline int narrow_wcols(const CorrGeom& g) {  // columns per block at most
  const int om = narrow_om(g);
  return kNarrowThreads * (om >= 8 ? 1 : 8 / (om > 0 ? om : 1));
}
LP_DIRECT_HD inline int64_t narrow_wxw(const CorrGeom& g) { return kNarrowWT + (g.K - 1) * g.d; }
// Input channels per block: as many whole channels as fit the column block, at most C.
LP_DIRECT_HD inline int64_t narrow_wcc(const CorrGeom& g) {
  const int64_t cc = narrow_wcols(g) / g.K;
  return cc < g.C ? cc : g.C;
}
LP_DIRECT_HD inline int64_t narrow_wdys_doubles(const CorrGeom& g) { return int64_t{narrow_om(g)} * kNarrowWT; }
LP_DIRECT_HD inline int64_t narrow_wsmem_doubles(const CorrGeom& g) {
  return narrow_wdys_doubles(g) + narrow_wcc(g) * narrow_wxw(g);
}
LP_DIRECT_HD inline int64_t narrow_wchunks_per_item(const CorrGeom& g) { return (g.Lout + kNarrowWT - 1) / kNarrowWT; }
LP_DIRECT_HD inline int64_t narrow_wcblocks(const CorrGeom& g) { return (g.C + narrow_wcc(g) - 1) / narrow_wcc(g); }
// Whether the weight-grad kernel takes g: at most 16 outputs, K within a column block, the tiles within the budget.
inline bool narrow_wgrad_fits(const CorrGeom& g) {
  return g.O >= 1 && g.O <= kDirectMaxO && g.C >= 1 && g.K >= 1 && g.d >= 1 && g.B >= 1 && g.Lout >= 1 &&
         g.K <= narrow_wcols(g) && narrow_wsmem_doubles(g) * static_cast<int64_t>(sizeof(double)) <= kNarrowSmemBytes;
}
// Splits of the positions for a device with `sms` multiprocessors: about 4 blocks per multiprocessor, at most one
// per chunk, S·G within the grid's z extent.
inline int64_t narrow_wgrad_splits(const CorrGeom& g, int sms) {
  const int64_t per_split = narrow_wcblocks(g) * g.G, chunks = g.B * narrow_wchunks_per_item(g);
  int64_t S = (int64_t{4} * sms + per_split - 1) / per_split;
  if (S > chunks) S = chunks;
  if (S > 65535 / g.G) S = 65535 / g.G;
  return S < 1 ? 1 : S;
}

struct NarrowWBlock {
  int64_t c0, gi, s;  // first input channel, group, split
};
// Block index (x = column block, z = gi·S + s) -> coordinates.
LP_DIRECT_HD inline NarrowWBlock narrow_wblock(const CorrGeom& g, int64_t S, int64_t bx, int64_t bz) {
  return {bx * narrow_wcc(g), bz / S, bz % S};
}

// Load phase for chunk q (batch item q / chunks_per_item, positions t0 = (q % chunks_per_item)·kNarrowWT ..):
//   dys[o·kNarrowWT + t'] = dy[b, gi·O + o, t0 + t']  (0 past O or Lout)
//   xs[c·XW + u]          = x[b, gi·C + c0 + c, t0 − p + u] (0 outside x or past C)
template <int OM, typename T>
LP_DIRECT_HD inline void narrow_wload(const T* x, const T* dy, double* dys, double* xs, const CorrGeom& g,
                                      const NarrowWBlock& blk, int64_t q, int tid) {
  const int64_t per = narrow_wchunks_per_item(g), b = q / per, t0 = (q % per) * kNarrowWT;
  for (int e = tid; e < OM * kNarrowWT; e += kNarrowThreads) {  // in-tile indices in 32 bits
    const int o = e / kNarrowWT, tl = e - o * kNarrowWT;
    const int64_t t = t0 + tl;
    dys[e] = (o < g.O && t < g.Lout) ? static_cast<double>(dy[(b * g.G * g.O + blk.gi * g.O + o) * g.Lout + t]) : 0.0;
  }
  const int XW = static_cast<int>(narrow_wxw(g)), CC = static_cast<int>(narrow_wcc(g));
  for (int e = tid; e < CC * XW; e += kNarrowThreads) {
    const int cl = e / XW, u = e - cl * XW;
    const int64_t c = blk.c0 + cl, s = t0 - g.p + u;
    xs[e] = (c < g.C && s >= 0 && s < g.Lin) ? static_cast<double>(x[((b * g.G + blk.gi) * g.C + c) * g.Lin + s])
                                             : 0.0;
  }
}

// Compute phase: thread tid adds Σ_{t'} dys[o, t']·xs[c_r, t' + k_r·d] into acc[r][o] for its columns
// tid + 128·r = c_r·K + k_r (columns past the block's wcc·K add nothing).
template <int OM>
LP_DIRECT_HD inline void narrow_wcompute(const double* dys, const double* xs, const CorrGeom& g, int tid,
                                         double (&acc)[narrow_wr<OM>()][OM]) {
  constexpr int R = narrow_wr<OM>();
  const int K = static_cast<int>(g.K), XW = static_cast<int>(narrow_wxw(g));
  const int ncol = static_cast<int>(narrow_wcc(g)) * K;
  int off[R];
  LP_DIRECT_UNROLL
  for (int r = 0; r < R; ++r) {
    const int col = tid + kNarrowThreads * r;
    off[r] = col < ncol ? (col / K) * XW + (col % K) * static_cast<int>(g.d) : -1;
  }
  for (int t = 0; t < kNarrowWT; ++t) {
    double dv[OM];
    LP_DIRECT_UNROLL
    for (int o = 0; o < OM; ++o) dv[o] = dys[o * kNarrowWT + t];
    LP_DIRECT_UNROLL
    for (int r = 0; r < R; ++r) {
      const double xv = off[r] >= 0 ? xs[off[r] + t] : 0.0;
      LP_DIRECT_UNROLL
      for (int o = 0; o < OM; ++o) acc[r][o] = fma(dv[o], xv, acc[r][o]);
    }
  }
}

// Store phase: part[(s·G·O + gi·O + o)·C·K + c·K + k] for the thread's columns inside the block and o < O (dw's
// layout, per split).
template <int OM>
LP_DIRECT_HD inline void narrow_wstore(double* part, const CorrGeom& g, const NarrowWBlock& blk, int tid,
                                       const double (&acc)[narrow_wr<OM>()][OM]) {
  constexpr int R = narrow_wr<OM>();
  const int64_t ncol = narrow_wcc(g) * g.K, dwn = g.G * g.O * g.C * g.K;
  LP_DIRECT_UNROLL
  for (int r = 0; r < R; ++r) {
    const int64_t col = tid + kNarrowThreads * r, c = blk.c0 + col / g.K;
    if (col >= ncol || c >= g.C) continue;
    LP_DIRECT_UNROLL
    for (int o = 0; o < OM; ++o) {
      if (o >= g.O) break;
      part[blk.s * dwn + ((blk.gi * g.O + o) * g.C + c) * g.K + col % g.K] = acc[r][o];
    }
  }
}

}  // namespace lowpass::cuda
