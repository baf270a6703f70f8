// Finite-difference checks used by every op test (float64):
//  check_grad:     analytic d<f(x), v>/dx (random v) vs central differences.
//  check_gradgrad: analytic d/dx <grad_x <f(x), v>, u> (Hessian-vector product of a random scalar
//                  function of the gradient, via create_graph) vs central differences of the gradient.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "engine/ops.h"

namespace lowpass::test {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

inline double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-12);
}

// <f(x), v> as a double, no graph.
inline double project(const Fn& f, const std::vector<Tensor>& xs, const Tensor& v) {
  NoGradGuard ng;
  Tensor y = f(xs);
  auto yv = y.to_vector<double>();
  auto vv = v.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < yv.size(); ++i) s += yv[i] * vv[i];
  return s;
}

// Fresh leaves requiring grad with the same values.
inline std::vector<Tensor> leaves(const std::vector<Tensor>& xs) {
  std::vector<Tensor> r;
  for (const auto& x : xs) {
    Tensor c = x.detach().clone();
    c.set_requires_grad(true);
    r.push_back(c);
  }
  return r;
}

inline Tensor random_like(Context& ctx, const Tensor& t) {
  return Tensor::uniform(ctx, t.shape(), -1.0, 1.0, t.dtype());
}

// d value() / dx_i by central differences, each element of x (float64, in place) moved by ±eps in turn.
template <typename V>
std::vector<double> central_differences(Tensor& x, double eps, V&& value) {
  std::vector<double> num(static_cast<size_t>(x.numel()));
  double* p = x.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double old = p[i];
    p[i] = old + eps;
    const double fp = value();
    p[i] = old - eps;
    const double fm = value();
    p[i] = old;
    num[static_cast<size_t>(i)] = (fp - fm) / (2 * eps);
  }
  return num;
}

// Returns the worst relative error over inputs.
inline double check_grad(Context& ctx, const Fn& f, const std::vector<Tensor>& xs_in, double eps = 1e-6,
                         double tol = 1e-6) {
  auto xs = leaves(xs_in);
  Tensor y = f(xs);
  Tensor v = random_like(ctx, y);
  auto g = grad({y}, xs, {v}, false, false);
  double worst = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    const std::vector<double> num = central_differences(xs[k], eps, [&] { return project(f, xs, v); });
    double e = rel_err(g[k].to_vector<double>(), num);
    INFO("input ", k, " shape ", shape_str(xs[k].shape()), " rel err ", e);
    CHECK(e < tol);
    worst = std::max(worst, e);
  }
  return worst;
}

inline double check_gradgrad(Context& ctx, const Fn& f, const std::vector<Tensor>& xs_in, double eps = 1e-6,
                             double tol = 1e-5) {
  auto xs = leaves(xs_in);
  Tensor y0;
  {
    NoGradGuard ng;
    y0 = f(xs);
  }
  Tensor v = random_like(ctx, y0);
  std::vector<Tensor> us;
  for (auto& x : xs) us.push_back(random_like(ctx, x));
  // h(x) = Σ_k <grad_k(x), u_k>
  auto h_value = [&](const std::vector<Tensor>& x) {
    auto xl = leaves(x);
    Tensor y = f(xl);
    auto g = grad({y}, xl, {v}, false, false);
    double s = 0;
    for (size_t k = 0; k < g.size(); ++k) {
      auto gv = g[k].to_vector<double>();
      auto uv = us[k].to_vector<double>();
      for (size_t i = 0; i < gv.size(); ++i) s += gv[i] * uv[i];
    }
    return s;
  };
  Tensor y = f(xs);
  auto g = grad({y}, xs, {v}, true, false);
  Tensor h;
  for (size_t k = 0; k < g.size(); ++k) {
    Tensor t = sum_all(mul(g[k], us[k]));
    h = h.defined() ? add(h, t) : t;
  }
  std::vector<Tensor> hg;
  if (h.requires_grad()) hg = grad({h}, xs, {}, false, true);
  else hg.resize(xs.size());
  double worst = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    const std::vector<double> num = central_differences(xs[k], eps, [&] { return h_value(xs); });
    std::vector<double> ana = hg[k].defined() ? hg[k].to_vector<double>() : std::vector<double>(num.size(), 0.0);
    double nn = 0;
    for (double d : num) nn += d * d;
    double e = nn < 1e-20 ? std::sqrt([&] { double s = 0; for (double d : ana) s += d * d; return s; }())
                          : rel_err(ana, num);
    INFO("input ", k, " shape ", shape_str(xs[k].shape()), " grad-of-grad rel err ", e);
    CHECK(e < tol);
    worst = std::max(worst, e);
  }
  return worst;
}

// Random float64 tensor in [lo, hi].
inline Tensor rand64(Context& ctx, const Shape& s, double lo = -1.0, double hi = 1.0) {
  return Tensor::uniform(ctx, s, lo, hi, DType::F64);
}

// max |a| and max |a − b| over the elements (any dtype, read as float64); a and b of the same size.
inline double max_abs(const Tensor& a) {
  double m = 0;
  for (double v : a.to_vector<double>()) m = std::max(m, std::fabs(v));
  return m;
}
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  auto u = a.to_vector<double>(), v = b.to_vector<double>();
  REQUIRE(u.size() == v.size());
  double m = 0;
  for (size_t i = 0; i < u.size(); ++i) m = std::max(m, std::fabs(u[i] - v[i]));
  return m;
}

}  // namespace lowpass::test
