// The "taps" route of the CUDA correlation (a `tune` candidate, and `auto`'s weight grad for wide layers with
// B·Lout ≥ kTapsWgradMinN; ran on an H200): one cuBLAS strided-batched GEMM per (group, tap) on shifted views of x,
// without im2col:
//   y[b, gi·O + o, t] = bias + Σ_k Σ_c w[gi·O + o, c, k]·x[b, gi·C + c, t + k·d − p]
// For tap k the positions t whose source t + k·d − p lies inside x form one range [t0, t0 + m); over it the tap's
// term is the product (column-major, cuBLAS's convention) of
//   A = x_b shifted: m × C, element (t, c) at x + (b·G + gi)·C·Lin + c·Lin + t + k·d − p  (lda = Lin),
//   B = the tap's weights: C × O, element (c, o) at wp + ((gi·K + k)·O + o)·C + c       (ldb = C),
// added into C = y_b: m × O, element (t, o) at y + (b·G + gi)·O·Lout + o·Lout + t        (ldc = Lout),
// batched over b. wp is w laid out (G, K, O, C) once per call; y starts as the bias (or 0). For the short-kernel wide
// layers (BPNet's K 3 trunk, where im2col writes and reads a C·K-row matrix per position) it trades the column
// matrix for K GEMMs with a reduction of C each. It serves the forward and, through the flipped-transposed weights
// conv1d.cu builds, the input grad; the weight grad (below) runs the same plan with per-item GEMMs and an in-order
// sum over the batch.
// The plan (the GEMMs' offsets and sizes) and the weight layout are plain functions, so the host test
// (tests/test_cuda_taps.cpp) runs the plan with a reference GEMM against the CPU conv.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/conv1d.h"  // CorrGeom
#include "kernels/cuda/conv_direct.h"  // LP_DIRECT_HD

namespace lowpass::cuda {

struct TapGemm {
  int64_t gi = 0, k = 0;  // group, tap
  int64_t t0 = 0, m = 0;  // the output positions it adds to: [t0, t0 + m)
  int64_t a_off = 0;      // offset of A (batch item 0) in x
  int64_t b_off = 0;      // offset of B in wp
  int64_t c_off = 0;      // offset of C (batch item 0) in y
};

// Tap k's output positions [t0, t1) whose source t + s (s = k·d − p) lies inside x; empty when t1 <= t0.
LP_DIRECT_HD inline void taps_range(const cpu::CorrGeom& g, int64_t k, int64_t& s, int64_t& t0, int64_t& t1) {
  s = k * g.d - g.p;
  t0 = s < 0 ? -s : 0;
  t1 = g.Lout < g.Lin - s ? g.Lout : g.Lin - s;
}

// The GEMMs of one correlation, taps with no position inside x left out.
inline std::vector<TapGemm> taps_plan(const cpu::CorrGeom& g) {
  std::vector<TapGemm> plan;
  for (int64_t gi = 0; gi < g.G; ++gi)
    for (int64_t k = 0; k < g.K; ++k) {
      int64_t s, t0, t1;
      taps_range(g, k, s, t0, t1);
      if (t1 <= t0) continue;
      TapGemm e;
      e.gi = gi, e.k = k, e.t0 = t0, e.m = t1 - t0;
      e.a_off = gi * g.C * g.Lin + t0 + s;
      e.b_off = (gi * g.K + k) * g.O * g.C;
      e.c_off = gi * g.O * g.Lout + t0;
      plan.push_back(e);
    }
  return plan;
}

// Index in w (G·O, C, K) of element e of wp (G, K, O, C).
LP_DIRECT_HD inline int64_t taps_weight_source(const cpu::CorrGeom& g, int64_t e) {
  const int64_t c = e % g.C, r = e / g.C;
  const int64_t o = r % g.O, r2 = r / g.O;
  const int64_t k = r2 % g.K, gi = r2 / g.K;
  return ((gi * g.O + o) * g.C + c) * g.K + k;
}

// ---- Weight grad: dw[gi·O + o, c, k] = Σ_b Σ_t dy[b, gi·O + o, t]·x[b, gi·C + c, t + k·d − p] ----
// Per planned (group, tap), one strided-batched GEMM writes each batch item's term (column-major C × O, ldc = C)
//   part[((b·G + gi)·K + k)·O·C + o·C + c] = Σ_{t in [t0, t0 + m)} x[b, gi·C + c, t + s]·dy[b, gi·O + o, t]
// (A = x_b shifted, m × C with lda = Lin, transposed; B = dy_b, m × O with ldb = Lout; the reduction runs over the m
// positions), then dw[e] = Σ_b part[b][e'] adds the batch items in order, in double (deterministic), writing 0 for
// the taps that reach no position of x. part holds B·G·K·O·C values.
LP_DIRECT_HD inline bool taps_reaches(const cpu::CorrGeom& g, int64_t k) {
  int64_t s, t0, t1;
  taps_range(g, k, s, t0, t1);
  return t1 > t0;
}
// Element e of dw (G·O, C, K): its index in one batch item's block of part, e' = ((gi·K + k)·O + o)·C + c.
LP_DIRECT_HD inline int64_t taps_part_index(const cpu::CorrGeom& g, int64_t e) {
  const int64_t k = e % g.K, r = e / g.K;
  const int64_t c = r % g.C, r2 = r / g.C;
  const int64_t o = r2 % g.O, gi = r2 / g.O;
  return ((gi * g.K + k) * g.O + o) * g.C + c;
}

// Whether the route takes g: cuBLAS's sizes (m, n, k, leading dimensions) within int.
inline bool taps_fit(const cpu::CorrGeom& g) {
  const int64_t lim = 2147483647;
  return g.G >= 1 && g.K >= 1 && g.B >= 1 && g.C >= 1 && g.O >= 1 && g.Lout <= lim && g.Lin <= lim && g.C <= lim &&
         g.O <= lim && g.B <= lim;
}

}  // namespace lowpass::cuda
