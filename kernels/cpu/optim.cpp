// Optimiser update kernels (CPU), element-wise and multithreaded over chunks; deterministic.
// Rounding follows PyTorch's CPU kernels (vectorised paths): fused multiply-add where torch uses
// vec::fmadd (add with alpha, lerp, addcmul), separate multiply/divide elsewhere; sqrt is correctly
// rounded (torch's vectorised sqrt may be 1 ulp off, see docs/formats.md). Test: lowpass_tests -ts=optim
#include "kernels/cpu/optim.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#include "kernels/cpu/parallel.h"

namespace lowpass::cpu {
namespace {
constexpr int64_t kGrain = 1 << 15;

template <typename T>
struct AdamK {
  T wd, coeff, b2, one_m_b2, bc2, eps, neg_step;
  bool small;
};

// Correctly rounded sqrt of x[0..n), vectorised with the ISA's sqrt instruction (GCC does not vectorise
// std::sqrt while it may set errno, and Eigen's fast-math float sqrt is an approximation).
template <typename T>
void sqrt_inplace(T* x, int64_t n) {
  int64_t j = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(x + j, _mm512_sqrt_ps(_mm512_loadu_ps(x + j)));
  else
    for (; j + 8 <= n; j += 8) _mm512_storeu_pd(x + j, _mm512_sqrt_pd(_mm512_loadu_pd(x + j)));
#elif defined(__AVX__)
  if constexpr (std::is_same_v<T, float>)
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, _mm256_sqrt_ps(_mm256_loadu_ps(x + j)));
  else
    for (; j + 4 <= n; j += 4) _mm256_storeu_pd(x + j, _mm256_sqrt_pd(_mm256_loadu_pd(x + j)));
#endif
  for (; j < n; ++j) x[j] = std::sqrt(x[j]);
}

// Branch-free body over [b, e) in blocks: a vectorisable pass for m, v (and max v), the sqrt pass,
// then a vectorisable pass for p. Flags are template parameters.
template <typename T, bool Decay, bool Ams, bool Maximize, bool Small>
void adam_range(T* __restrict p, const T* __restrict gr, T* __restrict m, T* __restrict v, T* __restrict mx,
                const AdamK<T>& k, int64_t b, int64_t e) {
  constexpr int64_t kBlock = 512;
  alignas(64) T root[kBlock];
  for (int64_t b0 = b; b0 < e; b0 += kBlock) {
    const int64_t n = std::min(kBlock, e - b0);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t i = b0 + j;
      T g = Maximize ? -gr[i] : gr[i];
      if constexpr (Decay) g = std::fma(p[i], k.wd, g);            // grad.add(param, alpha=wd)
      const T mi = m[i];
      m[i] = std::fma(k.coeff, g - mi, Small ? mi : g);            // exp_avg.lerp_(grad, 1-β1)
      T vi = std::fma(k.one_m_b2 * g, g, v[i] * k.b2);             // exp_avg_sq.mul_(β2).addcmul_(g, g, 1-β2)
      v[i] = vi;
      if constexpr (Ams) {
        const T old = mx[i];
        vi = (vi > old) | (vi != vi) ? vi : old;                   // torch.maximum (NaN propagates)
        mx[i] = vi;
      }
      root[j] = vi;
    }
    sqrt_inplace(root, n);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t i = b0 + j;
      const T denom = root[j] / k.bc2 + k.eps;                    // (√v / √bc2).add_(ε)
      p[i] = p[i] + k.neg_step * m[i] / denom;                     // addcdiv_(m, denom, value=-step)
    }
  }
}

template <typename T, bool Decay, bool Ams, bool Maximize>
void adam_pick_small(T* p, const T* gr, T* m, T* v, T* mx, const AdamK<T>& k, int64_t b, int64_t e) {
  if (k.small) adam_range<T, Decay, Ams, Maximize, true>(p, gr, m, v, mx, k, b, e);
  else adam_range<T, Decay, Ams, Maximize, false>(p, gr, m, v, mx, k, b, e);
}

template <typename T>
void adam_typed(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_sq,
                const AdamScalars& s) {
  T* p = param.data<T>();
  const T* gr = grad.data<T>();
  T* m = exp_avg.data<T>();
  T* v = exp_avg_sq.data<T>();
  T* mx = s.amsgrad ? max_sq.data<T>() : nullptr;
  AdamK<T> k;
  k.wd = static_cast<T>(s.weight_decay);
  const T w = static_cast<T>(1.0 - s.beta1);  // lerp weight, as torch rounds it
  k.small = std::abs(w) < T(0.5);
  k.coeff = k.small ? w : w - T(1);
  k.b2 = static_cast<T>(s.beta2);
  k.one_m_b2 = static_cast<T>(1.0 - s.beta2);
  k.bc2 = static_cast<T>(s.bc2_sqrt);
  k.eps = static_cast<T>(s.eps);
  k.neg_step = static_cast<T>(-s.step_size);
  const bool decay = s.weight_decay != 0;
  parallel_chunks(param.ctx(), param.numel(), kGrain, [&](int64_t b, int64_t e) {
    const int code = (decay ? 4 : 0) | (s.amsgrad ? 2 : 0) | (s.maximize ? 1 : 0);
    switch (code) {
      case 0: adam_pick_small<T, false, false, false>(p, gr, m, v, mx, k, b, e); break;
      case 1: adam_pick_small<T, false, false, true>(p, gr, m, v, mx, k, b, e); break;
      case 2: adam_pick_small<T, false, true, false>(p, gr, m, v, mx, k, b, e); break;
      case 3: adam_pick_small<T, false, true, true>(p, gr, m, v, mx, k, b, e); break;
      case 4: adam_pick_small<T, true, false, false>(p, gr, m, v, mx, k, b, e); break;
      case 5: adam_pick_small<T, true, false, true>(p, gr, m, v, mx, k, b, e); break;
      case 6: adam_pick_small<T, true, true, false>(p, gr, m, v, mx, k, b, e); break;
      default: adam_pick_small<T, true, true, true>(p, gr, m, v, mx, k, b, e); break;
    }
  });
}

template <typename T>
struct SgdK {
  T wd, mom, damp, neg_lr, sign;
};

// One vectorisable loop per flag combination.
template <typename T, bool Decay, bool Momentum, bool First, bool Nesterov>
void sgd_range(T* __restrict p, const T* __restrict gr, T* __restrict buf, const SgdK<T>& k, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    T g = k.sign * gr[i];                          // maximize: exact negation
    if constexpr (Decay) g = std::fma(p[i], k.wd, g);  // grad.add(param, alpha=wd)
    if constexpr (Momentum) {
      T bi;
      if constexpr (First) bi = g;                 // clone of the gradient
      else bi = std::fma(g, k.damp, buf[i] * k.mom);  // buf.mul_(μ).add_(g, alpha=1-dampening)
      buf[i] = bi;
      if constexpr (Nesterov) g = std::fma(bi, k.mom, g);  // g.add(buf, alpha=μ)
      else g = bi;
    }
    p[i] = std::fma(g, k.neg_lr, p[i]);            // param.add_(g, alpha=-lr)
  }
}

template <typename T, bool Decay>
void sgd_pick(T* p, const T* gr, T* buf, const SgdK<T>& k, const SgdScalars& s, int64_t b, int64_t e) {
  if (!buf) sgd_range<T, Decay, false, false, false>(p, gr, buf, k, b, e);
  else if (s.first && s.nesterov) sgd_range<T, Decay, true, true, true>(p, gr, buf, k, b, e);
  else if (s.first) sgd_range<T, Decay, true, true, false>(p, gr, buf, k, b, e);
  else if (s.nesterov) sgd_range<T, Decay, true, false, true>(p, gr, buf, k, b, e);
  else sgd_range<T, Decay, true, false, false>(p, gr, buf, k, b, e);
}

template <typename T>
void sgd_typed(Tensor& param, const Tensor& grad, Tensor& buf_t, const SgdScalars& s) {
  T* p = param.data<T>();
  const T* gr = grad.data<T>();
  T* buf = s.momentum != 0 ? buf_t.data<T>() : nullptr;
  SgdK<T> k{static_cast<T>(s.weight_decay), static_cast<T>(s.momentum), static_cast<T>(1.0 - s.dampening),
            static_cast<T>(-s.lr), s.maximize ? T(-1) : T(1)};
  const bool decay = s.weight_decay != 0;
  parallel_chunks(param.ctx(), param.numel(), kGrain, [&](int64_t b, int64_t e) {
    if (decay) sgd_pick<T, true>(p, gr, buf, k, s, b, e);
    else sgd_pick<T, false>(p, gr, buf, k, s, b, e);
  });
}
}  // namespace

void adam_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                 const AdamScalars& s_in) {
  AdamScalars s = s_in;
  if (s.live) {
    if (!(s.live[2] == 0.0)) return;
    s.step_size = s.live[0], s.bc2_sqrt = s.live[1];
  }
  dispatch_dtype(param.dtype(), [&]<typename T>() {
    adam_typed<T>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, s);
    return 0;
  });
}

void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdScalars& s_in) {
  SgdScalars s = s_in;
  if (s.live) {
    if (!(s.live[2] == 0.0)) return;
    s.lr = s.live[0], s.first = s.live[1] != 0.0;
  }
  dispatch_dtype(param.dtype(), [&]<typename T>() {
    sgd_typed<T>(param, grad, momentum_buf, s);
    return 0;
  });
}

void copy_many(const std::vector<Tensor>& src, const std::vector<Tensor>& dst) {
  LP_ASSERT(src.size() == dst.size(), "copy_many: ", src.size(), " sources, ", dst.size(), " destinations");
  if (src.empty()) return;
  // Few, small tensors (a model's parameters): threads pay only when the total is large.
  int64_t total = 0;
  for (const Tensor& t : src) total += t.numel();
  auto one = [&](int64_t i) {
    const Tensor &a = src[static_cast<size_t>(i)], &b = dst[static_cast<size_t>(i)];
    LP_ASSERT(a.numel() == b.numel() && a.dtype() == b.dtype(), "copy_many: ", a.describe(), " into ", b.describe());
    std::memcpy(b.raw(), a.raw(), static_cast<size_t>(a.numel()) * dtype_size(a.dtype()));
  };
  const int64_t n = static_cast<int64_t>(src.size());
  if (total < (int64_t{1} << 20)) {
    for (int64_t i = 0; i < n; ++i) one(i);
  } else {
    parallel_for(src.front().ctx(), n, 1, one);
  }
}

}  // namespace lowpass::cpu
