// Tiled (implicit-GEMM) float32 conv1d correlation for the wide layers (the default `auto` backend's choice for
// long reductions and for first convs with few inputs, kernels/cuda/conv_backend.h; verified on an H200), without
// im2col:
//   y[b, gi·O + o, t] = bias + Σ_{c,k} w[gi·O + o, c, k]·x[b, gi·C + c, t + k·d − p].
// A block computes 64 output channels × 128 positions of one (batch, group); it walks the input channels in chunks
// of 8, staging the chunk's x window (8 × (128 + (K−1)·d), zero outside x) and weights (8 × K × 64) in shared
// memory, and each of its 128 threads accumulates an 8 (channels) × 8 (positions, 16 apart) register tile: per
// (channel, tap) two broadcast float4 weight loads and 8 conflict-free x loads feed 64 FMAs, where im2col writes and
// reads a C·K-row matrix per position (≈ 1 GB per pass for the binary model's 64 → 64, K 15 layer at batch 256).
// It serves the forward and, through the flipped-transposed weights conv1d.cu already builds, the input grad; the
// weight grad has its own tiled kernel (below).
// The load, compute and store phases are host-device functions over one thread's share, so the host test runs every
// block phase by phase (all loads, then all computes, per chunk) against the CPU conv (tests/test_cuda_direct.cpp);
// kernels/cuda/conv1d_tiled.cu wraps them with shared memory and barriers.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/cuda/conv_direct.h"  // LP_DIRECT_HD, LP_DIRECT_UNROLL, CorrGeom

namespace lowpass::cuda {

constexpr int kTiledO = 64;                  // output channels per block
constexpr int kTiledT = 128;                 // output positions per block
constexpr int kTiledC = 8;                   // input channels per shared-memory chunk
constexpr int kTiledThreads = 128;           // 8 channel groups × 16 position lanes; 8 × 8 outputs each
constexpr int kTiledWStride = kTiledO + 4;   // floats per weight-tile row: spreads the stores over banks, keeps
                                             // each thread's 8 weights 16-byte aligned
constexpr int64_t kTiledMaxSmemFloats = 12288;  // 48 KiB: no opt-in to larger dynamic shared memory needed

// Width of the x window a block reads per channel: its 128 positions plus the dilated kernel's reach.
LP_DIRECT_HD inline int64_t tiled_xw(const CorrGeom& g) { return kTiledT + (g.K - 1) * g.d; }
// Shared-memory floats: the weight tile first (16-byte aligned), then the x window.
LP_DIRECT_HD inline int64_t tiled_ws_floats(const CorrGeom& g) { return kTiledC * g.K * kTiledWStride; }
LP_DIRECT_HD inline int64_t tiled_smem_floats(const CorrGeom& g) {
  return tiled_ws_floats(g) + kTiledC * tiled_xw(g);
}
// Whether the tiled kernel can take g: shared memory within 48 KiB (K·(1 + d) up to about 20 for d = 1: the binary
// model's K 15 and 13, BPNet's K 3 up to d = 64), and the grid's z extent (batch · groups) within 65535.
inline bool tiled_fits(const CorrGeom& g) {
  return g.K >= 1 && g.d >= 1 && tiled_smem_floats(g) <= kTiledMaxSmemFloats && g.B * g.G <= 65535 && g.B * g.G >= 1;
}

struct TiledBlock {
  int64_t t0, o0, b, gi;  // first position, first output channel, batch item, group
};
// Block coordinates: x = position tile, y = output-channel tile, z = b·G + gi.
LP_DIRECT_HD inline TiledBlock tiled_block(const CorrGeom& g, int64_t bx, int64_t by, int64_t bz) {
  return {bx * kTiledT, by * kTiledO, bz / g.G, bz % g.G};
}
LP_DIRECT_HD inline int64_t tiled_grid_x(const CorrGeom& g) { return (g.Lout + kTiledT - 1) / kTiledT; }
LP_DIRECT_HD inline int64_t tiled_grid_y(const CorrGeom& g) { return (g.O + kTiledO - 1) / kTiledO; }

// The x window of the chunk of input channels c0 .. c0 + 7, thread tid's share: xs[c·XW + u] gets
// x[b, gi·C + c0 + c, t0 − p + u] through copy(dst, src), or 0 outside x or past C (stored directly). The plain
// load converts in place, the pipelined one issues cp.async.
template <typename T, typename Copy>
LP_DIRECT_HD inline void tiled_load_x(const T* x, float* xs, const CorrGeom& g, const TiledBlock& blk, int64_t c0,
                                      int tid, Copy&& copy) {
  const int XW = static_cast<int>(tiled_xw(g));
  const int64_t s0 = blk.t0 - g.p;
  for (int e = tid; e < kTiledC * XW; e += kTiledThreads) {
    const int c = e / XW, u = e - c * XW;
    const int64_t ci = c0 + c, s = s0 + u;
    if (ci < g.C && s >= 0 && s < g.Lin)
      copy(xs + e, x + ((blk.b * g.G + blk.gi) * g.C + ci) * g.Lin + s);
    else
      xs[e] = 0.f;
  }
}

// Load phase for the chunk of input channels c0 .. c0 + 7, thread tid's share:
//   ws[(c·K + k)·kTiledWStride + oo] = w[gi·O + o0 + oo, c0 + c, k]   (0 past O or C)
//   xs[c·XW + u]                     = x[b, gi·C + c0 + c, t0 − p + u] (0 outside x or past C)
// The weight reads run along (c, k), contiguous in w for one output channel.
template <typename T>
LP_DIRECT_HD inline void tiled_load(const T* x, const T* w, float* ws, float* xs, const CorrGeom& g,
                                    const TiledBlock& blk, int64_t c0, int tid) {
  // In-tile indices in 32 bits (a 64-bit division costs several times a 32-bit one); offsets into x and w in 64.
  const int K = static_cast<int>(g.K), CK = kTiledC * K;
  for (int e = tid; e < kTiledO * CK; e += kTiledThreads) {
    const int oo = e / CK, r = e - oo * CK;  // r = c·K + k
    const int64_t o = blk.o0 + oo, ci = c0 + r / K;
    ws[r * kTiledWStride + oo] =
        (o < g.O && ci < g.C) ? static_cast<float>(w[((blk.gi * g.O + o) * g.C + c0) * g.K + r]) : 0.f;
  }
  tiled_load_x(x, xs, g, blk, c0, tid, [](float* d, const T* s) { *d = static_cast<float>(*s); });
}

// Compute phase: thread tid (channel group to = tid / 16, lane tt = tid % 16) adds the chunk's products into
// acc[i][j] for output channel o0 + 8·to + i and position t0 + tt + 16·j.
LP_DIRECT_HD inline void tiled_compute(const float* ws, const float* xs, const CorrGeom& g, int tid,
                                       float (&acc)[8][8]) {
  const int to = tid / 16, tt = tid % 16;
  const int K = static_cast<int>(g.K), d = static_cast<int>(g.d), XW = static_cast<int>(tiled_xw(g));
  for (int c = 0; c < kTiledC; ++c)
    for (int k = 0; k < K; ++k) {
      const float* wr = ws + (c * K + k) * kTiledWStride + to * 8;
      float a[8], xv[8];
#if defined(__CUDA_ARCH__)
      const float4 a0 = reinterpret_cast<const float4*>(wr)[0], a1 = reinterpret_cast<const float4*>(wr)[1];
      a[0] = a0.x, a[1] = a0.y, a[2] = a0.z, a[3] = a0.w, a[4] = a1.x, a[5] = a1.y, a[6] = a1.z, a[7] = a1.w;
#else
      for (int i = 0; i < 8; ++i) a[i] = wr[i];
#endif
      const float* xr = xs + c * XW + k * d + tt;
      LP_DIRECT_UNROLL
      for (int j = 0; j < 8; ++j) xv[j] = xr[16 * j];
      LP_DIRECT_UNROLL
      for (int i = 0; i < 8; ++i) {
        LP_DIRECT_UNROLL
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], xv[j], acc[i][j]);
      }
    }
}

// Store phase: y[b, gi·O + o, t] = acc + bias for the thread's outputs inside y.
template <typename T>
LP_DIRECT_HD inline void tiled_store(T* y, const T* bias, const CorrGeom& g, const TiledBlock& blk, int tid,
                                     const float (&acc)[8][8]) {
  const int to = tid / 16, tt = tid % 16;
  LP_DIRECT_UNROLL
  for (int i = 0; i < 8; ++i) {
    const int64_t o = blk.o0 + 8 * to + i;
    if (o >= g.O) continue;
    const int64_t go = blk.gi * g.O + o;
    const float bv = bias ? static_cast<float>(bias[go]) : 0.f;
    T* yr = y + (blk.b * g.G * g.O + go) * g.Lout;
    LP_DIRECT_UNROLL
    for (int j = 0; j < 8; ++j) {
      const int64_t t = blk.t0 + tt + 16 * j;
      if (t < g.Lout) yr[t] = static_cast<T>(acc[i][j] + bv);
    }
  }
}

// ---- Pipelined variant of the correlation (LOWPASS_CUDA_CONV=tiled; NOT YET RUN ON A GPU) ----
// The kernel above loads a chunk, waits at a barrier, computes, waits again: its loads (the weight tile rebuilt from
// w with a division per element, the x window) and its barriers sit between the FMAs, and it ran at about 20
// TFLOP/s (a third of the H200's float32 peak) on binary's layers. The pipelined variant lays the weights out once
// per call exactly as the blocks' weight tiles (`wprep`: for each (group, output tile, channel chunk) the
// tiled_ws_floats(g) floats tiled_load would build), so a block's weight tile is a contiguous copy of 16-byte
// pieces, and keeps two stages of tiles in shared memory: the copies of chunk ch + 1 (cp.async) run while chunk ch
// is computed. The x window is copied element by element (zeros stored directly). Shared memory: two stages, up to
// 2 × 48 KiB (the device's opt-in limit decides; otherwise the plain kernel runs).
LP_DIRECT_HD inline int64_t tiled_chunks(const CorrGeom& g) { return (g.C + kTiledC - 1) / kTiledC; }
// Floats of one stage (weight tile + x window), rounded up to 4 so the second stage starts 16-byte aligned.
LP_DIRECT_HD inline int64_t tiled_stage_floats(const CorrGeom& g) { return (tiled_smem_floats(g) + 3) / 4 * 4; }
LP_DIRECT_HD inline int64_t tiled_wprep_floats(const CorrGeom& g) {
  return g.G * tiled_grid_y(g) * tiled_chunks(g) * tiled_ws_floats(g);
}
// wprep[e]: tile (gi·grid_y + by)·chunks + ch, element (c·K + k)·kTiledWStride + oo, as tiled_load writes ws.
template <typename T>
LP_DIRECT_HD inline float tiled_wprep_value(const T* w, const CorrGeom& g, int64_t e) {
  const int64_t nws = tiled_ws_floats(g), chunks = tiled_chunks(g), gy = tiled_grid_y(g);
  const int64_t r0 = e % nws, tile = e / nws;
  const int64_t ch = tile % chunks, by = (tile / chunks) % gy, gi = tile / chunks / gy;
  const int64_t oo = r0 % kTiledWStride, r = r0 / kTiledWStride;  // r = c·K + k
  const int64_t o = by * kTiledO + oo, ci = ch * kTiledC + r / g.K;
  return (oo < kTiledO && o < g.O && ci < g.C) ? static_cast<float>(w[((gi * g.O + o) * g.C + ci) * g.K + r % g.K])
                                               : 0.f;
}

// Load phase of chunk ch into one stage (ws, xs), thread tid's share, through the copy functors (the kernel's
// cp.async; plain copies on the host): copy16(dst, src) copies 4 floats, copy4(dst, src) one. Same tiles as
// tiled_load.
template <typename Copy16, typename Copy4>
LP_DIRECT_HD inline void tiled_load_async(const float* x, const float* wprep, float* ws, float* xs, const CorrGeom& g,
                                          const TiledBlock& blk, int64_t ch, int tid, Copy16&& copy16,
                                          Copy4&& copy4) {
  const int64_t nws = tiled_ws_floats(g);
  const float* src = wprep + ((blk.gi * tiled_grid_y(g) + blk.o0 / kTiledO) * tiled_chunks(g) + ch) * nws;
  for (int i = tid; i < static_cast<int>(nws / 4); i += kTiledThreads) copy16(ws + 4 * i, src + 4 * i);
  tiled_load_x(x, xs, g, blk, ch * kTiledC, tid, copy4);
}

}  // namespace lowpass::cuda

namespace lowpass::cuda {

// ---- Weight grad: dw[gi·O + o, c, k] = Σ_{b,t} dy[b, gi·O + o, t]·x[b, gi·C + c, t + k·d − p] ----
// A block owns 64 output channels × a column block of CB = 128 / K input channels × K taps (CB·K <= 128 columns:
// 8 channels at K 15, 42 at K 3) of one group, and a split s of the (batch item, 64-position chunk) pairs (s, s + S,
// ...). Per chunk it stages dy (64 × 64) and the x windows (CB × (64 + (K−1)·d)) in shared memory; each of its 128
// threads keeps 8 output channels × 8 columns (16 apart). Each split writes its partial sums to part[s] and a
// second kernel adds the S partials in order (deterministic; double sums).
constexpr int kWgradT = 64;       // positions per staged chunk
constexpr int kWgradCols = 128;   // columns (channel, tap) per block at most
constexpr int kWgradDyStride = kWgradT + 1;  // floats per staged dy row: the two rows a warp reads sit in
                                             // different banks

LP_DIRECT_HD inline int64_t wgrad_cb(const CorrGeom& g) { return kWgradCols / g.K; }  // input channels per block
LP_DIRECT_HD inline int64_t wgrad_xw(const CorrGeom& g) { return kWgradT + (g.K - 1) * g.d; }
LP_DIRECT_HD inline int64_t wgrad_dys_floats() { return int64_t{kTiledO} * kWgradDyStride; }
LP_DIRECT_HD inline int64_t wgrad_smem_floats(const CorrGeom& g) {
  return wgrad_dys_floats() + wgrad_cb(g) * wgrad_xw(g);
}
LP_DIRECT_HD inline int64_t wgrad_chunks_per_item(const CorrGeom& g) { return (g.Lout + kWgradT - 1) / kWgradT; }
LP_DIRECT_HD inline int64_t wgrad_cblocks(const CorrGeom& g) { return (g.C + wgrad_cb(g) - 1) / wgrad_cb(g); }
LP_DIRECT_HD inline int64_t wgrad_otiles(const CorrGeom& g) { return (g.O + kTiledO - 1) / kTiledO; }
// Whether the tiled weight grad can take g: K <= 64 (CB >= 2), shared memory within 48 KiB, something to sum.
inline bool wgrad_tiled_fits(const CorrGeom& g) {
  return g.K >= 1 && g.K <= 64 && g.d >= 1 && wgrad_smem_floats(g) <= kTiledMaxSmemFloats && g.B >= 1 &&
         g.Lout >= 1 && g.C >= 1 && g.O >= 1;
}

// Splits of the positions for a device with `sms` multiprocessors: about 4 blocks per multiprocessor, at most one
// per chunk (kernels/cuda/conv1d_tiled.cu).
int64_t tiled_wgrad_splits(const CorrGeom& g, int sms);

struct WgradBlock {
  int64_t o0, c0, gi, s;  // first output channel, first input channel, group, split
};
// Block index (x = o tile, y = column block, z = gi·S + s) -> coordinates.
LP_DIRECT_HD inline WgradBlock wgrad_block(const CorrGeom& g, int64_t S, int64_t bx, int64_t by, int64_t bz) {
  return {bx * kTiledO, by * wgrad_cb(g), bz / S, bz % S};
}

// Load phase for chunk q (batch item q / chunks_per_item, positions t0 = (q % chunks_per_item)·64 ..):
//   dys[o·65 + t'] = dy[b, gi·O + o0 + o, t0 + t']  (0 past O or Lout)
//   xs[c·XW + u]   = x[b, gi·C + c0 + c, t0 − p + u] (0 outside x or past C)
LP_DIRECT_HD inline void wgrad_load(const float* x, const float* dy, float* dys, float* xs, const CorrGeom& g,
                                    const WgradBlock& blk, int64_t q, int tid) {
  const int64_t per = wgrad_chunks_per_item(g), b = q / per, t0 = (q % per) * kWgradT;
  for (int e = tid; e < kTiledO * kWgradT; e += kTiledThreads) {  // in-tile indices in 32 bits
    const int ol = e / kWgradT, tl = e % kWgradT;
    const int64_t o = blk.o0 + ol, t = t0 + tl;
    dys[ol * kWgradDyStride + tl] =
        (o < g.O && t < g.Lout) ? dy[(b * g.G * g.O + blk.gi * g.O + o) * g.Lout + t] : 0.f;
  }
  const int XW = static_cast<int>(wgrad_xw(g)), CB = static_cast<int>(wgrad_cb(g));
  for (int e = tid; e < CB * XW; e += kTiledThreads) {
    const int cl = e / XW, u = e - cl * XW;
    const int64_t c = blk.c0 + cl, s = t0 - g.p + u;
    xs[e] = (c < g.C && s >= 0 && s < g.Lin) ? x[((b * g.G + blk.gi) * g.C + c) * g.Lin + s] : 0.f;
  }
}

// The same load through a copy functor (the pipelined weight grad's cp.async; a plain copy on the host): copy4(dst,
// src) copies one float; zeros are stored directly. Same tiles as wgrad_load.
template <typename Copy4>
LP_DIRECT_HD inline void wgrad_load_async(const float* x, const float* dy, float* dys, float* xs, const CorrGeom& g,
                                          const WgradBlock& blk, int64_t q, int tid, Copy4&& copy4) {
  const int64_t per = wgrad_chunks_per_item(g), b = q / per, t0 = (q % per) * kWgradT;
  for (int e = tid; e < kTiledO * kWgradT; e += kTiledThreads) {
    const int ol = e / kWgradT, tl = e % kWgradT;
    const int64_t o = blk.o0 + ol, t = t0 + tl;
    float* dst = dys + ol * kWgradDyStride + tl;
    if (o < g.O && t < g.Lout)
      copy4(dst, dy + (b * g.G * g.O + blk.gi * g.O + o) * g.Lout + t);
    else
      *dst = 0.f;
  }
  const int XW = static_cast<int>(wgrad_xw(g)), CB = static_cast<int>(wgrad_cb(g));
  for (int e = tid; e < CB * XW; e += kTiledThreads) {
    const int cl = e / XW, u = e - cl * XW;
    const int64_t c = blk.c0 + cl, s = t0 - g.p + u;
    if (c < g.C && s >= 0 && s < g.Lin)
      copy4(xs + e, x + ((b * g.G + blk.gi) * g.C + c) * g.Lin + s);
    else
      xs[e] = 0.f;
  }
}
// Floats of one stage of the pipelined weight grad (dy tile + x windows), rounded up to 4.
LP_DIRECT_HD inline int64_t wgrad_stage_floats(const CorrGeom& g) { return (wgrad_smem_floats(g) + 3) / 4 * 4; }

// Compute phase: thread tid (to = tid / 16, tc = tid % 16) adds Σ_{t'} dys[8·to + i, t']·xs[c_j, t' + k_j·d] into
// acc[i][j], column tc + 16·j = c_j·K + k_j (columns past CB·K add zeros).
LP_DIRECT_HD inline void wgrad_compute(const float* dys, const float* xs, const CorrGeom& g, int tid,
                                       float (&acc)[8][8]) {
  const int to = tid / 16, tc = tid % 16;
  const int K = static_cast<int>(g.K), XW = static_cast<int>(wgrad_xw(g)), ncol = static_cast<int>(wgrad_cb(g)) * K;
  int off[8];
  LP_DIRECT_UNROLL
  for (int j = 0; j < 8; ++j) {
    const int col = tc + 16 * j;
    off[j] = col < ncol ? (col / K) * XW + (col % K) * static_cast<int>(g.d) : -1;
  }
  const float* dr = dys + (8 * to) * kWgradDyStride;
  for (int t = 0; t < kWgradT; ++t) {
    float dv[8], xv[8];
    LP_DIRECT_UNROLL
    for (int i = 0; i < 8; ++i) dv[i] = dr[i * kWgradDyStride + t];
    LP_DIRECT_UNROLL
    for (int j = 0; j < 8; ++j) xv[j] = off[j] >= 0 ? xs[off[j] + t] : 0.f;
    LP_DIRECT_UNROLL
    for (int i = 0; i < 8; ++i) {
      LP_DIRECT_UNROLL
      for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(dv[i], xv[j], acc[i][j]);
    }
  }
}

// Store phase: part[(s·G·O + gi·O + o)·C·K + c·K + k] for the thread's outputs inside dw (dw's layout, per
// split).
LP_DIRECT_HD inline void wgrad_store(float* part, const CorrGeom& g, const WgradBlock& blk, int tid,
                                     const float (&acc)[8][8]) {
  const int to = tid / 16, tc = tid % 16;
  const int64_t ncol = wgrad_cb(g) * g.K, dwn = g.G * g.O * g.C * g.K;
  LP_DIRECT_UNROLL
  for (int i = 0; i < 8; ++i) {
    const int64_t o = blk.o0 + 8 * to + i;
    if (o >= g.O) continue;
    LP_DIRECT_UNROLL
    for (int j = 0; j < 8; ++j) {
      const int64_t col = tc + 16 * j, c = blk.c0 + col / g.K;
      if (col >= ncol || c >= g.C) continue;
      part[blk.s * dwn + ((blk.gi * g.O + o) * g.C + c) * g.K + col % g.K] = acc[i][j];
    }
  }
}

}  // namespace lowpass::cuda
