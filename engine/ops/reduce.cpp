// Reductions and broadcasting: sum/mean over axes, broadcast_to and its adjoint sum_to.
// sum's gradient is broadcast_to; broadcast_to's gradient is sum_to (=> any order of derivative).
// Test: tests/test_reduce.cpp.
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/elementwise.h"

#include <algorithm>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"

namespace lowpass {

namespace {
using Grads = std::vector<Tensor>;

int64_t norm_axis(int64_t ax, int64_t nd, const Tensor& a) {
  if (ax < 0) ax += nd;
  LP_CHECK(ax >= 0 && ax < nd, "axis ", ax, " out of range for ", a.describe());
  return ax;
}

// Raw sum over sorted unique axes, keepdim; merges runs of adjacent axes into one pass.
Tensor reduce_raw(const Tensor& a, std::vector<int64_t> axes, double scale) {
  Tensor cur = a;
  std::sort(axes.begin(), axes.end());
  // Process from the last run to the first so earlier axis indices stay valid.
  int64_t i = static_cast<int64_t>(axes.size()) - 1;
  bool first = true;
  while (i >= 0) {
    int64_t hi = axes[i], lo = hi;
    while (i > 0 && axes[i - 1] == lo - 1) lo = axes[--i];
    --i;
    const Shape& s = cur.shape();
    int64_t outer = 1, n = 1, inner = 1;
    for (int64_t k = 0; k < lo; ++k) outer *= s[k];
    for (int64_t k = lo; k <= hi; ++k) n *= s[k];
    for (size_t k = hi + 1; k < s.size(); ++k) inner *= s[k];
    Shape os = s;
    for (int64_t k = lo; k <= hi; ++k) os[k] = 1;
    Tensor out = empty_like(cur, os);
    double sc = first ? scale : 1.0;
    first = false;
    LP_ON_DEVICE(cur, cpu::reduce_axis(cur, out, outer, n, inner, sc),
                 cuda::reduce_axis(cur, out, outer, n, inner, sc));
    cur = out;
  }
  if (first) cur = a.detach().clone();  // no axes: identity copy (scaled)
  return cur;
}

Shape drop_axes(const Shape& s, const std::vector<int64_t>& axes) {
  Shape r;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) r.push_back(s[i]);
  return r;
}

Tensor sum_impl(const Tensor& a, std::vector<int64_t> axes, bool keepdim, double scale) {
  int64_t nd = a.dim();
  for (auto& ax : axes) ax = norm_axis(ax, nd, a);
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  Tensor out;
  {
    out = reduce_raw(a, axes, scale);
    if (!keepdim) out = reshape(out.detach(), drop_axes(a.shape(), axes)).detach();
  }
  Shape in_shape = a.shape();
  Shape kept = in_shape;
  for (int64_t ax : axes) kept[ax] = 1;
  return record("sum", out, {a}, [in_shape, kept, scale](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    Tensor gk = g.shape() == kept ? g : reshape(g, kept);
    Tensor b = broadcast_to(gk, in_shape);
    return Grads{scale == 1.0 ? b : mul_scalar(b, scale)};
  });
}
}  // namespace

Tensor sum(const Tensor& a, const std::vector<int64_t>& axes, bool keepdim) {
  return sum_impl(a, axes, keepdim, 1.0);
}

Tensor mean(const Tensor& a, const std::vector<int64_t>& axes, bool keepdim) {
  int64_t n = 1;
  std::vector<int64_t> u;
  for (int64_t ax : axes) {
    int64_t k = norm_axis(ax, a.dim(), a);
    if (std::find(u.begin(), u.end(), k) == u.end()) { u.push_back(k); n *= a.shape()[k]; }
  }
  return sum_impl(a, u, keepdim, n ? 1.0 / static_cast<double>(n) : 1.0);
}

Tensor sum_all(const Tensor& a) {
  std::vector<int64_t> axes(a.dim());
  for (int64_t i = 0; i < a.dim(); ++i) axes[i] = i;
  return sum(a, axes, false);
}

Tensor mean_all(const Tensor& a) {
  std::vector<int64_t> axes(a.dim());
  for (int64_t i = 0; i < a.dim(); ++i) axes[i] = i;
  return mean(a, axes, false);
}

Tensor broadcast_to(const Tensor& a, const Shape& shape) {
  if (a.shape() == shape) return a;
  Shape bs = broadcast_shapes(a.shape(), shape);
  LP_CHECK(bs == shape, "broadcast_to: ", shape_str(a.shape()), " cannot broadcast to ", shape_str(shape));
  // Left-pad the shape with ones, then expand one axis at a time (rightmost first).
  Shape padded(shape.size() - a.shape().size(), 1);
  padded.insert(padded.end(), a.shape().begin(), a.shape().end());
  Tensor cur = reshape(a.detach(), padded).detach();
  for (int64_t ax = static_cast<int64_t>(shape.size()) - 1; ax >= 0; --ax) {
    if (cur.shape()[ax] == shape[ax]) continue;
    const Shape& s = cur.shape();
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < ax; ++k) outer *= s[k];
    for (size_t k = ax + 1; k < s.size(); ++k) inner *= s[k];
    Shape os = s;
    os[ax] = shape[ax];
    Tensor out = empty_like(cur, os);
    LP_ON_DEVICE(cur, cpu::expand_axis(cur, out, outer, shape[ax], inner),
                 cuda::expand_axis(cur, out, outer, shape[ax], inner));
    cur = out;
  }
  Shape in_shape = a.shape();
  return record("broadcast_to", cur, {a}, [in_shape](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{sum_to(g, in_shape)};
  });
}

Tensor sum_to(const Tensor& a, const Shape& shape) {
  if (a.shape() == shape) return a;
  const Shape& s = a.shape();
  LP_CHECK(s.size() >= shape.size(), "sum_to: ", shape_str(s), " to ", shape_str(shape));
  size_t lead = s.size() - shape.size();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i < lead) axes.push_back(static_cast<int64_t>(i));
    else if (shape[i - lead] == 1 && s[i] != 1) axes.push_back(static_cast<int64_t>(i));
    else LP_CHECK(shape[i - lead] == s[i], "sum_to: ", shape_str(s), " to ", shape_str(shape));
  }
  Tensor r = sum(a, axes, true);
  return reshape(r, shape);
}

Tensor max_detached(const Tensor& a, int64_t axis, bool keepdim) {
  int64_t ax = norm_axis(axis, a.dim(), a);
  const Shape& s = a.shape();
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < ax; ++k) outer *= s[k];
  for (size_t k = ax + 1; k < s.size(); ++k) inner *= s[k];
  Shape os = s;
  os[ax] = 1;
  Tensor out = empty_like(a, os);
  LP_ON_DEVICE(a, cpu::max_axis(a, out, outer, s[ax], inner), cuda::max_axis(a, out, outer, s[ax], inner));
  if (!keepdim) out = reshape(out, drop_axes(s, {ax})).detach();
  return out;
}

}  // namespace lowpass
