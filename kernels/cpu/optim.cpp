// Optimiser update kernels (CPU), element-wise and multithreaded over chunks; deterministic.
// Rounding follows PyTorch's CPU kernels (vectorised paths): fused multiply-add where torch uses
// vec::fmadd (add with alpha, lerp, addcmul), separate multiply/divide elsewhere; sqrt is correctly
// rounded (torch's vectorised sqrt may be 1 ulp off, see docs/formats.md). Test: lowpass_tests -ts=optim
#include "kernels/cpu/optim.h"

#include <cmath>

#include "kernels/cpu/parallel.h"

namespace lowpass::cpu {
namespace {
constexpr int64_t kGrain = 1 << 15;

template <typename T>
void adam_typed(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_sq,
                const AdamScalars& s) {
  T* p = param.data<T>();
  const T* gr = grad.data<T>();
  T* m = exp_avg.data<T>();
  T* v = exp_avg_sq.data<T>();
  T* mx = s.amsgrad ? max_sq.data<T>() : nullptr;
  const T wd = static_cast<T>(s.weight_decay);
  const T w = static_cast<T>(1.0 - s.beta1);  // lerp weight
  const bool small = std::abs(w) < T(0.5);
  const T b2 = static_cast<T>(s.beta2);
  const T one_m_b2 = static_cast<T>(1.0 - s.beta2);
  const T bc2 = static_cast<T>(s.bc2_sqrt);
  const T eps = static_cast<T>(s.eps);
  const T neg_step = static_cast<T>(-s.step_size);
  const bool decay = s.weight_decay != 0, maximize = s.maximize;
  parallel_chunks(param.ctx(), param.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T g = maximize ? -gr[i] : gr[i];
      if (decay) g = std::fma(p[i], wd, g);                        // grad.add(param, alpha=wd)
      T d = g - m[i];
      m[i] = small ? std::fma(w, d, m[i]) : std::fma(w - T(1), d, g);  // exp_avg.lerp_(grad, 1-β1)
      T vi = v[i] * b2;                                            // exp_avg_sq.mul_(β2)
      vi = std::fma(one_m_b2 * g, g, vi);                          // .addcmul_(g, g, value=1-β2)
      v[i] = vi;
      if (mx) {
        if (vi > mx[i] || vi != vi) mx[i] = vi;                    // torch.maximum (NaN propagates)
        vi = mx[i];
      }
      T denom = std::sqrt(vi) / bc2 + eps;                         // (√v / √bc2).add_(ε)
      p[i] = p[i] + neg_step * m[i] / denom;                       // addcdiv_(m, denom, value=-step)
    }
  });
}

template <typename T>
void sgd_typed(Tensor& param, const Tensor& grad, Tensor& buf_t, const SgdScalars& s) {
  T* p = param.data<T>();
  const T* gr = grad.data<T>();
  T* buf = s.momentum != 0 ? buf_t.data<T>() : nullptr;
  const T wd = static_cast<T>(s.weight_decay);
  const T mom = static_cast<T>(s.momentum);
  const T damp = static_cast<T>(1.0 - s.dampening);
  const T neg_lr = static_cast<T>(-s.lr);
  const bool decay = s.weight_decay != 0;
  parallel_chunks(param.ctx(), param.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T g = s.maximize ? -gr[i] : gr[i];
      if (decay) g = std::fma(p[i], wd, g);  // grad.add(param, alpha=wd)
      if (buf) {
        if (s.first) buf[i] = g;                               // clone of the gradient
        else buf[i] = std::fma(g, damp, buf[i] * mom);         // buf.mul_(μ).add_(g, alpha=1-dampening)
        g = s.nesterov ? std::fma(buf[i], mom, g) : buf[i];    // g.add(buf, alpha=μ) or buf
      }
      p[i] = std::fma(g, neg_lr, p[i]);  // param.add_(g, alpha=-lr)
    }
  });
}
}  // namespace

void adam_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                 const AdamScalars& s) {
  dispatch_dtype(param.dtype(), [&]<typename T>() {
    adam_typed<T>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, s);
    return 0;
  });
}

void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdScalars& s) {
  dispatch_dtype(param.dtype(), [&]<typename T>() {
    sgd_typed<T>(param, grad, momentum_buf, s);
    return 0;
  });
}

}  // namespace lowpass::cpu
