// Shape ops: reshape (a view), permute/transpose, flip, slice/pad, concat, index_select/add, crop.
// Each one's gradient is its adjoint (reshape back, inverse permutation, flip, pad/slice, ...).
// Test: tests/test_shape.cpp.
#include "kernels/cpu/shape.h"

#include <numeric>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"

namespace lowpass {

namespace {
using Grads = std::vector<Tensor>;

int64_t norm_dim(int64_t d, const Tensor& a, const char* op) {
  int64_t nd = a.dim();
  if (d < 0) d += nd;
  LP_CHECK(d >= 0 && d < nd, op, ": dim ", d, " out of range for ", a.describe());
  return d;
}

// (outer, n, inner) view around axis d.
void axis_view(const Shape& s, int64_t d, int64_t& outer, int64_t& n, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= s[k];
  n = s[d];
  for (size_t k = d + 1; k < s.size(); ++k) inner *= s[k];
}

// Window copy along d: out[.., j, ..] = a[.., j + offset, ..] in range, else 0; out length n_out.
Tensor window(const Tensor& a, int64_t d, int64_t offset, int64_t n_out) {
  int64_t outer, n, inner;
  axis_view(a.shape(), d, outer, n, inner);
  Shape os = a.shape();
  os[d] = n_out;
  Tensor out = empty_like(a, os);
  LP_ON_DEVICE(a, cpu::window_axis(a, out, outer, n, n_out, inner, offset),
               cuda::window_axis(a, out, outer, n, n_out, inner, offset));
  return out;
}
}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape_in) {
  Shape shape = shape_in;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      LP_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape_in));
      infer = static_cast<int64_t>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    LP_CHECK(known > 0 && a.numel() % known == 0, "reshape: cannot infer -1 in ", shape_str(shape_in), " for ",
             a.describe());
    shape[infer] = a.numel() / known;
  }
  LP_CHECK(shape_numel(shape) == a.numel(), "reshape: ", a.describe(), " to ", shape_str(shape_in));
  if (shape == a.shape()) return a;
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = a.impl()->storage;
  impl->offset = a.impl()->offset;
  impl->shape = shape;
  impl->dtype = a.dtype();
  impl->ctx = a.impl()->ctx;
  impl->ctx_id = a.impl()->ctx_id;
  Shape in_shape = a.shape();
  return record("reshape", Tensor(impl), {a}, [in_shape](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{reshape(g, in_shape)};
  });
}

Tensor permute(const Tensor& a, const std::vector<int64_t>& perm_in) {
  LP_CHECK(a.defined(), "permute: undefined tensor");
  int64_t nd = a.dim();
  LP_CHECK(static_cast<int64_t>(perm_in.size()) == nd, "permute: ", perm_in.size(), " axes given for ", a.describe());
  std::vector<int64_t> perm(nd), inv(nd, -1);
  for (int64_t i = 0; i < nd; ++i) {
    perm[i] = norm_dim(perm_in[i], a, "permute");
    LP_CHECK(inv[perm[i]] < 0, "permute: axis ", perm_in[i], " repeated");
    inv[perm[i]] = i;
  }
  bool identity = true;
  for (int64_t i = 0; i < nd; ++i) identity = identity && perm[i] == i;
  if (identity) return a;
  Shape os(nd);
  for (int64_t i = 0; i < nd; ++i) os[i] = a.shape()[perm[i]];
  Tensor out = empty_like(a, os);
  LP_ON_DEVICE(a, cpu::permute(a, out, perm), cuda::permute(a, out, perm));
  return record("permute", out, {a}, [inv](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{permute(g, inv)};
  });
}

Tensor transpose(const Tensor& a, int64_t d0, int64_t d1) {
  LP_CHECK(a.defined(), "transpose: undefined tensor");
  d0 = norm_dim(d0, a, "transpose");
  d1 = norm_dim(d1, a, "transpose");
  std::vector<int64_t> perm(a.dim());
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[d0], perm[d1]);
  return permute(a, perm);
}

Tensor flip(const Tensor& a, const std::vector<int64_t>& axes) {
  LP_CHECK(a.defined(), "flip: undefined tensor");
  std::vector<bool> flipped(a.dim(), false);
  for (int64_t ax : axes) flipped[norm_dim(ax, a, "flip")] = true;
  Tensor out = empty_like(a);
  LP_ON_DEVICE(a, cpu::flip(a, out, flipped), cuda::flip(a, out, flipped));
  return record("flip", out, {a}, [axes](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{flip(g, axes)};
  });
}

Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t length) {
  LP_CHECK(a.defined(), "slice: undefined tensor");
  int64_t d = norm_dim(dim, a, "slice");
  int64_t n = a.shape()[d];
  LP_CHECK(start >= 0 && length >= 0 && start + length <= n, "slice: [", start, ", ", start + length,
           ") is outside axis ", d, " of length ", n, " of ", a.describe());
  if (start == 0 && length == n) return a;
  Tensor out = window(a, d, start, length);
  return record("slice", out, {a}, [d, start, length, n](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{pad(g, d, start, n - start - length)};
  });
}

Tensor pad(const Tensor& a, int64_t dim, int64_t before, int64_t after) {
  LP_CHECK(a.defined(), "pad: undefined tensor");
  int64_t d = norm_dim(dim, a, "pad");
  LP_CHECK(before >= 0 && after >= 0, "pad: negative padding (", before, ", ", after, ") on ", a.describe());
  if (before == 0 && after == 0) return a;
  int64_t n = a.shape()[d];
  Tensor out = window(a, d, -before, n + before + after);
  return record("pad", out, {a}, [d, before, n](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{slice(g, d, before, n)};
  });
}

Tensor concat(const std::vector<Tensor>& parts, int64_t dim) {
  LP_CHECK(!parts.empty(), "concat: no tensors");
  const Tensor& first = parts[0];
  LP_CHECK(first.defined(), "concat: part 0 is undefined");
  int64_t d = norm_dim(dim, first, "concat");
  Shape os = first.shape();
  int64_t total = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    const Tensor& p = parts[k];
    LP_CHECK(p.defined(), "concat: part ", k, " is undefined");
    LP_SAME_DEVICE_DTYPE(first, p, "concat");
    bool ok = p.dim() == first.dim();
    for (int64_t i = 0; ok && i < p.dim(); ++i) ok = i == d || p.shape()[i] == os[i];
    LP_CHECK(ok, "concat: part ", k, " has shape ", shape_str(p.shape()), ", expected ", shape_str(os),
             " except along dim ", d);
    total += p.shape()[d];
  }
  if (parts.size() == 1) return first;
  os[d] = total;
  Tensor out = empty_like(first, os);
  int64_t outer, n, inner;
  axis_view(os, d, outer, n, inner);
  std::vector<int64_t> starts, lens;
  int64_t off = 0;
  for (const Tensor& p : parts) {
    int64_t np = p.shape()[d];
    LP_ON_DEVICE(p, cpu::copy_into_axis(p, out, outer, np, total, inner, off),
                 cuda::copy_into_axis(p, out, outer, np, total, inner, off));
    starts.push_back(off);
    lens.push_back(np);
    off += np;
  }
  return record("concat", out, parts, [d, starts, lens](const Tensor& g, const Tensor&, const std::vector<bool>& need) {
    Grads r(starts.size());
    for (size_t k = 0; k < starts.size(); ++k)
      if (need[k]) r[k] = slice(g, d, starts[k], lens[k]);
    return r;
  });
}

Tensor index_select(const Tensor& a, int64_t dim, const std::vector<int64_t>& index) {
  LP_CHECK(a.defined(), "index_select: undefined tensor");
  int64_t d = norm_dim(dim, a, "index_select");
  int64_t outer, n, inner;
  axis_view(a.shape(), d, outer, n, inner);
  for (size_t j = 0; j < index.size(); ++j)
    LP_CHECK(index[j] >= 0 && index[j] < n, "index_select: index[", j, "] = ", index[j], " outside [0, ", n,
             ") on dim ", d, " of ", a.describe());
  Shape os = a.shape();
  os[d] = static_cast<int64_t>(index.size());
  Tensor out = empty_like(a, os);
  LP_ON_DEVICE(a, cpu::index_select(a, out, outer, n, inner, index),
               cuda::index_select(a, out, outer, n, inner, index));
  return record("index_select", out, {a}, [d, index, n](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{index_add(g, d, index, n)};
  });
}

Tensor index_add(const Tensor& g, int64_t dim, const std::vector<int64_t>& index, int64_t size) {
  LP_CHECK(g.defined(), "index_add: undefined tensor");
  int64_t d = norm_dim(dim, g, "index_add");
  int64_t outer, m, inner;
  axis_view(g.shape(), d, outer, m, inner);
  LP_CHECK(m == static_cast<int64_t>(index.size()), "index_add: dim ", d, " of ", g.describe(), " has ", m,
           " entries but ", index.size(), " indices");
  LP_CHECK(size >= 0, "index_add: negative size ", size);
  for (size_t j = 0; j < index.size(); ++j)
    LP_CHECK(index[j] >= 0 && index[j] < size, "index_add: index[", j, "] = ", index[j], " outside [0, ", size, ")");
  Shape os = g.shape();
  os[d] = size;
  Tensor out = empty_like(g, os);
  LP_ON_DEVICE(g, cpu::index_add(g, out, outer, size, inner, index), cuda::index_add(g, out, outer, size, inner, index));
  return record("index_add", out, {g}, [d, index](const Tensor& gg, const Tensor&, const std::vector<bool>&) {
    return Grads{index_select(gg, d, index)};
  });
}

// Centre crop: keeps [start, start + length) with start = (n - length) / 2 (floor: an odd surplus
// drops one more element at the end), as the reference's BPNet crop.
Tensor center_crop(const Tensor& a, int64_t dim, int64_t length) {
  LP_CHECK(a.defined(), "center_crop: undefined tensor");
  int64_t d = norm_dim(dim, a, "center_crop");
  int64_t n = a.shape()[d];
  LP_CHECK(length >= 0 && length <= n, "center_crop: length ", length, " exceeds dim ", d, " of ", a.describe());
  return slice(a, d, (n - length) / 2, length);
}

}  // namespace lowpass
