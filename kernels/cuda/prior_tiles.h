// Tiled smoothing kernels of the fused Fourier-prior chain (kernels/cuda/prior.cu): a block of kPriorTile threads
// owns kPriorTile positions of one row and stages the window it reads (its positions ± r, r = taps / 2) in shared
// memory once, instead of every output re-reading 2r + 1 neighbours × 4 bases from global memory (the forward) and
// every base of a position recomputing the same smoothed gradient (the backward). Same sums in the same order as
// the per-element kernels they replace. The phases are host-device functions, so tests/test_cuda_prior_tiles.cpp
// runs every block on the host against the formula.
// Legend: C bases, L positions, r half-width of the Gaussian taps (n = 2r + 1 <= kPriorMaxTaps).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/cuda/conv_direct.h"  // LP_DIRECT_HD

namespace lowpass::cuda {

constexpr int kPriorTile = 256;     // positions (and threads) per block
constexpr int kPriorMaxTaps = 63;   // smooth_sigma up to 31 (the taps' caller checks)
constexpr int kPriorWindow = kPriorTile + kPriorMaxTaps - 1;  // shared window floats, upper bound

LP_DIRECT_HD inline float prior_abs(float x) { return fabsf(x); }
LP_DIRECT_HD inline double prior_abs(double x) { return fabs(x); }

// Sign codes of the attributions, written by the forward for the backward (C <= kPriorSignMaxC): bit 2c of
// signs[b·L + l] is a[b, c, l] > 0, bit 2c + 1 is a[b, c, l] < 0 (neither for 0 and NaN, whose sign the backward
// takes as 0). The backward then reads one byte per position instead of C values of a (16 bytes for DNA).
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

// Forward load: u[i] = Σ_c |a[b, c, l0 − r + i]| for i < kPriorTile + 2r (0 outside [0, L)), thread tid's share.
// With signs (not null; C <= kPriorSignMaxC), the thread that loads a position of the block's own tile
// (l0 <= l < l0 + kPriorTile, l < L) also writes its sign code.
template <typename T>
LP_DIRECT_HD inline void prior_sum_abs_load(const T* a, T* u, uint8_t* signs, int64_t b, int64_t l0, int64_t C,
                                            int64_t L, int r, int tid) {
  const T* row = a + b * C * L;
  for (int i = tid; i < kPriorTile + 2 * r; i += kPriorTile) {
    const int64_t l = l0 - r + i;
    T v = 0;
    if (l >= 0 && l < L) {
      uint8_t code = 0;
      for (int64_t c = 0; c < C; ++c) {
        const T x = row[c * L + l];
        v += prior_abs(x);
        code |= prior_sign_bits(x, c);
      }
      if (signs && i >= r && i < r + kPriorTile) signs[b * L + l] = code;
    }
    u[i] = v;
  }
}

// Backward load: v[i] = ds[b, l0 − r + i] (0 outside [0, L)).
template <typename T>
LP_DIRECT_HD inline void prior_row_load(const T* ds, T* v, int64_t b, int64_t l0, int64_t L, int r, int tid) {
  for (int i = tid; i < kPriorTile + 2 * r; i += kPriorTile) {
    const int64_t l = l0 - r + i;
    v[i] = (l >= 0 && l < L) ? ds[b * L + l] : T(0);
  }
}

// Σ_j taps[j]·w[tid + j]: the smoothed value at position l0 + tid from a staged window.
template <typename T>
LP_DIRECT_HD inline T prior_smooth_at(const T* w, const T* taps, int n, int tid) {
  T acc = 0;
  for (int j = 0; j < n; ++j) acc += taps[j] * w[tid + j];
  return acc;
}

// Backward store for position l = l0 + tid of row b: da[b, c, l] = sign(a[b, c, l])·du for every base (0 for rows
// the prior does not score: selected = false). The signs come from the forward's codes where it wrote them (signs not
// null), else from a.
template <typename T>
LP_DIRECT_HD inline void prior_dattr_store(const T* a, const uint8_t* signs, T* da, T du, bool selected, int64_t b,
                                           int64_t l, int64_t C, int64_t L) {
  if (!selected) {
    for (int64_t c = 0; c < C; ++c) da[(b * C + c) * L + l] = T(0);
    return;
  }
  if (signs) {
    const uint8_t code = signs[b * L + l];
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

}  // namespace lowpass::cuda
