// CPU spectral kernels: zero-padded correlation along rows, and the one-sided real DFT / its adjoint
// computed with complex FFTs of two real rows at once (z = x1 + i·x2). Test: tests/test_spectral.cpp.
// FFT: Eigen's kissfft for 7-smooth lengths, Bluestein's chirp-z (5-smooth FFT) otherwise (e.g. 1346 = 2·673).
#include "kernels/cpu/spectral.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-variable"  // Eigen 3.4's AVX bfloat16 packet code
#include <unsupported/Eigen/FFT>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>
#include <complex>

#include "kernels/cpu/parallel.h"

namespace lowpass::cpu {

namespace {
using cd = std::complex<double>;

bool smooth7(int64_t n) {
  for (int64_t p : {2, 3, 5, 7})
    while (n % p == 0) n /= p;
  return n == 1;
}

bool smooth5(int64_t n) {
  for (int64_t p : {2, 3, 5})
    while (n % p == 0) n /= p;
  return n == 1;
}

// Read-only data for a length-L forward DFT, shared by all threads.
struct DftShared {
  int64_t L = 0, M = 0;     // M: Bluestein FFT length, >= 2L - 1 (0 = direct kissfft)
  std::vector<cd> chirp;    // (L) w_n = e^{-iπn²/L}
  std::vector<cd> bhat;     // (M) FFT of conj(w) laid out circularly
  explicit DftShared(int64_t len) : L(len) {
    if (L <= 1 || smooth7(L)) return;
    M = 2 * L - 1;  // smallest 5-smooth length >= 2L - 1 (kissfft's fast radices)
    while (!smooth5(M)) ++M;
    chirp.resize(L);
    for (int64_t n = 0; n < L; ++n) {
      int64_t q = (n * n) % (2 * L);  // exact: keeps the angle accurate for large n
      double th = M_PI * static_cast<double>(q) / static_cast<double>(L);
      chirp[n] = cd(std::cos(th), -std::sin(th));
    }
    std::vector<cd> b(M, cd(0, 0));
    for (int64_t n = 0; n < L; ++n) {
      b[n] = std::conj(chirp[n]);
      if (n) b[M - n] = std::conj(chirp[n]);
    }
    bhat.resize(M);
    Eigen::FFT<double> fft;
    fft.fwd(bhat.data(), b.data(), static_cast<int>(M));
  }
};

// Per-thread FFT state (kissfft caches plans inside the object, so one per thread).
struct DftWorker {
  const DftShared& sh;
  Eigen::FFT<double> fft;
  std::vector<cd> a, c;
  explicit DftWorker(const DftShared& s) : sh(s) {
    if (sh.M) {
      a.resize(sh.M);
      c.resize(sh.M);
    }
  }
  // out = DFT(in), both of length L (in and out may not alias).
  void forward(const cd* in, cd* out) {
    const int64_t L = sh.L;
    if (L == 1) {
      out[0] = in[0];
      return;
    }
    if (!sh.M) {
      fft.fwd(out, in, static_cast<int>(L));
      return;
    }
    const int64_t M = sh.M;
    for (int64_t n = 0; n < L; ++n) a[n] = in[n] * sh.chirp[n];
    std::fill(a.begin() + L, a.end(), cd(0, 0));
    fft.fwd(c.data(), a.data(), static_cast<int>(M));
    for (int64_t k = 0; k < M; ++k) c[k] = std::conj(c[k] * sh.bhat[k]);  // inverse via conj(FFT(conj))
    fft.fwd(a.data(), c.data(), static_cast<int>(M));
    const double inv = 1.0 / static_cast<double>(M);
    for (int64_t k = 0; k < L; ++k) out[k] = sh.chirp[k] * std::conj(a[k]) * inv;
  }
};

template <typename T>
void rfft_t(const Tensor& x, Tensor& re, Tensor& im) {
  const int64_t L = x.size(-1), F = L / 2 + 1, R = L ? x.numel() / L : 0;
  const T* px = x.data<T>();
  T* pr = re.data<T>();
  T* pi = im.data<T>();
  const DftShared sh(L);
  const int64_t pairs = (R + 1) / 2;
  parallel_chunks(x.ctx(), pairs, std::max<int64_t>(1, 2048 / std::max<int64_t>(L, 1)), [&](int64_t b, int64_t e) {
    DftWorker w(sh);
    std::vector<cd> z(L), Z(L);
    for (int64_t p = b; p < e; ++p) {
      const int64_t r1 = 2 * p, r2 = 2 * p + 1;
      const bool two = r2 < R;
      const T* x1 = px + r1 * L;
      const T* x2 = two ? px + r2 * L : nullptr;
      bool zero1 = true, zero2 = true;  // an all-zero row gets exact zeros, not its partner's round-off
      for (int64_t n = 0; n < L; ++n) {
        z[n] = cd(x1[n], two ? static_cast<double>(x2[n]) : 0.0);
        zero1 = zero1 && x1[n] == T(0);
        zero2 = zero2 && (!two || x2[n] == T(0));
      }
      w.forward(z.data(), Z.data());
      for (int64_t k = 0; k < F; ++k) {
        cd zk = Z[k], zc = std::conj(Z[(L - k) % L]);
        cd X1 = zero1 ? cd(0) : 0.5 * (zk + zc), X2 = zero2 ? cd(0) : cd(0, -0.5) * (zk - zc);
        pr[r1 * F + k] = static_cast<T>(X1.real());
        pi[r1 * F + k] = static_cast<T>(X1.imag());
        if (two) {
          pr[r2 * F + k] = static_cast<T>(X2.real());
          pi[r2 * F + k] = static_cast<T>(X2.imag());
        }
      }
    }
  });
}

template <typename T>
void rfft_adjoint_t(const Tensor& gre, const Tensor& gim, Tensor& out, int64_t L) {
  const int64_t F = L / 2 + 1, R = L ? out.numel() / L : 0;
  const T* pr = gre.defined() ? gre.data<T>() : nullptr;
  const T* pi = gim.defined() ? gim.data<T>() : nullptr;
  T* po = out.data<T>();
  const DftShared sh(L);
  const int64_t pairs = (R + 1) / 2;
  // out_n = Re Σ_{k<=L/2} Y_k e^{+2πikn/L}, Y = gre + i·gim. With the Hermitian part H_k =
  // (Y_k + conj(Y_{-k}))/2 the sum is the real inverse DFT of H; two rows go in as H1 + i·H2, and
  // the unnormalised inverse DFT is conj(DFT(conj(.))).
  parallel_chunks(out.ctx(), pairs, std::max<int64_t>(1, 2048 / std::max<int64_t>(L, 1)), [&](int64_t b, int64_t e) {
    DftWorker w(sh);
    std::vector<cd> y1(L), y2(L), s(L), S(L);
    for (int64_t p = b; p < e; ++p) {
      const int64_t r1 = 2 * p, r2 = 2 * p + 1;
      const bool two = r2 < R;
      std::fill(y1.begin(), y1.end(), cd(0, 0));
      std::fill(y2.begin(), y2.end(), cd(0, 0));
      for (int64_t k = 0; k < F; ++k) {
        y1[k] = cd(pr ? pr[r1 * F + k] : 0.0, pi ? pi[r1 * F + k] : 0.0);
        if (two) y2[k] = cd(pr ? pr[r2 * F + k] : 0.0, pi ? pi[r2 * F + k] : 0.0);
      }
      for (int64_t k = 0; k < L; ++k) {
        int64_t nk = (L - k) % L;
        cd h1 = 0.5 * (y1[k] + std::conj(y1[nk])), h2 = 0.5 * (y2[k] + std::conj(y2[nk]));
        s[k] = std::conj(h1 + cd(0, 1) * h2);
      }
      w.forward(s.data(), S.data());
      for (int64_t n = 0; n < L; ++n) {
        cd v = std::conj(S[n]);
        po[r1 * L + n] = static_cast<T>(v.real());
        if (two) po[r2 * L + n] = static_cast<T>(v.imag());
      }
    }
  });
}

template <typename T>
void correlate_t(const Tensor& x, Tensor& out, const std::vector<double>& taps) {
  const int64_t L = x.size(-1), R = L ? x.numel() / L : 0;
  const int64_t K = static_cast<int64_t>(taps.size());
  const T* px = x.data<T>();
  T* po = out.data<T>();
  std::vector<T> tp(taps.begin(), taps.end());
  parallel_for(x.ctx(), R, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, L * K)),
               [&](int64_t row) { correlate_row(px + row * L, po + row * L, L, tp); });
}

template <typename T>
void abs_t(const Tensor& re, const Tensor& im, Tensor& out) {
  const T* pr = re.data<T>();
  const T* pi = im.data<T>();
  T* po = out.data<T>();
  const int64_t n = re.numel();
  parallel_chunks(re.ctx(), n, 1 << 15, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) po[i] = std::sqrt(pr[i] * pr[i] + pi[i] * pi[i]);
  });
}
}  // namespace

void correlate_last(const Tensor& x, Tensor& out, const std::vector<double>& taps) {
  dispatch_dtype(x.dtype(), [&]<typename T>() { correlate_t<T>(x, out, taps); });
}
void rfft(const Tensor& x, Tensor& re, Tensor& im) {
  dispatch_dtype(x.dtype(), [&]<typename T>() { rfft_t<T>(x, re, im); });
}
void rfft_adjoint(const Tensor& gre, const Tensor& gim, Tensor& out, int64_t L) {
  dispatch_dtype(out.dtype(), [&]<typename T>() { rfft_adjoint_t<T>(gre, gim, out, L); });
}
void complex_abs(const Tensor& re, const Tensor& im, Tensor& out) {
  dispatch_dtype(re.dtype(), [&]<typename T>() { abs_t<T>(re, im, out); });
}

}  // namespace lowpass::cpu
