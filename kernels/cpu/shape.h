// Data-movement kernels behind the shape ops (permute, flip, window copy = slice/pad, concat,
// index_select/index_add). Axis ops view a tensor as (outer, n, inner) around the axis. Test: tests/test_shape.cpp.
// Legend: outer = product of the dims before the axis, n = the axis length, inner = product after it.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace lowpass {
namespace cpu {
// out.shape[i] = a.shape[perm[i]]; out[idx] = a[idx permuted back].
void permute(const Tensor& a, Tensor& out, const std::vector<int64_t>& perm);
// out = a reversed along every axis d with flipped[d].
void flip(const Tensor& a, Tensor& out, const std::vector<bool>& flipped);
// out (outer, n_out, inner): out[o, j, i] = a[o, j + offset, i] where 0 <= j + offset < n_in, else 0.
// slice: offset = start >= 0; pad: offset = -before.
void window_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n_in, int64_t n_out, int64_t inner,
                 int64_t offset);
// out (outer, n_out, inner): out[o, offset + j, i] = a[o, j, i] for j < n_a; the rest untouched (concat).
void copy_into_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n_a, int64_t n_out, int64_t inner,
                    int64_t offset);
// out (outer, index.size(), inner): out[o, j, i] = a[o, index[j], i] (a is (outer, n_in, inner)).
void index_select(const Tensor& a, Tensor& out, int64_t outer, int64_t n_in, int64_t inner,
                  const std::vector<int64_t>& index);
// out (outer, n_out, inner) = 0, then out[o, index[j], i] += g[o, j, i] (repeated indices accumulate).
void index_add(const Tensor& g, Tensor& out, int64_t outer, int64_t n_out, int64_t inner,
               const std::vector<int64_t>& index);
}  // namespace cpu

namespace cuda {
void permute(const Tensor& a, Tensor& out, const std::vector<int64_t>& perm);
void flip(const Tensor& a, Tensor& out, const std::vector<bool>& flipped);
void window_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n_in, int64_t n_out, int64_t inner,
                 int64_t offset);
void copy_into_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n_a, int64_t n_out, int64_t inner,
                    int64_t offset);
void index_select(const Tensor& a, Tensor& out, int64_t outer, int64_t n_in, int64_t inner,
                  const std::vector<int64_t>& index);
void index_add(const Tensor& g, Tensor& out, int64_t outer, int64_t n_out, int64_t inner,
               const std::vector<int64_t>& index);
}  // namespace cuda
}  // namespace lowpass
