// Shape ops: reshape (a view), permute/transpose, flip, slice/pad, concat, index_select/add, crop.
// Each one's gradient is its adjoint (reshape back, inverse permutation, flip, pad/slice, ...).
// Test: tests/test_shape.cpp.
#include "engine/ops.h"
#include "engine/ops/dispatch.h"

namespace lowpass {

namespace {
using Grads = std::vector<Tensor>;
}

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
  Shape in_shape = a.shape();
  return record("reshape", Tensor(impl), {a}, [in_shape](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{reshape(g, in_shape)};
  });
}

}  // namespace lowpass
