// conv1d on one-hot DNA: forward as a gather (K weight look-ups per output instead of C·K multiply-adds)
// and the weight grad as a scatter. y[b,o,t] = bias[o] + Σ_k w[o, code(b,t+k·d-p), k];
// dw[o,c,k] = Σ_{t: code(b,t+k·d-p)=c} dy[b,o,t]. Test: build/tests/lowpass_tests -ts=conv1d
#include <algorithm>

#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/parallel.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace lowpass::cpu {

namespace {
template <typename T>
bool codes_of(const T* x, int64_t B, int64_t C, int64_t L, int8_t* codes) {
  bool ok = true;
  for (int64_t b = 0; b < B && ok; ++b) {
    int8_t* cb = codes + b * L;
    std::fill(cb, cb + L, int8_t(-1));
    for (int64_t c = 0; c < C && ok; ++c) {
      const T* xr = x + (b * C + c) * L;
      for (int64_t l = 0; l < L; ++l) {
        const T v = xr[l];
        if (v == T(0)) continue;
        if (v != T(1) || cb[l] >= 0) {
          ok = false;
          break;
        }
        cb[l] = int8_t(c);
      }
    }
  }
  return ok;
}

// Transpose a (R, S) row-major block into (S, ld) rows (columns beyond R untouched).
template <typename T>
void transpose_to(const T* src, int64_t R, int64_t S, T* dst, int64_t ld) {
  constexpr int64_t blk = 16;
  for (int64_t r0 = 0; r0 < R; r0 += blk)
    for (int64_t s0 = 0; s0 < S; s0 += blk)
      for (int64_t r = r0; r < std::min(R, r0 + blk); ++r)
        for (int64_t s = s0; s < std::min(S, s0 + blk); ++s) dst[s * ld + r] = src[r * S + s];
}

template <typename T>
void gather_fwd(const Context& ctx, const int8_t* codes, const T* w, const T* bias, T* y, const CorrGeom& g) {
  const int64_t O = g.O, C = g.C, K = g.K;
  std::vector<T> wp(static_cast<size_t>(K * C * O));  // (K, C, O): O contiguous
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < K; ++k) wp[size_t((k * C + c) * O + o)] = w[(o * C + c) * K + k];
  parallel_chunks(ctx, g.B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> yt(static_cast<size_t>(g.Lout * O));  // (Lout, O)
    for (int64_t b = b0; b < b1; ++b) {
      const int8_t* cb = codes + b * g.Lin;
      for (int64_t t = 0; t < g.Lout; ++t) {
        T* acc = yt.data() + t * O;
        if (bias) std::copy(bias, bias + O, acc);
        else std::fill(acc, acc + O, T(0));
        for (int64_t k = 0; k < K; ++k) {
          const int64_t s = t + k * g.d - g.p;
          if (s < 0 || s >= g.Lin || cb[s] < 0) continue;
          const T* wr = wp.data() + (k * C + cb[s]) * O;
          for (int64_t o = 0; o < O; ++o) acc[o] += wr[o];
        }
      }
      transpose_to(yt.data(), g.Lout, O, y + b * O * g.Lout, g.Lout);
    }
  });
}

#if defined(__AVX512F__)
// float32, C <= 15: each (o, k) is a 16-entry table (lanes c < C hold w[o,c,k], the rest 0) and 16 outputs
// at once are Σ_k permute(code vector at t+k·d, table): K permutes + adds per 16 outputs, written in (O, L).
void gather_fwd_permute(const Context& ctx, const int8_t* codes, const float* w, const float* bias, float* y,
                        const CorrGeom& g) {
  const int64_t O = g.O, C = g.C, K = g.K, span = g.Lout + (K - 1) * g.d;
  std::vector<float> tab_store(static_cast<size_t>(O * K * 16 + 16), 0.0f);
  float* tab = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(tab_store.data()) + 63) / 64 * 64);
  for (int64_t o = 0; o < O; ++o)  // (O, K, 16)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < C; ++c) tab[(o * K + k) * 16 + c] = w[(o * C + c) * K + k];
  constexpr int64_t OB = 4;  // output channels per pass: 4·K tables stay in L1
  parallel_chunks(ctx, g.B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<int32_t> idx(static_cast<size_t>(span + 16));  // idx[j] = code at input j - p, 15 = zero
    for (int64_t b = b0; b < b1; ++b) {
      const int8_t* cb = codes + b * g.Lin;
      for (int64_t j = 0; j < span + 16; ++j) {
        const int64_t s = j - g.p;
        idx[size_t(j)] = (s >= 0 && s < g.Lin && cb[s] >= 0) ? cb[s] : 15;
      }
      for (int64_t o0 = 0; o0 < O; o0 += OB) {
        const int64_t nb = std::min(OB, O - o0);
        for (int64_t t0 = 0; t0 < g.Lout; t0 += 16) {
          const __mmask16 m = g.Lout - t0 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (g.Lout - t0)) - 1u);
          __m512 acc[OB];
          for (int64_t j = 0; j < OB; ++j) acc[j] = _mm512_set1_ps(bias && j < nb ? bias[o0 + j] : 0.0f);
          for (int64_t k = 0; k < K; ++k) {
            const __m512i iv = _mm512_loadu_si512(idx.data() + t0 + k * g.d);
            for (int64_t j = 0; j < OB; ++j)
              acc[j] = _mm512_add_ps(acc[j], _mm512_maskz_permutexvar_ps(__mmask16(0xFFFF), iv, _mm512_load_ps(tab + ((o0 + std::min(j, nb - 1)) * K + k) * 16)));
          }
          for (int64_t j = 0; j < nb; ++j) _mm512_mask_storeu_ps(y + (b * O + o0 + j) * g.Lout + t0, m, acc[j]);
        }
      }
    }
  });
}
#endif

template <typename T>
void scatter_wgrad(const Context& ctx, const int8_t* codes, const T* dy, T* dw, const CorrGeom& g) {
  const int64_t O = g.O, C = g.C, K = g.K;
  const int64_t parts = std::min<int64_t>(ctx.threads(), g.B);
  std::vector<std::vector<T>> acc(static_cast<size_t>(parts));  // per part (K, C, O)
  parallel_for(ctx, parts, 1, [&](int64_t p) {
    auto& a = acc[size_t(p)];
    a.assign(size_t(K * C * O), T(0));
    std::vector<T> dyt(static_cast<size_t>(g.Lout * O));  // (Lout, O)
    for (int64_t b = g.B * p / parts; b < g.B * (p + 1) / parts; ++b) {
      transpose_to(dy + b * O * g.Lout, O, g.Lout, dyt.data(), O);
      const int8_t* cb = codes + b * g.Lin;
      for (int64_t s = 0; s < g.Lin; ++s) {
        const int c = cb[s];
        if (c < 0) continue;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t t = s - k * g.d + g.p;
          if (t < 0 || t >= g.Lout) continue;
          T* ar = a.data() + (k * C + c) * O;
          const T* dr = dyt.data() + t * O;
          for (int64_t o = 0; o < O; ++o) ar[o] += dr[o];
        }
      }
    }
  });
  for (int64_t p = 1; p < parts; ++p)  // fixed order: deterministic for a fixed thread count
    for (size_t i = 0; i < acc[0].size(); ++i) acc[0][i] += acc[size_t(p)][i];
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < K; ++k) dw[(o * C + c) * K + k] = parts > 0 ? acc[0][size_t((k * C + c) * O + o)] : T(0);
}
}  // namespace

bool onehot_codes(const Tensor& x, std::vector<int8_t>& codes) {
  if (x.dim() != 3 || x.size(1) > 127 || !x.is_cpu()) return false;
  codes.resize(size_t(x.size(0) * x.size(2)));
  return dispatch_dtype(x.dtype(), [&]<typename T>() {
    return codes_of<T>(x.data<T>(), x.size(0), x.size(1), x.size(2), codes.data());
  });
}

void conv1d_corr_gather(const std::vector<int8_t>& codes, const Tensor& w, const Tensor& bias, Tensor& y,
                        const CorrGeom& g) {
  LP_ASSERT(g.G == 1 && int64_t(codes.size()) == g.B * g.Lin, "gather conv: geometry");
#if defined(__AVX512F__)
  if (w.dtype() == DType::F32 && g.C <= 15) {
    gather_fwd_permute(w.ctx(), codes.data(), w.data<float>(), bias.defined() ? bias.data<float>() : nullptr,
                       y.data<float>(), g);
    return;
  }
#endif
  dispatch_dtype(w.dtype(), [&]<typename T>() {
    gather_fwd<T>(w.ctx(), codes.data(), w.data<T>(), bias.defined() ? bias.data<T>() : nullptr, y.data<T>(), g);
  });
}

void conv1d_corr_wgrad_scatter(const std::vector<int8_t>& codes, const Tensor& dy, Tensor& dw, const CorrGeom& g) {
  LP_ASSERT(g.G == 1 && int64_t(codes.size()) == g.B * g.Lin, "scatter wgrad: geometry");
  dispatch_dtype(dw.dtype(), [&]<typename T>() {
    scatter_wgrad<T>(dy.ctx(), codes.data(), dy.data<T>(), dw.data<T>(), g);
  });
}

}  // namespace lowpass::cpu
