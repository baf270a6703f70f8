// Reduction and broadcast kernels (CPU). A tensor is viewed as (outer, n, inner); reduce_axis sums
// the middle axis: out[o, i] = scale * Σ_j a[o, j, i]. Deterministic for any thread count.
#pragma once
#include "engine/tensor.h"

namespace lowpass {
namespace cpu {
void reduce_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner, double scale);
// out[o, j, i] = a[o, i] (inverse view of reduce_axis)
void expand_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner);
void max_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner);
}  // namespace cpu
namespace cuda {
void reduce_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner, double scale);
void expand_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner);
void max_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner);
}  // namespace cuda
}  // namespace lowpass
