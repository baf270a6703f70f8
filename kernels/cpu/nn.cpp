// CPU kernels for batch norm (shifted one-pass statistics in double, affine map, fused backward),
// max-pool (argmax routing) and (log-)softmax along any axis. Test: tests/test_nn.cpp.
// Threads split channels (statistics) or (b, c) rows (element-wise passes).
#include "kernels/cpu/nn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/bn2_coef.h"
#include "kernels/cpu/deeplift_rule.h"
#include "kernels/cpu/parallel.h"

namespace lowpass::cpu {

namespace {

struct BCL {
  int64_t B, C, L;
};
BCL bcl(const Tensor& x) { return {x.size(0), x.size(1), x.dim() == 3 ? x.size(2) : 1}; }

template <typename T>
void stats_t(const Tensor& x, Tensor& mean, Tensor& var) {
  const BCL bcl_ = bcl(x);  // named, not a structured binding: clang 14 cannot capture those in OpenMP regions
  [[maybe_unused]] const int64_t B = bcl_.B, C = bcl_.C, L = bcl_.L;
  const T* px = x.data<T>();
  T* pm = mean.data<T>();
  T* pv = var.data<T>();
  double n = static_cast<double>(B * L);
  parallel_for(x.ctx(), C, 1, [&](int64_t c) {
    // Shift by the channel's first value so the one-pass variance does not cancel.
    const double k = px[c * L];
    double s1 = 0, s2 = 0;
    for (int64_t b = 0; b < B; ++b) {
      const T* row = px + (b * C + c) * L;
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t l = 0; l < L; ++l) {
        double d = static_cast<double>(row[l]) - k;
        s1 += d;
        s2 += d * d;
      }
    }
    double m = s1 / n;
    pm[c] = static_cast<T>(k + m);
    pv[c] = static_cast<T>(std::max(0.0, s2 / n - m * m));
  });
}

template <typename T>
void affine_t(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& y) {
  const BCL bcl_ = bcl(x);  // named, not a structured binding: clang 14 cannot capture those in OpenMP regions
  [[maybe_unused]] const int64_t B = bcl_.B, C = bcl_.C, L = bcl_.L;
  const T* px = x.data<T>();
  const T* ps = scale.data<T>();
  const T* pt = shift.data<T>();
  T* py = y.data<T>();
  if (L == 1) {
    parallel_for(x.ctx(), B, std::max<int64_t>(1, 4096 / C), [&](int64_t b) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) py[b * C + c] = px[b * C + c] * ps[c] + pt[c];
    });
    return;
  }
  parallel_for(x.ctx(), B * C, std::max<int64_t>(1, 4096 / L), [&](int64_t r) {
    const T s = ps[r % C], t = pt[r % C];
    const T* src = px + r * L;
    T* dst = py + r * L;
#pragma omp simd
    for (int64_t l = 0; l < L; ++l) dst[l] = src[l] * s + t;
  });
}

template <typename T>
void affine2_t(const Tensor& g, const Tensor& h, const Tensor& a, const Tensor& bc, const Tensor& cc, Tensor& y) {
  const BCL bcl_ = bcl(g);  // named, not a structured binding: clang 14 cannot capture those in OpenMP regions
  [[maybe_unused]] const int64_t B = bcl_.B, C = bcl_.C, L = bcl_.L;
  const T* pg = g.data<T>();
  const T* ph = h.data<T>();
  const T* pa = a.data<T>();
  const T* pb = bc.data<T>();
  const T* pc = cc.data<T>();
  T* py = y.data<T>();
  parallel_for(g.ctx(), B * C, std::max<int64_t>(1, 4096 / L), [&](int64_t r) {
    const int64_t c = r % C;
    const T A = pa[c], Bc = pb[c], Cc = pc[c];
    const T* gr = pg + r * L;
    const T* hr = ph + r * L;
    T* d = py + r * L;
#pragma omp simd
    for (int64_t l = 0; l < L; ++l) d[l] = gr[l] * A + hr[l] * Bc + Cc;
  });
}

template <typename T>
void bn_bwd_t(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& gamma,
              Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const BCL bcl_ = bcl(x);  // named, not a structured binding: clang 14 cannot capture those in OpenMP regions
  [[maybe_unused]] const int64_t B = bcl_.B, C = bcl_.C, L = bcl_.L;
  const T* pg = g.data<T>();
  const T* px = x.data<T>();
  const T* pm = mean.data<T>();
  const T* pi = invstd.data<T>();
  const T* pgam = gamma.defined() ? gamma.data<T>() : nullptr;
  double n = static_cast<double>(B * L);
  std::vector<double> sg(C), sgx(C);
  parallel_for(x.ctx(), C, 1, [&](int64_t c) {
    const double m = pm[c];
    double a = 0, b2 = 0;
    for (int64_t b = 0; b < B; ++b) {
      const T* gr = pg + (b * C + c) * L;
      const T* xr = px + (b * C + c) * L;
#pragma omp simd reduction(+ : a, b2)
      for (int64_t l = 0; l < L; ++l) {
        a += static_cast<double>(gr[l]);
        b2 += static_cast<double>(gr[l]) * (static_cast<double>(xr[l]) - m);
      }
    }
    sg[c] = a;
    sgx[c] = b2;
  });
  // dx = A·g + Bc·x + Cc per channel.
  std::vector<T> ka(C), kb(C), kc(C);
  for (int64_t c = 0; c < C; ++c) {
    double is = pi[c], gm = pgam ? pgam[c] : 1.0;
    double A = gm * is, Bc = -A * is * is * sgx[c] / n;
    ka[c] = static_cast<T>(A);
    kb[c] = static_cast<T>(Bc);
    kc[c] = static_cast<T>(-A * sg[c] / n - Bc * pm[c]);
    if (dgamma.defined()) dgamma.data<T>()[c] = static_cast<T>(sgx[c] * is);
    if (dbeta.defined()) dbeta.data<T>()[c] = static_cast<T>(sg[c]);
  }
  if (!dx.defined()) return;
  T* pdx = dx.data<T>();
  parallel_for(x.ctx(), B * C, std::max<int64_t>(1, 4096 / L), [&](int64_t r) {
    int64_t c = r % C;
    const T A = ka[c], Bc = kb[c], Cc = kc[c];
    const T* gr = pg + r * L;
    const T* xr = px + r * L;
    T* d = pdx + r * L;
#pragma omp simd
    for (int64_t l = 0; l < L; ++l) d[l] = A * gr[l] + Bc * xr[l] + Cc;
  });
}

template <typename T>
void bn_bwd2_t(const Tensor& u, const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd,
               const Tensor& gamma, Tensor& dg, Tensor& dx, Tensor& dgamma) {
  const BCL bcl_ = bcl(x);  // named, not a structured binding: clang 14 cannot capture those in OpenMP regions
  [[maybe_unused]] const int64_t B = bcl_.B, C = bcl_.C, L = bcl_.L;
  const T* pu = u.data<T>();
  const T* pg = g.data<T>();
  const T* px = x.data<T>();
  const T* pm = mean.data<T>();
  const T* pi = invstd.data<T>();
  const T* pgam = gamma.defined() ? gamma.data<T>() : nullptr;
  const double n = static_cast<double>(B * L);
  std::vector<Bn2Coef> co(static_cast<size_t>(C));
  parallel_for(x.ctx(), C, 1, [&](int64_t c) {
    const double m = pm[c];
    double su = 0, sg = 0, sux = 0, sgx = 0, sug = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t o = (b * C + c) * L;
      const T *ur = pu + o, *gr = pg + o, *xr = px + o;
#pragma omp simd reduction(+ : su, sg, sux, sgx, sug)
      for (int64_t l = 0; l < L; ++l) {
        const double uv = static_cast<double>(ur[l]), gv = static_cast<double>(gr[l]);
        const double xc = static_cast<double>(xr[l]) - m;
        su += uv;
        sg += gv;
        sux += uv * xc;
        sgx += gv * xc;
        sug += uv * gv;
      }
    }
    co[static_cast<size_t>(c)] = bn2_coef(su, sg, sux, sgx, sug, n, pi[c], pgam ? pgam[c] : 1.0);
  });
  if (dgamma.defined())
    for (int64_t c = 0; c < C; ++c) dgamma.data<T>()[c] = static_cast<T>(co[static_cast<size_t>(c)].dgamma);
  T* pdg = dg.defined() ? dg.data<T>() : nullptr;
  T* pdx = dx.defined() ? dx.data<T>() : nullptr;
  if (!pdg && !pdx) return;
  parallel_for(x.ctx(), B * C, std::max<int64_t>(1, 4096 / L), [&](int64_t r) {
    const int64_t c = r % C;
    const Bn2Coef& k = co[static_cast<size_t>(c)];
    const T m = pm[c];
    const T *ur = pu + r * L, *gr = pg + r * L, *xr = px + r * L;
    if (pdg) {
      const T a1 = static_cast<T>(k.a1), b1 = static_cast<T>(k.b1), c1 = static_cast<T>(k.c1);
      T* d = pdg + r * L;
#pragma omp simd
      for (int64_t l = 0; l < L; ++l) d[l] = a1 * ur[l] + b1 * (xr[l] - m) + c1;
    }
    if (pdx) {
      const T a2 = static_cast<T>(k.a2), g2 = static_cast<T>(k.g2), b2 = static_cast<T>(k.b2),
              c2 = static_cast<T>(k.c2);
      T* d = pdx + r * L;
#pragma omp simd
      for (int64_t l = 0; l < L; ++l) d[l] = a2 * ur[l] + g2 * gr[l] + b2 * (xr[l] - m) + c2;
    }
  });
}

template <typename T>
void pool_fwd_t(const Tensor& x, Tensor& out, int32_t* idx, int64_t k, int64_t stride) {
  int64_t rows = x.size(0) * x.size(1), L = x.size(2), Lo = out.size(2);
  const T* px = x.data<T>();
  T* po = out.data<T>();
  parallel_for(x.ctx(), rows, std::max<int64_t>(1, 4096 / (Lo * k)), [&](int64_t r) {
    const T* row = px + r * L;
    for (int64_t j = 0; j < Lo; ++j) {
      int64_t s = j * stride, best = s;
      T m = row[s];
      for (int64_t t = s + 1; t < s + k; ++t)
        if (m == m && !(row[t] <= m)) {  // larger, or the first NaN: a NaN in the window stays (as in PyTorch)
          m = row[t];
          best = t;
        }
      po[r * Lo + j] = m;
      idx[r * Lo + j] = static_cast<int32_t>(best);
    }
  });
}

template <typename T>
void pool_scatter_t(const Tensor& g, Tensor& out, const int32_t* idx) {
  int64_t rows = g.size(0) * g.size(1), Lo = g.size(2), L = out.size(2);
  const T* pg = g.data<T>();
  T* po = out.data<T>();
  parallel_for(g.ctx(), rows, std::max<int64_t>(1, 4096 / L), [&](int64_t r) {
    T* dst = po + r * L;
    std::fill(dst, dst + L, T(0));
    for (int64_t j = 0; j < Lo; ++j) dst[idx[r * Lo + j]] += pg[r * Lo + j];
  });
}

template <typename T>
void pool_gather_t(const Tensor& h, Tensor& out, const int32_t* idx) {
  int64_t rows = h.size(0) * h.size(1), L = h.size(2), Lo = out.size(2);
  const T* ph = h.data<T>();
  T* po = out.data<T>();
  parallel_for(h.ctx(), rows, std::max<int64_t>(1, 4096 / L), [&](int64_t r) {
    for (int64_t j = 0; j < Lo; ++j) po[r * Lo + j] = ph[r * L + idx[r * Lo + j]];
  });
}

template <typename T, bool LOG>
void softmax_t(const Tensor& x, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  const T* px = x.data<T>();
  T* po = out.data<T>();
  parallel_for(x.ctx(), outer * inner, std::max<int64_t>(1, 2048 / std::max<int64_t>(n, 1)), [&](int64_t r) {
    int64_t o = r / inner, i = r % inner;
    const T* src = px + o * n * inner + i;
    T* dst = po + o * n * inner + i;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < n; ++j) m = std::max(m, src[j * inner]);
    if (!std::isfinite(m)) m = 0;  // all -inf (or inf/NaN): let the arithmetic propagate
    double s = 0;
    for (int64_t j = 0; j < n; ++j) s += std::exp(static_cast<double>(src[j * inner] - m));
    if constexpr (LOG) {
      T lse = static_cast<T>(std::log(s));
      for (int64_t j = 0; j < n; ++j) dst[j * inner] = src[j * inner] - m - lse;
    } else {
      double inv = 1.0 / s;
      for (int64_t j = 0; j < n; ++j) dst[j * inner] = static_cast<T>(std::exp(static_cast<double>(src[j * inner] - m)) * inv);
    }
  });
}

}  // namespace

void channel_stats(const Tensor& x, Tensor& mean, Tensor& var) {
  dispatch_dtype(x.dtype(), [&]<typename T>() { stats_t<T>(x, mean, var); });
}
void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& y) {
  dispatch_dtype(x.dtype(), [&]<typename T>() { affine_t<T>(x, scale, shift, y); });
}
void channel_affine2(const Tensor& g, const Tensor& h, const Tensor& a, const Tensor& bc, const Tensor& cc, Tensor& y) {
  dispatch_dtype(g.dtype(), [&]<typename T>() { affine2_t<T>(g, h, a, bc, cc, y); });
}
void batch_norm_bwd(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& gamma,
                    Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  dispatch_dtype(x.dtype(), [&]<typename T>() { bn_bwd_t<T>(g, x, mean, invstd, gamma, dx, dgamma, dbeta); });
}
void batch_norm_bwd2(const Tensor& u, const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                     const Tensor& gamma, Tensor& dg, Tensor& dx, Tensor& dgamma) {
  dispatch_dtype(x.dtype(), [&]<typename T>() { bn_bwd2_t<T>(u, g, x, mean, invstd, gamma, dg, dx, dgamma); });
}
void max_pool1d_fwd(const Tensor& x, Tensor& out, int32_t* idx, int64_t kernel, int64_t stride) {
  dispatch_dtype(x.dtype(), [&]<typename T>() { pool_fwd_t<T>(x, out, idx, kernel, stride); });
}
void max_pool1d_scatter(const Tensor& g, Tensor& out, const int32_t* idx) {
  dispatch_dtype(g.dtype(), [&]<typename T>() { pool_scatter_t<T>(g, out, idx); });
}
void max_pool1d_gather(const Tensor& h, Tensor& out, const int32_t* idx) {
  dispatch_dtype(h.dtype(), [&]<typename T>() { pool_gather_t<T>(h, out, idx); });
}
void log_softmax(const Tensor& x, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  dispatch_dtype(x.dtype(), [&]<typename T>() { softmax_t<T, true>(x, out, outer, n, inner); });
}
void softmax(const Tensor& x, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  dispatch_dtype(x.dtype(), [&]<typename T>() { softmax_t<T, false>(x, out, outer, n, inner); });
}

void deeplift_rescale(const Tensor& in, const Tensor& num, const Tensor& out, const Tensor& regular, double eps,
                      Tensor& res) {
  const int64_t n = in.numel() / 2;
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    const T *pi = in.data<T>(), *pn = num.data<T>(), *pr = regular.data<T>();
    const T* po = out.defined() ? out.data<T>() : nullptr;
    T* pd = res.data<T>();
    const int64_t nn = po ? n : 0;  // the second half's numerator: ReLU its own g, max-pool the same U
    parallel_for(in.ctx(), n, 4096, [&](int64_t i) {
      double rx, rr;
      deeplift_rescale_pair(double(pi[i]), double(pi[i + n]), double(pn[i]), double(pn[i + nn]), po != nullptr,
                            po ? double(po[i]) : 0.0, po ? double(po[i + n]) : 0.0, double(pr[i]), double(pr[i + n]),
                            eps, rx, rr);
      pd[i] = T(rx), pd[i + n] = T(rr);
    });
  });
}

void deeplift_rescale_owned(const Tensor& in, const Tensor& g, const Tensor& out, const std::vector<int64_t>& owner,
                            double eps, Tensor& res) {
  const int64_t P = static_cast<int64_t>(owner.size()), U = in.size(0) - P, row = in.numel() / in.size(0);
  LP_ASSERT(U >= 1 && P >= 1 && g.numel() == in.numel() && out.numel() == in.numel() && res.numel() == in.numel(),
            "deeplift_rescale_owned: ", in.describe(), " with ", P, " references");
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    const T *pi = in.data<T>(), *pg = g.data<T>(), *po = out.data<T>();
    T* pd = res.data<T>();
    std::fill(pd, pd + U * row, T(0));
    parallel_for(in.ctx(), P, 1, [&](int64_t j) {
      LP_ASSERT(owner[size_t(j)] >= 0 && owner[size_t(j)] < U, "deeplift_rescale_owned: owner out of range");
      const int64_t xo = owner[size_t(j)] * row, ro = (U + j) * row;
      for (int64_t e = 0; e < row; ++e) {
        const T reg = !(pi[xo + e] <= T(0)) ? pg[ro + e] : T(0);  // relu_mask(g, in_x)
        double rx, rr;
        deeplift_rescale_pair(double(pi[xo + e]), double(pi[ro + e]), double(pg[ro + e]), 0.0, true,
                              double(po[xo + e]), double(po[ro + e]), double(reg), 0.0, eps, rx, rr);
        pd[ro + e] = T(rx);
      }
    });
  });
}

void deeplift_pool_seed(const Tensor& out, const Tensor& g, Tensor& G) {
  const int64_t n = out.numel() / 2;
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    const T *po = out.data<T>(), *pg = g.data<T>();
    T* pG = G.data<T>();
    parallel_for(out.ctx(), n, 4096, [&](int64_t i) {
      double gx, gr;
      deeplift_pool_pair(double(po[i]), double(po[i + n]), double(pg[i]), double(pg[i + n]), gx, gr);
      pG[i] = T(gx), pG[i + n] = T(gr);
    });
  });
}

}  // namespace lowpass::cpu
