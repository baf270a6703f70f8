// Tiled (implicit-GEMM) float32 conv1d correlation for the wide layers (opt-in, LOWPASS_CUDA_CONV=tiled; NOT YET
// RUN ON A GPU): y[b, gi·O + o, t] = bias + Σ_{c,k} w[gi·O + o, c, k]·x[b, gi·C + c, t + k·d − p], without im2col.
// A block computes 64 output channels × 128 positions of one (batch, group); it walks the input channels in chunks
// of 8, staging the chunk's x window (8 × (128 + (K−1)·d), zero outside x) and weights (8 × K × 64) in shared
// memory, and each of its 128 threads accumulates an 8 (channels) × 8 (positions, 16 apart) register tile: per
// (channel, tap) two broadcast float4 weight loads and 8 conflict-free x loads feed 64 FMAs, where im2col writes and
// reads a C·K-row matrix per position (≈ 1 GB per pass for the binary model's 64 → 64, K 15 layer at batch 256).
// It serves the forward and, through the flipped-transposed weights conv1d.cu already builds, the input grad; the
// weight grad stays on im2col + cuBLAS.
// The load, compute and store phases are host-device functions over one thread's share, so the host test runs every
// block phase by phase (all loads, then all computes, per chunk) against the CPU conv (tests/test_cuda_direct.cpp);
// kernels/cuda/conv1d_tiled.cu wraps them with shared memory and barriers.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/cuda/conv_direct.h"  // LP_DIRECT_HD, LP_DIRECT_UNROLL, DirectGeom

namespace lowpass::cuda {

constexpr int kTiledO = 64;                  // output channels per block
constexpr int kTiledT = 128;                 // output positions per block
constexpr int kTiledC = 8;                   // input channels per shared-memory chunk
constexpr int kTiledThreads = 128;           // 8 channel groups × 16 position lanes; 8 × 8 outputs each
constexpr int kTiledWStride = kTiledO + 4;   // floats per weight-tile row: spreads the stores over banks, keeps
                                             // each thread's 8 weights 16-byte aligned
constexpr int64_t kTiledMaxSmemFloats = 12288;  // 48 KiB: no opt-in to larger dynamic shared memory needed

// Width of the x window a block reads per channel: its 128 positions plus the dilated kernel's reach.
LP_DIRECT_HD inline int64_t tiled_xw(const DirectGeom& g) { return kTiledT + (g.K - 1) * g.d; }
// Shared-memory floats: the weight tile first (16-byte aligned), then the x window.
LP_DIRECT_HD inline int64_t tiled_ws_floats(const DirectGeom& g) { return kTiledC * g.K * kTiledWStride; }
LP_DIRECT_HD inline int64_t tiled_smem_floats(const DirectGeom& g) { return tiled_ws_floats(g) + kTiledC * tiled_xw(g); }
// Whether the tiled kernel can take g: shared memory within 48 KiB (K·(1 + d) up to about 20 for d = 1: the binary
// model's K 15 and 13, BPNet's K 3 up to d = 64), and the grid's z extent (batch · groups) within 65535.
inline bool tiled_fits(const DirectGeom& g) {
  return g.K >= 1 && g.d >= 1 && tiled_smem_floats(g) <= kTiledMaxSmemFloats && g.B * g.G <= 65535 && g.B * g.G >= 1;
}

struct TiledBlock {
  int64_t t0, o0, b, gi;  // first position, first output channel, batch item, group
};
// Block coordinates: x = position tile, y = output-channel tile, z = b·G + gi.
LP_DIRECT_HD inline TiledBlock tiled_block(const DirectGeom& g, int64_t bx, int64_t by, int64_t bz) {
  return {bx * kTiledT, by * kTiledO, bz / g.G, bz % g.G};
}
LP_DIRECT_HD inline int64_t tiled_grid_x(const DirectGeom& g) { return (g.Lout + kTiledT - 1) / kTiledT; }
LP_DIRECT_HD inline int64_t tiled_grid_y(const DirectGeom& g) { return (g.O + kTiledO - 1) / kTiledO; }

// Load phase for the chunk of input channels c0 .. c0 + 7, thread tid's share:
//   ws[(c·K + k)·kTiledWStride + oo] = w[gi·O + o0 + oo, c0 + c, k]   (0 past O or C)
//   xs[c·XW + u]                     = x[b, gi·C + c0 + c, t0 − p + u] (0 outside x or past C)
// The weight reads run along (c, k), contiguous in w for one output channel.
template <typename T>
LP_DIRECT_HD inline void tiled_load(const T* x, const T* w, float* ws, float* xs, const DirectGeom& g,
                                    const TiledBlock& blk, int64_t c0, int tid) {
  const int64_t CK = kTiledC * g.K;
  for (int64_t e = tid; e < kTiledO * CK; e += kTiledThreads) {
    const int64_t oo = e / CK, r = e % CK;  // r = c·K + k
    const int64_t o = blk.o0 + oo, ci = c0 + r / g.K;
    ws[r * kTiledWStride + oo] =
        (o < g.O && ci < g.C) ? static_cast<float>(w[((blk.gi * g.O + o) * g.C + c0) * g.K + r]) : 0.f;
  }
  const int64_t XW = tiled_xw(g);
  for (int64_t e = tid; e < kTiledC * XW; e += kTiledThreads) {
    const int64_t c = e / XW, u = e % XW;
    const int64_t ci = c0 + c, s = blk.t0 - g.p + u;
    xs[e] = (ci < g.C && s >= 0 && s < g.Lin)
                ? static_cast<float>(x[((blk.b * g.G + blk.gi) * g.C + ci) * g.Lin + s])
                : 0.f;
  }
}

// Compute phase: thread tid (channel group to = tid / 16, lane tt = tid % 16) adds the chunk's products into
// acc[i][j] for output channel o0 + 8·to + i and position t0 + tt + 16·j.
LP_DIRECT_HD inline void tiled_compute(const float* ws, const float* xs, const DirectGeom& g, int tid,
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
LP_DIRECT_HD inline void tiled_store(T* y, const T* bias, const DirectGeom& g, const TiledBlock& blk, int tid,
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

}  // namespace lowpass::cuda
