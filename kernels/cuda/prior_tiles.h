// Block phases of the fused Fourier-prior chain's kernels (kernels/cuda/prior.cu), as host-device functions so
// tests/test_cuda_prior_tiles.cpp runs every block on the host against the formulas.
// - Smoothing (forward and backward): a block of kPriorThreads threads owns kPriorSpan positions of one row,
//   kPriorPer per thread (thread tid's k-th position is l0 + tid + k·kPriorThreads, so every load and store is
//   coalesced), and stages the window it reads (its positions ± r) in shared memory once. Each thread issues all of
//   its global loads before it uses any (up to kPriorLoads window entries × the bases, and its sign codes), so a
//   warp keeps several loads in flight instead of waiting on each in turn.
// - Spectrum (forward score, backward dX): per-row constants read once, then a batch of bins per thread loaded
//   before any is used.
// - Rows: the spectrum side (smoothed signal, sign codes, cuFFT, spectra, dX) holds only the rows the prior scores,
//   compacted (row p of the scored list at p) and padded with zero rows to prior_fft_rows(P, B), so that a batch
//   whose prior scores half of it transforms half of it; the attributions and their gradient keep the batch's rows.
// The sums keep the CPU's order (bases first, then taps; bins in ascending order per thread).
// Legend: B batch rows, P scored rows, Rp compact rows (P plus padding), C bases, L positions, F = L/2 + 1 bins, r
// half-width of the Gaussian taps (n = 2r + 1 <= kPriorMaxTaps).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/error.h"
#include "kernels/cuda/conv_direct.h"  // LP_DIRECT_HD

namespace lowpass::cuda {

constexpr int kPriorThreads = 256;                        // threads per smoothing block
constexpr int kPriorMinBlocks = 8;  // smoothing blocks resident per SM by default (prior.cu, prior_min_blocks)
constexpr int kPriorPer = 4;                              // positions per thread
constexpr int kPriorSpan = kPriorThreads * kPriorPer;     // positions per block
constexpr int kPriorMaxTaps = 63;                         // smooth_sigma up to 31 (the taps' caller checks)
constexpr int kPriorWindow = kPriorSpan + kPriorMaxTaps - 1;  // shared window entries, upper bound
constexpr int kPriorLoads = kPriorPer + 1;  // window entries per thread: ⌈(kPriorSpan + 2r) / kPriorThreads⌉
static_assert(kPriorMaxTaps - 1 <= kPriorThreads, "the halo of a window fits one extra load per thread");
constexpr int kPriorSpecThreads = 256;  // threads per dX block
constexpr int kPriorSpecPer = 2;        // bins per thread of the dX kernel
constexpr int kPriorScoreThreads = 128; // threads per score block (one row), 256 for rows of more bins
constexpr int kPriorScoreBatch = 4;     // bins per thread loaded at once by the score kernel

// Threads of a score block for rows of F bins: 128 while one round of kPriorScoreBatch bins per thread covers the
// row (L up to 1023: the binary model's 1000), else 256 (BPNet's 1346 in one round), so the kernel keeps the row's
// bins in registers between its sums and its unit gradient.
LP_DIRECT_HD inline int prior_score_threads(int64_t F) {
  return F <= int64_t{kPriorScoreBatch} * kPriorScoreThreads ? kPriorScoreThreads : 2 * kPriorScoreThreads;
}

// Rows of the compact spectrum side for P scored rows of a batch of B: P rounded up to a multiple of ⌈B/8⌉ (at most
// B), so the cuFFT plans of a batch size number at most 8 per direction however many rows each batch scores (a plan
// holds its own work area), and the zero rows past P are fewer than ⌈B/8⌉.
LP_DIRECT_HD inline int64_t prior_fft_rows(int64_t P, int64_t B) {
  const int64_t g = (B + 7) / 8;
  const int64_t r = g > 0 ? (P + g - 1) / g * g : P;
  return r < B ? r : B;
}

// The index list of a launch, B + Rp 32-bit entries (half the bytes of an upload that precedes the chain's first
// kernel): pos (B: each batch row's compact row, −1 for rows not scored), then rows padded to Rp (each compact row's
// batch row, −1 for the padding).
inline std::vector<int32_t> prior_index(int64_t B, const std::vector<int64_t>& rows) {
  const int64_t P = static_cast<int64_t>(rows.size()), Rp = prior_fft_rows(P, B);
  LP_CHECK(B + Rp <= INT32_MAX, "CUDA Fourier prior: a batch of ", B, " rows is beyond 32-bit row indices");
  std::vector<int32_t> idx(static_cast<size_t>(B + Rp), -1);
  for (int64_t p = 0; p < P; ++p) {
    idx[static_cast<size_t>(rows[static_cast<size_t>(p)])] = static_cast<int32_t>(p);
    idx[static_cast<size_t>(B + p)] = static_cast<int32_t>(rows[static_cast<size_t>(p)]);
  }
  return idx;
}

LP_DIRECT_HD inline float prior_abs(float x) { return ::fabsf(x); }
LP_DIRECT_HD inline double prior_abs(double x) { return ::fabs(x); }
LP_DIRECT_HD inline float prior_sqrt(float x) { return ::sqrtf(x); }
LP_DIRECT_HD inline double prior_sqrt(double x) { return ::sqrt(x); }

// Sign codes of the attributions, written by the forward for the backward (C <= kPriorSignMaxC): bit 2c of
// signs[p·L + l] is a[b, c, l] > 0, bit 2c + 1 is a[b, c, l] < 0, b being the p-th scored row (neither bit for 0
// and NaN, whose sign the backward takes as 0). The backward then reads one byte per position instead of C values
// of a (16 bytes for DNA).
constexpr int64_t kPriorSignMaxC = 4;
template <typename T>
LP_DIRECT_HD inline uint8_t prior_sign_bits(T v, int64_t c) {
  return static_cast<uint8_t>((v > T(0) ? 1u : v < T(0) ? 2u : 0u) << (2 * c));
}
// sign(a[b, c, l]) as the code stores it: +1, −1 or 0.
LP_DIRECT_HD inline int prior_sign_of(uint8_t code, int64_t c) {
  const unsigned bits = (code >> (2 * c)) & 3u;
  return bits == 1u ? 1 : bits == 2u ? -1 : 0;
}

// Forward load, thread tid's share: u[i] = Σ_c |a[b, c, l0 − r + i]| (0 outside [0, L)) for its window entries
// i = tid + k·kPriorThreads < kPriorSpan + 2r. With signs (not null; C <= kPriorSignMaxC), the entries of the
// block's own positions (r <= i < r + kPriorSpan, l < L) also get their sign codes, at compact row p
// (signs[p·L + l]). kC > 0: C == kC known at compile time, every load of the thread issued before the sums (DNA:
// 4 bases × kPriorLoads entries); kC == 0: any C.
template <int kC, typename T>
LP_DIRECT_HD inline void prior_sum_abs_load(const T* a, T* u, uint8_t* signs, int64_t b, int64_t p, int64_t l0,
                                            int64_t C, int64_t L, int r, int tid) {
  const T* row = a + b * C * L;
  const int n = kPriorSpan + 2 * r;
  if constexpr (kC > 0) {
    T x[kPriorLoads][kC];
    LP_DIRECT_UNROLL
    for (int k = 0; k < kPriorLoads; ++k) {
      const int i = tid + k * kPriorThreads;
      const int64_t l = l0 - r + i;
      const bool in = i < n && l >= 0 && l < L;
      LP_DIRECT_UNROLL
      for (int c = 0; c < kC; ++c) x[k][c] = in ? row[c * L + l] : T(0);
    }
    LP_DIRECT_UNROLL
    for (int k = 0; k < kPriorLoads; ++k) {
      const int i = tid + k * kPriorThreads;
      if (i >= n) continue;
      const int64_t l = l0 - r + i;
      T v = 0;
      uint8_t code = 0;
      LP_DIRECT_UNROLL
      for (int c = 0; c < kC; ++c) {
        v += prior_abs(x[k][c]);
        code |= prior_sign_bits(x[k][c], c);
      }
      u[i] = v;
      if (signs && i >= r && i < r + kPriorSpan && l < L) signs[p * L + l] = code;
    }
  } else {
    for (int i = tid; i < n; i += kPriorThreads) {
      const int64_t l = l0 - r + i;
      T v = 0;
      if (l >= 0 && l < L) {
        uint8_t code = 0;
        for (int64_t c = 0; c < C; ++c) {
          const T x = row[c * L + l];
          v += prior_abs(x);
          code |= prior_sign_bits(x, c);
        }
        if (signs && i >= r && i < r + kPriorSpan) signs[p * L + l] = code;
      }
      u[i] = v;
    }
  }
}

// Backward load, thread tid's share: v[i] = ds[p, l0 − r + i] (0 outside [0, L); p: the compact row), all loads
// before the stores.
template <typename T>
LP_DIRECT_HD inline void prior_row_load(const T* ds, T* v, int64_t p, int64_t l0, int64_t L, int r, int tid) {
  const int n = kPriorSpan + 2 * r;
  const T* row = ds + p * L;
  T x[kPriorLoads];
  LP_DIRECT_UNROLL
  for (int k = 0; k < kPriorLoads; ++k) {
    const int i = tid + k * kPriorThreads;
    const int64_t l = l0 - r + i;
    x[k] = i < n && l >= 0 && l < L ? row[l] : T(0);
  }
  LP_DIRECT_UNROLL
  for (int k = 0; k < kPriorPer; ++k) v[tid + k * kPriorThreads] = x[k];  // i < kPriorSpan <= n
  if (tid + kPriorPer * kPriorThreads < n) v[tid + kPriorPer * kPriorThreads] = x[kPriorPer];
}

// The sign codes of thread tid's positions l0 + tid + k·kPriorThreads (0 past L) at compact row p, read by the
// backward before its barrier so that their latency overlaps the window's.
LP_DIRECT_HD inline void prior_codes_load(const uint8_t* signs, uint8_t* code, int64_t p, int64_t l0, int64_t L,
                                          int tid) {
  LP_DIRECT_UNROLL
  for (int k = 0; k < kPriorPer; ++k) {
    const int64_t l = l0 + tid + k * kPriorThreads;
    code[k] = l < L ? signs[p * L + l] : uint8_t(0);
  }
}

// Σ_j taps[j]·w[i + j]: the smoothed value at window offset i (position l0 + i) from a staged window.
template <typename T>
LP_DIRECT_HD inline T prior_smooth_at(const T* w, const T* taps, int n, int i) {
  T acc = 0;
  for (int j = 0; j < n; ++j) acc += taps[j] * w[i + j];
  return acc;
}

// Backward store for position l of row b: da[b, c, l] = sign(a[b, c, l])·du for every base (0 for rows the prior
// does not score: selected = false). The signs from the forward's code (has_code) or from a.
template <typename T>
LP_DIRECT_HD inline void prior_dattr_store(const T* a, bool has_code, uint8_t code, T* da, T du, bool selected,
                                           int64_t b, int64_t l, int64_t C, int64_t L) {
  if (!selected) {
    for (int64_t c = 0; c < C; ++c) da[(b * C + c) * L + l] = T(0);
    return;
  }
  if (has_code) {
    for (int64_t c = 0; c < C; ++c) {
      const int sg = prior_sign_of(code, c);
      da[(b * C + c) * L + l] = sg > 0 ? du : sg < 0 ? -du : T(0);
    }
    return;
  }
  for (int64_t c = 0; c < C; ++c) {
    const int64_t e = (b * C + c) * L + l;
    const T av = a[e];
    da[e] = av > T(0) ? du : av < T(0) ? -du : T(0);
  }
}

// Bin f of a row's spectrum z (any type with .x and .y) and its weight, or zeros past F: the spectrum kernels load
// a batch of these, whole bins, before they use any.
template <typename T, typename Z>
LP_DIRECT_HD inline void prior_bin_load(const Z* z, const T* wf, int64_t f, int64_t F, Z& x, T& w) {
  if (f < F) {
    x = z[f];
    w = wf[f];
  } else {
    x.x = x.y = w = T(0);
  }
}

// One round of a score-block thread (nt threads): the kPriorScoreBatch bins f0 + k·nt of a row (z: its F bins, any
// type with .x and .y) and their weights, all loaded before any is used (zeros past F).
template <typename T, typename Z>
LP_DIRECT_HD inline void prior_score_round_load(const Z* z, const T* wf, int64_t f0, int nt, int64_t F, Z* x, T* w) {
  LP_DIRECT_UNROLL
  for (int k = 0; k < kPriorScoreBatch; ++k) prior_bin_load(z, wf, f0 + static_cast<int64_t>(k) * nt, F, x[k], w[k]);
}

// A round's sums, bins in ascending order: d += |X_f|, n += w_f·|X_f|.
template <typename T, typename Z>
LP_DIRECT_HD inline void prior_score_round_sum(const Z* x, const T* w, int64_t f0, int nt, int64_t F, T& d, T& n) {
  LP_DIRECT_UNROLL
  for (int k = 0; k < kPriorScoreBatch; ++k) {
    if (f0 + static_cast<int64_t>(k) * nt >= F) break;
    const T m = prior_sqrt(x[k].x * x[k].x + x[k].y * x[k].y);
    d += m;
    n += w[k] * m;
  }
}

// Score of one row, thread tid's share (nt threads): d = Σ|X_f|, n = Σ w_f·|X_f| over f = tid + k·nt in ascending
// order, a round of kPriorScoreBatch bins' loads issued before their sums.
template <typename T, typename Z>
LP_DIRECT_HD inline void prior_score_partial(const Z* z, const T* wf, int64_t F, int tid, int nt, T& d, T& n) {
  d = 0, n = 0;
  for (int64_t f0 = tid; f0 < F; f0 += static_cast<int64_t>(kPriorScoreBatch) * nt) {
    Z x[kPriorScoreBatch];
    T w[kPriorScoreBatch];
    prior_score_round_load(z, wf, f0, nt, F, x, w);
    prior_score_round_sum(x, w, f0, nt, F, d, n);
  }
}

// dX of one bin of a scored row: dm = −g·(w − N/D)/D (nd = N/D, computed once per row), dX = dm·X/|X| (0 at
// X = 0), packed for C2R as the rfft adjoint needs: middle bins halved, the imaginary parts of DC and (L even)
// Nyquist dropped (edge). Not w/D − N/D²: in float32, D² overflows for D > 1.8e19 (N/D² becomes 0: a wrong
// gradient) and turns denormal below D ≈ 1e-19 (0 below 4e-23: inf or NaN) where the gradient is finite. The CPU
// twin (kernels/cpu/prior.cpp) has the same operations.
template <typename T>
LP_DIRECT_HD inline void prior_dspec_at(T x, T y, T w, T g, T D, T nd, bool edge, T& gx, T& gy) {
  const T m = prior_sqrt(x * x + y * y);
  const T dm = -g * ((w - nd) / D);
  const T k = m > T(0) ? dm / m : T(0);
  const T h = edge ? T(1) : T(0.5);
  gx = k * x * h;
  gy = edge ? T(0) : k * y * h;
}

// A round's unit spectrum gradient: u_f = prior_dspec_at(X_f) for g = 1, with the row's D and nd = N/D (L even:
// even), for the round's bins below F.
template <typename T, typename Z>
LP_DIRECT_HD inline void prior_unit_round(const Z* x, const T* w, int64_t f0, int nt, int64_t F, T D, T nd, bool even,
                                          Z* u) {
  LP_DIRECT_UNROLL
  for (int k = 0; k < kPriorScoreBatch; ++k) {
    const int64_t f = f0 + static_cast<int64_t>(k) * nt;
    if (f >= F) break;
    Z o;
    prior_dspec_at(x[k].x, x[k].y, w[k], T(1), D, nd, f == 0 || (even && f == F - 1), o.x, o.y);
    u[f] = o;
  }
}

// The score kernel's second pass, thread tid's share (nt threads) of a row's bins f = tid + k·nt: u_f =
// prior_dspec_at(X_f) for g = 1 with the row's N and D (scored, rounds as prior_score_partial's) or 0 without
// reading z (a padding row).
template <typename T, typename Z>
LP_DIRECT_HD inline void prior_unit_dspec(const Z* z, const T* wf, Z* u, int64_t F, int tid, int nt, T N, T D,
                                          bool even, bool scored) {
  if (!scored) {
    Z zero;
    zero.x = zero.y = T(0);
    for (int64_t f = tid; f < F; f += nt) u[f] = zero;  // whole bins, as the scored rows' stores
    return;
  }
  const T nd = N / D;
  for (int64_t f0 = tid; f0 < F; f0 += static_cast<int64_t>(kPriorScoreBatch) * nt) {
    Z x[kPriorScoreBatch];
    T w[kPriorScoreBatch];
    prior_score_round_load(z, wf, f0, nt, F, x, w);
    prior_unit_round(x, w, f0, nt, F, D, nd, even, u);
  }
}

}  // namespace lowpass::cuda
