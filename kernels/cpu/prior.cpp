// CPU twin of the fused Fourier-prior chain (kernels/cpu/prior.h): row-parallel |·|-sum and smoothing, the
// real FFT of kernels/cpu/spectral.cpp, then per-row sums; backward through the same FFT adjoint.
// Test: build/tests/lowpass_tests -ts=spectral.
#include "kernels/cpu/prior.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/spectral.h"

namespace lowpass::cpu {

namespace {
template <typename T>
T sgn(T v) {
  return static_cast<T>((v > T(0)) - (v < T(0)));
}

}  // namespace

void fourier_prior_fwd(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& wf,
                       const std::vector<double>& taps, Tensor& out, PriorSaved& saved) {
  const int64_t C = attr.size(1), L = attr.size(2), P = static_cast<int64_t>(rows.size()), F = L / 2 + 1;
  Tensor s = Tensor::empty(attr.ctx(), {P, L}, attr.dtype());
  dispatch_dtype(attr.dtype(), [&]<typename T>() {
    const T* a = attr.data<T>();
    T* ps = s.data<T>();
    const std::vector<T> tt(taps.begin(), taps.end());
    parallel_for(attr.ctx(), P, 4, [&](int64_t p) {
      std::vector<T> u(static_cast<size_t>(L), T(0));
      const T* ar = a + rows[static_cast<size_t>(p)] * C * L;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t l = 0; l < L; ++l) u[static_cast<size_t>(l)] += std::abs(ar[c * L + l]);
      correlate_row(u.data(), ps + p * L, L, tt);  // the Gaussian smoothing
    });
  });
  saved.re = Tensor::empty(attr.ctx(), {P, F}, attr.dtype());
  saved.im = Tensor::empty(attr.ctx(), {P, F}, attr.dtype());
  saved.nd = Tensor::empty(attr.ctx(), {P, 2}, attr.dtype());
  rfft(s, saved.re, saved.im);
  dispatch_dtype(attr.dtype(), [&]<typename T>() {
    const T *re = saved.re.data<T>(), *im = saved.im.data<T>();
    T *o = out.data<T>(), *nd = saved.nd.data<T>();
    parallel_for(attr.ctx(), P, 16, [&](int64_t p) {
      T D = 0, N = 0;
      for (int64_t f = 0; f < F; ++f) {
        const T m = std::sqrt(re[p * F + f] * re[p * F + f] + im[p * F + f] * im[p * F + f]);
        D += m;
        N += static_cast<T>(wf[static_cast<size_t>(f)]) * m;
      }
      if (D == T(0)) D = T(1);
      o[p] = T(1) - N / D;
      nd[2 * p] = N, nd[2 * p + 1] = D;
    });
  });
}

void fourier_prior_bwd(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& wf,
                       const std::vector<double>& taps, const Tensor& g, const PriorSaved& saved, Tensor& dattr) {
  const int64_t B = attr.size(0), C = attr.size(1), L = attr.size(2), P = static_cast<int64_t>(rows.size());
  const int64_t F = L / 2 + 1;
  Tensor dre = Tensor::empty(attr.ctx(), {P, F}, attr.dtype()), dim = Tensor::empty(attr.ctx(), {P, F}, attr.dtype());
  Tensor ds = Tensor::empty(attr.ctx(), {P, L}, attr.dtype());
  dispatch_dtype(attr.dtype(), [&]<typename T>() {
    const T *re = saved.re.data<T>(), *im = saved.im.data<T>(), *nd = saved.nd.data<T>(), *pg = g.data<T>();
    T *gr = dre.data<T>(), *gi = dim.data<T>();
    parallel_for(attr.ctx(), P, 16, [&](int64_t p) {
      const T N = nd[2 * p], D = nd[2 * p + 1], gp = pg[p];
      for (int64_t f = 0; f < F; ++f) {
        const T x = re[p * F + f], y = im[p * F + f], m = std::sqrt(x * x + y * y);
        // (w − N/D)/D, not w/D − N/D²: D² overflows float32 for D > 1.8e19 and turns denormal below 1e-19 where
        // the gradient is finite; the CUDA twin (prior_dspec_at, kernels/cuda/prior_tiles.h) has the same operations
        const T dm = -gp * ((static_cast<T>(wf[static_cast<size_t>(f)]) - N / D) / D);
        const T k = m > T(0) ? dm / m : T(0);  // ∂|X|/∂X = X/|X|, 0 at X = 0 (as the composed ops)
        gr[p * F + f] = k * x, gi[p * F + f] = k * y;
      }
    });
  });
  rfft_adjoint(dre, dim, ds, L);
  dispatch_dtype(attr.dtype(), [&]<typename T>() {
    const T* a = attr.data<T>();
    const T* pds = ds.data<T>();
    T* da = dattr.data<T>();
    std::vector<int64_t> pos(static_cast<size_t>(B), -1);
    for (int64_t p = 0; p < P; ++p) pos[static_cast<size_t>(rows[static_cast<size_t>(p)])] = p;
    const std::vector<T> tt(taps.begin(), taps.end());
    parallel_for(attr.ctx(), B, 4, [&](int64_t b) {
      T* dr = da + b * C * L;
      const int64_t p = pos[static_cast<size_t>(b)];
      if (p < 0) {
        for (int64_t i = 0; i < C * L; ++i) dr[i] = 0;
        return;
      }
      std::vector<T> du(static_cast<size_t>(L));
      correlate_row(pds + p * L, du.data(), L, tt);  // the symmetric taps make the smoothing its own adjoint
      const T* ar = a + b * C * L;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t l = 0; l < L; ++l) dr[c * L + l] = sgn(ar[c * L + l]) * du[static_cast<size_t>(l)];
    });
  });
}

}  // namespace lowpass::cpu
