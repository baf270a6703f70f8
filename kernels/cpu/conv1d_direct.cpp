// AVX-512 direct conv1d kernels (float32): no im2col, the shifted input rows are the GEMM operand.
// Forward/input-grad tile: 8 output channels × 48 positions (4 × 96 when O ≤ 4, 2 × 192 when O = 2, 1 × 192 when
// O = 1: 12 accumulators and 12 loads of x; 1 × 384 spilled) in registers, Σ over (c, k) of w[o,c,k]·x[c, t+k·d-p].
// Weight grad tile: 64 output channels × 6 (c,k) columns, Σ over t of dyᵀ ⊗ x; when O ≤ 4 (narrow) positions in
// the lanes instead, O × (24/O) taps per tile.
// Test: build/tests/lowpass_tests -ts=conv1d
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/parallel.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace lowpass::cpu {

#if !defined(__AVX512F__)
bool direct_available() { return false; }
void conv1d_corr_direct(const float*, const float*, const float*, float*, const CorrGeom&, const Context&, bool,
                        const float*) {
  LP_ASSERT(false, "direct conv kernel called in a build without AVX-512");
}
void conv1d_corr_wgrad_direct(const float*, const float*, float*, const CorrGeom&, const Context&) {
  LP_ASSERT(false, "direct conv kernel called in a build without AVX-512");
}
#else
bool direct_available() { return true; }

namespace {

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using Buf = std::unique_ptr<float[], FreeDeleter>;
Buf aligned_floats(int64_t n, bool zero) {
  size_t bytes = (size_t(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
  Buf b(static_cast<float*>(std::aligned_alloc(64, bytes)));
  LP_ASSERT(b != nullptr, "out of memory allocating ", bytes, " bytes for a conv buffer");
  if (zero) std::memset(b.get(), 0, bytes);
  return b;
}

inline __mmask16 lane_mask(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : (n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u));
}

// xs row c holds x[c, t0 + j - p] at column j (zero outside the input): the slab of one work item.
void fill_slab(const float* xg, int64_t C, int64_t Lin, int64_t first, int64_t n, int64_t S, float* slab) {
  for (int64_t c = 0; c < C; ++c) {
    float* row = slab + c * S;
    const float* src = xg + c * Lin;
    const int64_t j_lo = std::clamp<int64_t>(-first, 0, n), j_hi = std::clamp<int64_t>(Lin - first, 0, n);
    std::fill(row, row + j_lo, 0.0f);
    if (j_hi > j_lo) std::memcpy(row + j_lo, src + first + j_lo, sizeof(float) * size_t(j_hi - j_lo));
    std::fill(row + std::max(j_lo, j_hi), row + n, 0.0f);
  }
}

// y[r, 0:ncols] (+bias) = Σ_{c,k} wp[(c·K+k)·MR + r] · xs[c·S + k·d + 0:ncols], rows r < `rows` stored.
// MR rows × NV vectors of 16 positions live in registers (MR·NV = 24 accumulators).
// Epilogue (inference): `relu` maps v to !(v <= 0) ? v : 0 (the relu op's rule: NaN stays, −0 becomes +0), then
// `res` (rows of stride ldy, or null) is added: the bits of relu(conv) + res as separate ops give them.
template <int MR, int NV, bool Full>
inline void corr_fwd_direct_kernel(const float* wp, const float* xs, int64_t S, int64_t C, int64_t K, int64_t d,
                                   int64_t ncols, float* y, int64_t ldy, int64_t rows, const float* bias,
                                   bool relu = false, const float* res = nullptr) {
  __m512 acc[MR][NV];
  __mmask16 m[NV];
  for (int v = 0; v < NV; ++v) m[v] = Full ? __mmask16(0xFFFF) : lane_mask(ncols - 16 * v);
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t c = 0; c < C; ++c) {
    const float* xr = xs + c * S;
    const float* wc = wp + c * K * MR;
    for (int64_t k = 0; k < K; ++k) {
      const float* xp = xr + k * d;
      __m512 xv[NV];
      for (int v = 0; v < NV; ++v)
        xv[v] = Full ? _mm512_loadu_ps(xp + 16 * v) : _mm512_maskz_loadu_ps(m[v], xp + 16 * v);
      const float* wk = wc + k * MR;
      for (int r = 0; r < MR; ++r) {
        const __m512 wv = _mm512_set1_ps(wk[r]);
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(wv, xv[v], acc[r][v]);
      }
    }
  }
  for (int r = 0; r < MR; ++r) {
    if (r >= rows) break;
    const __m512 bv = _mm512_set1_ps(bias ? bias[r] : 0.0f);
    float* yr = y + r * ldy;
    for (int v = 0; v < NV; ++v) {
      __m512 o = _mm512_add_ps(acc[r][v], bv);
      if (relu) o = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(o, _mm512_setzero_ps(), _CMP_LE_OQ), o,
                                         _mm512_setzero_ps());
      if (res) {
        const float* rr = res + r * ldy + 16 * v;
        o = _mm512_add_ps(o, Full ? _mm512_loadu_ps(rr) : _mm512_maskz_loadu_ps(m[v], rr));
      }
      if constexpr (Full) _mm512_storeu_ps(yr + 16 * v, o);
      else _mm512_mask_storeu_ps(yr + 16 * v, m[v], o);
    }
  }
}

template <int MR, int NV>
void corr_fwd_direct(const float* x, const float* w, const float* bias, float* y, const CorrGeom& g,
                     const Context& ctx, bool relu, const float* res) {
  constexpr int64_t NR = 16 * NV;  // positions per tile
  const int64_t CK = g.C * g.K, nob = (g.O + MR - 1) / MR;
  // Packed weights (G, nob, C·K, MR): the MR weights of one (c, k) are contiguous; rows past O are 0.
  Buf wp = aligned_floats(g.G * nob * CK * MR, true);
  for (int64_t gi = 0; gi < g.G; ++gi)
    for (int64_t o = 0; o < g.O; ++o)
      for (int64_t j = 0; j < CK; ++j)
        wp[((gi * nob + o / MR) * CK + j) * MR + o % MR] = w[(gi * g.O + o) * CK + j];
  const int64_t tc = std::min<int64_t>(384, g.Lout);  // positions per work item
  const int64_t nch = (g.Lout + tc - 1) / tc;
  const int64_t S = tc + (g.K - 1) * g.d;  // slab row length
  parallel_chunks(ctx, g.B * g.G * nch, 1, [&](int64_t i0, int64_t i1) {
    Buf slab = aligned_floats(g.C * S, false);  // (C, S)
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t ch = i % nch, gi = (i / nch) % g.G, b = i / (nch * g.G);
      const int64_t t0 = ch * tc, n = std::min(tc, g.Lout - t0);
      fill_slab(x + (b * g.G + gi) * g.C * g.Lin, g.C, g.Lin, t0 - g.p, n + (g.K - 1) * g.d, S, slab.get());
      float* yg = y + (b * g.G + gi) * g.O * g.Lout + t0;
      for (int64_t ob = 0; ob < nob; ++ob) {
        const float* wpb = wp.get() + (gi * nob + ob) * CK * MR;
        const int64_t rows = std::min<int64_t>(MR, g.O - ob * MR);
        const float* bb = bias ? bias + gi * g.O + ob * MR : nullptr;
        float* yo = yg + ob * MR * g.Lout;
        const float* ro = res ? res + (yo - y) : nullptr;
        for (int64_t j0 = 0; j0 < n; j0 += NR) {
          const int64_t nc = std::min(NR, n - j0);
          if (nc == NR)
            corr_fwd_direct_kernel<MR, NV, true>(wpb, slab.get() + j0, S, g.C, g.K, g.d, nc, yo + j0, g.Lout, rows, bb,
                                                 relu, ro ? ro + j0 : nullptr);
          else
            corr_fwd_direct_kernel<MR, NV, false>(wpb, slab.get() + j0, S, g.C, g.K, g.d, nc, yo + j0, g.Lout, rows,
                                                  bb, relu, ro ? ro + j0 : nullptr);
        }
      }
    }
  });
}

// acc[jj][v] = Σ_t x_jj[t] · dyt[t·Op + 16v : +16]; added into out[jj·Op + 16v] for jj < count.
template <int NV, int JT>
inline void corr_wgrad_direct_kernel(const float* dyt, int64_t Op, const float* const* xp, int64_t n, int count,
                                     float* out) {
  __m512 acc[JT][NV];
  for (int jj = 0; jj < JT; ++jj)
    for (int v = 0; v < NV; ++v) acc[jj][v] = _mm512_setzero_ps();
  for (int64_t t = 0; t < n; ++t) {
    __m512 dv[NV];
    for (int v = 0; v < NV; ++v) dv[v] = _mm512_load_ps(dyt + t * Op + 16 * v);
    for (int jj = 0; jj < JT; ++jj) {
      const __m512 xv = _mm512_set1_ps(xp[jj][t]);
      for (int v = 0; v < NV; ++v) acc[jj][v] = _mm512_fmadd_ps(xv, dv[v], acc[jj][v]);
    }
  }
  for (int jj = 0; jj < JT; ++jj) {
    if (jj >= count) break;
    for (int v = 0; v < NV; ++v) {
      float* o = out + jj * Op + 16 * v;
      _mm512_store_ps(o, _mm512_add_ps(_mm512_load_ps(o), acc[jj][v]));
    }
  }
}

// Positions t0 .. t0 + n - 1 of every (c, k) column into part, for the 16·NV channels from oc0.
template <int NV, int JT>
void wgrad_columns(const float* dyt, int64_t Op, int64_t oc0, const float* slab, int64_t S, const CorrGeom& g,
                   int64_t t0, int64_t n, float* part) {
  const int64_t CK = g.C * g.K;
  const float* xp[JT];
  for (int64_t j0 = 0; j0 < CK; j0 += JT) {
    const int count = int(std::min<int64_t>(JT, CK - j0));
    for (int jj = 0; jj < JT; ++jj) {
      const int64_t j = j0 + std::min(jj, count - 1);
      xp[jj] = slab + (j / g.K) * S + (j % g.K) * g.d + t0;
    }
    corr_wgrad_direct_kernel<NV, JT>(dyt + t0 * Op + oc0, Op, xp, n, count, part + j0 * Op + oc0);
  }
}

// r[i] holds row i of a 16 × 16 block; afterwards r[j] holds its column j. The masked forms with an explicit
// source keep GCC 12's headers from warning about their undefined one.
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_mask_unpacklo_ps(r[i], 0xFFFF, r[i], r[i + 1]);
    t[i + 1] = _mm512_mask_unpackhi_ps(r[i], 0xFFFF, r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    u[i] = _mm512_mask_shuffle_ps(t[i], 0xFFFF, t[i], t[i + 2], 0x44);
    u[i + 1] = _mm512_mask_shuffle_ps(t[i], 0xFFFF, t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm512_mask_shuffle_ps(t[i + 1], 0xFFFF, t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm512_mask_shuffle_ps(t[i + 1], 0xFFFF, t[i + 1], t[i + 3], 0xEE);
  }
  const __m512i lo4 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  const __m512i hi4 = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  for (int i = 0; i < 16; i += 8)
    for (int j = 0; j < 4; ++j) {
      t[i + j] = _mm512_permutex2var_ps(u[i + j], lo4, u[i + j + 4]);
      t[i + j + 4] = _mm512_permutex2var_ps(u[i + j], hi4, u[i + j + 4]);
    }
  const __m512i lo8 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i hi8 = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_permutex2var_ps(t[j], lo8, t[j + 8]);
    r[j + 8] = _mm512_permutex2var_ps(t[j], hi8, t[j + 8]);
  }
}

// dyt (Lout, Op) = dyᵀ for dy (O, Lout), 16 × 16 blocks; channels O .. Op - 1 of dyt are written as 0.
void transpose_dy(const float* dy, int64_t O, int64_t Lout, int64_t Op, float* dyt) {
  for (int64_t o0 = 0; o0 < Op; o0 += 16)
    for (int64_t t0 = 0; t0 < Lout; t0 += 16) {
      const int64_t n = std::min<int64_t>(16, Lout - t0);
      const __mmask16 m = lane_mask(n);
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = o0 + i < O ? _mm512_maskz_loadu_ps(m, dy + (o0 + i) * Lout + t0) : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t t = 0; t < n; ++t) _mm512_store_ps(dyt + (t0 + t) * Op + o0, r[t]);
    }
}

// Narrow weight grad (few output channels, e.g. BPNet's 2-strand profile head, K = 75): positions in the
// vector lanes, OR rows × JT taps of accumulators; per 16 positions OR loads of dy, JT of x, OR·JT FMAs.
// dwv[(r·ldw + jj)·16 + lane] += Σ_t dyp[r·ldd + t] · xr[(k0 + jj)·d + t] over t ≡ lane (mod 16), t < 16·nvec
// (dyp is 0 past Lout): the 16 lanes stay apart until the end, so there is no horizontal sum per call.
template <int OR, int JT>
inline void wgrad_narrow_kernel(const float* dyp, int64_t ldd, int rows, const float* xr, int64_t k0, int64_t d,
                                int64_t nvec, int count, float* dwv, int64_t ldw) {
  __m512 acc[OR][JT];
  for (int r = 0; r < OR; ++r)
    for (int jj = 0; jj < JT; ++jj) acc[r][jj] = _mm512_setzero_ps();
  const float* xp[JT];
  for (int jj = 0; jj < JT; ++jj) xp[jj] = xr + (k0 + std::min(jj, count - 1)) * d;
  for (int64_t v = 0; v < nvec; ++v) {
    __m512 dv[OR];
    for (int r = 0; r < OR; ++r) dv[r] = _mm512_load_ps(dyp + std::min(r, rows - 1) * ldd + 16 * v);
    for (int jj = 0; jj < JT; ++jj) {
      const __m512 xv = _mm512_loadu_ps(xp[jj] + 16 * v);
      for (int r = 0; r < OR; ++r) acc[r][jj] = _mm512_fmadd_ps(dv[r], xv, acc[r][jj]);
    }
  }
  for (int r = 0; r < OR && r < rows; ++r)
    for (int jj = 0; jj < count; ++jj) {
      float* o = dwv + (r * ldw + jj) * 16;
      _mm512_store_ps(o, _mm512_add_ps(_mm512_load_ps(o), acc[r][jj]));
    }
}

template <int OR, int JT>
void wgrad_narrow(const float* x, const float* dy, float* dw, const CorrGeom& g, const Context& ctx) {
  const int64_t CK = g.C * g.K, nvec = (g.Lout + 15) / 16, Lp = nvec * 16;
  const int64_t S = Lp + (g.K - 1) * g.d;  // every load of the last vector stays inside the slab row
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(ctx.threads(), g.B));
  const int64_t n = g.G * g.O * CK;
  std::vector<Buf> partial(static_cast<size_t>(parts));  // per part (G, O, C·K, 16 lanes), dw's order
  parallel_for(ctx, parts, 1, [&](int64_t p) {
    partial[size_t(p)] = aligned_floats(n * 16, true);
    Buf slab = aligned_floats(g.C * S, false);    // (C, S)
    Buf dyp = aligned_floats(g.O * Lp, true);     // (O, Lp), padded positions stay 0
    for (int64_t b = g.B * p / parts; b < g.B * (p + 1) / parts; ++b)
      for (int64_t gi = 0; gi < g.G; ++gi) {
        const float* dyg = dy + (b * g.G + gi) * g.O * g.Lout;
        for (int64_t o = 0; o < g.O; ++o) std::memcpy(dyp.get() + o * Lp, dyg + o * g.Lout, sizeof(float) * g.Lout);
        fill_slab(x + (b * g.G + gi) * g.C * g.Lin, g.C, g.Lin, -g.p, S, S, slab.get());
        float* part = partial[size_t(p)].get() + gi * g.O * CK * 16;
        for (int64_t o0 = 0; o0 < g.O; o0 += OR) {
          const int rows = int(std::min<int64_t>(OR, g.O - o0));
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t k0 = 0; k0 < g.K; k0 += JT)
              wgrad_narrow_kernel<OR, JT>(dyp.get() + o0 * Lp, Lp, rows, slab.get() + c * S, k0, g.d, nvec,
                                          int(std::min<int64_t>(JT, g.K - k0)), part + (o0 * CK + c * g.K + k0) * 16,
                                          CK);
        }
      }
  });
  // Lanes, then parts, each in a fixed order: deterministic for a fixed thread count.
  for (int64_t i = 0; i < n; ++i) {
    float sum = 0.0f;
    for (int64_t p = 0; p < parts; ++p) {
      const float* v = partial[size_t(p)].get() + i * 16;
      float lanes = 0.0f;
      for (int lane = 0; lane < 16; ++lane) lanes += v[lane];
      sum += lanes;
    }
    dw[i] = sum;
  }
}

}  // namespace

void conv1d_corr_direct(const float* x, const float* w, const float* bias, float* y, const CorrGeom& g,
                        const Context& ctx, bool relu, const float* res) {
  if (g.O == 1) corr_fwd_direct<1, 12>(x, w, bias, y, g, ctx, relu, res);  // one profile track (S = 1, T = 1)
  else if (g.O <= 2) corr_fwd_direct<2, 12>(x, w, bias, y, g, ctx, relu, res);
  else if (g.O <= 4) corr_fwd_direct<4, 6>(x, w, bias, y, g, ctx, relu, res);
  else corr_fwd_direct<8, 3>(x, w, bias, y, g, ctx, relu, res);
}

void conv1d_corr_wgrad_direct(const float* x, const float* dy, float* dw, const CorrGeom& g, const Context& ctx) {
  if (g.O <= 2) return wgrad_narrow<2, 12>(x, dy, dw, g, ctx);
  if (g.O <= 4) return wgrad_narrow<4, 6>(x, dy, dw, g, ctx);
  const int64_t CK = g.C * g.K, Op = (g.O + 15) / 16 * 16;
  const int64_t S = g.Lout + (g.K - 1) * g.d;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(ctx.threads(), g.B));
  const int64_t tb = std::max<int64_t>(16, 8192 / Op);  // 32 KiB of dyt rows per block
  std::vector<Buf> partial(static_cast<size_t>(parts));  // per part (G, C·K, Op): dwᵀ with padded channels
  parallel_for(ctx, parts, 1, [&](int64_t p) {
    partial[size_t(p)] = aligned_floats(g.G * CK * Op, true);
    Buf slab = aligned_floats(g.C * S, false);  // (C, S)
    Buf dyt = aligned_floats(g.Lout * Op, true);  // (Lout, Op), padded lanes stay 0
    for (int64_t b = g.B * p / parts; b < g.B * (p + 1) / parts; ++b)
      for (int64_t gi = 0; gi < g.G; ++gi) {
        transpose_dy(dy + (b * g.G + gi) * g.O * g.Lout, g.O, g.Lout, Op, dyt.get());
        fill_slab(x + (b * g.G + gi) * g.C * g.Lin, g.C, g.Lin, -g.p, S, S, slab.get());
        float* part = partial[size_t(p)].get() + gi * CK * Op;
        // Blocks of tb positions keep their (tb, Op) rows of dyt in L1 across all C·K columns.
        for (int64_t t0 = 0; t0 < g.Lout; t0 += tb) {
          const int64_t n = std::min(tb, g.Lout - t0);
          for (int64_t oc0 = 0; oc0 < Op; oc0 += 64) {
            switch (std::min<int64_t>(4, (Op - oc0) / 16)) {
              case 4: wgrad_columns<4, 6>(dyt.get(), Op, oc0, slab.get(), S, g, t0, n, part); break;
              case 3: wgrad_columns<3, 8>(dyt.get(), Op, oc0, slab.get(), S, g, t0, n, part); break;
              case 2: wgrad_columns<2, 12>(dyt.get(), Op, oc0, slab.get(), S, g, t0, n, part); break;
              default: wgrad_columns<1, 24>(dyt.get(), Op, oc0, slab.get(), S, g, t0, n, part); break;
            }
          }
        }
      }
  });
  float* acc = partial[0].get();
  for (int64_t p = 1; p < parts; ++p) {  // fixed order: deterministic for a fixed thread count
    const float* src = partial[size_t(p)].get();
    for (int64_t i = 0; i < g.G * CK * Op; ++i) acc[i] += src[i];
  }
  for (int64_t gi = 0; gi < g.G; ++gi)
    for (int64_t o = 0; o < g.O; ++o)
      for (int64_t j = 0; j < CK; ++j) dw[(gi * g.O + o) * CK + j] = acc[(gi * CK + j) * Op + o];
}
#endif

}  // namespace lowpass::cpu
