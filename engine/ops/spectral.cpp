// Spectral ops for the Fourier prior: Gaussian smoothing along L (linear, self-adjoint), the one-sided
// real DFT X_k = Σ_n x_n e^{-2πikn/L} split into Re/Im with their adjoints, and |X_k| (zero-safe).
// Test: build/tests/lowpass_tests -ts=spectral
#include "kernels/cpu/spectral.h"

#include <cmath>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"

namespace lowpass {

namespace {
using Grads = std::vector<Tensor>;

int64_t last_len(const Tensor& x, const char* op) {
  LP_CHECK(x.defined() && x.dim() >= 1, op, ": needs a tensor with at least one axis, got ",
           x.defined() ? x.describe() : std::string("undefined"));
  LP_CHECK(x.size(-1) >= 1, op, ": empty last axis in ", x.describe());
  return x.size(-1);
}

Shape with_last(const Tensor& x, int64_t n) {
  Shape s = x.shape();
  s.back() = n;
  return s;
}

// One FFT, two recorded outputs (Re with the real adjoint as backward, Im with the imaginary one).
std::pair<Tensor, Tensor> rfft_pair(const Tensor& x) {
  const int64_t L = last_len(x, "rfft");
  Tensor re = empty_like(x, with_last(x, L / 2 + 1)), im = empty_like(x, with_last(x, L / 2 + 1));
  LP_ON_DEVICE(x, cpu::rfft(x, re, im), cuda::rfft(x, re, im));
  re = record("rfft_real", re, {x}, [L](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{rfft_real_adjoint(g, L)};
  });
  im = record("rfft_imag", im, {x}, [L](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{rfft_imag_adjoint(g, L)};
  });
  return {re, im};
}

Tensor adjoint(const Tensor& g, int64_t L, bool imag) {
  const char* op = imag ? "rfft_imag_adjoint" : "rfft_real_adjoint";
  LP_CHECK(L >= 1, op, ": length ", L, " must be >= 1");
  LP_CHECK(last_len(g, op) == L / 2 + 1, op, ": last axis of ", g.describe(), " must be L/2+1 = ", L / 2 + 1,
           " for L = ", L);
  Tensor out = empty_like(g, with_last(g, L));
  const Tensor none;
  if (imag) LP_ON_DEVICE(g, cpu::rfft_adjoint(none, g, out, L), cuda::rfft_adjoint(none, g, out, L));
  else LP_ON_DEVICE(g, cpu::rfft_adjoint(g, none, out, L), cuda::rfft_adjoint(g, none, out, L));
  return out;
}

// sqrt(re² + im²) with gradient (re, im)/|X| and 0 where |X| = 0.
Tensor complex_abs(const Tensor& re, const Tensor& im) {
  Tensor out = empty_like(re);
  LP_ON_DEVICE(re, cpu::complex_abs(re, im, out), cuda::complex_abs(re, im, out));
  return record("complex_abs", out, {re, im}, [re, im](const Tensor& g, const Tensor& out, const std::vector<bool>& n) {
    // safe = |X| where |X| > 0, else 1 (constant); there re = im = 0, so the gradient is 0.
    Tensor safe = add(out, eq_scalar(out.detach(), 0.0));
    Tensor gs = div(g, safe);
    return Grads{n[0] ? mul(gs, re) : Tensor(), n[1] ? mul(gs, im) : Tensor()};
  }, /*uses_output=*/true);
}
}  // namespace

// scipy.ndimage.gaussian_filter1d weights with truncate = 1: radius r = int(σ + 0.5), taps
// exp(-x²/(2σ²)) for x = -r..r, normalised to sum 1. σ = 0 gives the identity {1}.
std::vector<double> gaussian_kernel(double sigma) {
  LP_CHECK(std::isfinite(sigma) && sigma >= 0, "gaussian_kernel: sigma ", sigma, " must be finite and >= 0");
  if (sigma == 0) return {1.0};
  const int64_t r = static_cast<int64_t>(sigma + 0.5);
  std::vector<double> w(2 * r + 1);
  double s = 0;
  for (int64_t i = -r; i <= r; ++i) s += w[i + r] = std::exp(-0.5 * static_cast<double>(i * i) / (sigma * sigma));
  for (double& v : w) v /= s;
  return w;
}

Tensor smooth_gaussian(const Tensor& x, double sigma) {
  last_len(x, "smooth_gaussian");
  std::vector<double> taps = gaussian_kernel(sigma);
  if (taps.size() == 1) return x;
  Tensor out = empty_like(x);
  LP_ON_DEVICE(x, cpu::correlate_last(x, out, taps), cuda::correlate_last(x, out, taps));
  // Zero-padded correlation: its adjoint is the correlation with the flipped taps, zero-padded the
  // same way; the taps are symmetric, so the op is self-adjoint (exactly, edges included).
  return record("smooth_gaussian", out, {x}, [sigma](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{smooth_gaussian(g, sigma)};
  });
}

Tensor rfft_real(const Tensor& x) {
  const int64_t L = last_len(x, "rfft_real");
  Tensor re = empty_like(x, with_last(x, L / 2 + 1)), im = empty_like(x, with_last(x, L / 2 + 1));
  LP_ON_DEVICE(x, cpu::rfft(x, re, im), cuda::rfft(x, re, im));
  return record("rfft_real", re, {x}, [L](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{rfft_real_adjoint(g, L)};
  });
}

Tensor rfft_imag(const Tensor& x) {
  const int64_t L = last_len(x, "rfft_imag");
  Tensor re = empty_like(x, with_last(x, L / 2 + 1)), im = empty_like(x, with_last(x, L / 2 + 1));
  LP_ON_DEVICE(x, cpu::rfft(x, re, im), cuda::rfft(x, re, im));
  return record("rfft_imag", im, {x}, [L](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{rfft_imag_adjoint(g, L)};
  });
}

Tensor rfft_real_adjoint(const Tensor& g, int64_t L) {
  Tensor out = adjoint(g, L, false);
  return record("rfft_real_adjoint", out, {g}, [](const Tensor& gg, const Tensor&, const std::vector<bool>&) {
    return Grads{rfft_real(gg)};
  });
}

Tensor rfft_imag_adjoint(const Tensor& g, int64_t L) {
  Tensor out = adjoint(g, L, true);
  return record("rfft_imag_adjoint", out, {g}, [](const Tensor& gg, const Tensor&, const std::vector<bool>&) {
    return Grads{rfft_imag(gg)};
  });
}

Tensor rfft_magnitude(const Tensor& x) {
  if (!needs_record({&x})) {
    auto [re, im] = rfft_pair(x);
    return complex_abs(re, im);
  }
  // One recorded op. First-order backward (no create_graph): a single adjoint FFT of
  // (g·re/|X|, g·im/|X|) with the saved spectrum. With create_graph: the same rule composed from
  // recorded ops (spectrum recomputed from x) so that it differentiates again.
  const int64_t L = last_len(x, "rfft_magnitude");
  Tensor re, im, out;
  {
    NoGradGuard ng;
    auto p = rfft_pair(x);
    re = p.first;
    im = p.second;
    out = complex_abs(re, im);
  }
  return record("rfft_magnitude", out, {x}, [x, re, im, L](const Tensor& g, const Tensor& out, const std::vector<bool>&) {
    Tensor safe = add(out, eq_scalar(out.detach(), 0.0));  // |X| or 1 where |X| = 0 (there re = im = 0)
    Tensor gs = div(g, safe);
    if (!grad_enabled()) {
      Tensor gre = mul(gs, re), gim = mul(gs, im);
      Tensor dx = empty_like(x);
      LP_ON_DEVICE(x, cpu::rfft_adjoint(gre, gim, dx, L), cuda::rfft_adjoint(gre, gim, dx, L));
      return Grads{dx};
    }
    auto [re2, im2] = rfft_pair(x);
    return Grads{add(rfft_real_adjoint(mul(gs, re2), L), rfft_imag_adjoint(mul(gs, im2), L))};
  }, /*uses_output=*/true);
}

}  // namespace lowpass
