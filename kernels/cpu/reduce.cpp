// CPU reductions over one axis of an (outer, n, inner) view, fixed summation order (deterministic).
// Test: tests/test_reduce.cpp.
#include "kernels/cpu/reduce.h"

#include <algorithm>
#include <limits>

#include "kernels/cpu/parallel.h"

namespace lowpass::cpu {

namespace {
template <typename T>
void reduce_t(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner, double scale) {
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  const Context& ctx = a.ctx();
  if (inner == 1) {
    // Contiguous rows: blocked sums in a fixed order.
    parallel_for(ctx, outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t o) {
      const T* row = pa + o * n;
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t j = 0;
      for (; j + 4 <= n; j += 4) {
        s0 += row[j]; s1 += row[j + 1]; s2 += row[j + 2]; s3 += row[j + 3];
      }
      for (; j < n; ++j) s0 += row[j];
      po[o] = static_cast<T>(((s0 + s1) + (s2 + s3)) * scale);
    });
    return;
  }
  parallel_for(ctx, outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(n * inner, 1)), [&](int64_t o) {
    std::vector<double> acc(static_cast<size_t>(inner), 0.0);
    const T* base = pa + o * n * inner;
    for (int64_t j = 0; j < n; ++j) {
      const T* row = base + j * inner;
      for (int64_t i = 0; i < inner; ++i) acc[i] += row[i];
    }
    T* dst = po + o * inner;
    for (int64_t i = 0; i < inner; ++i) dst[i] = static_cast<T>(acc[i] * scale);
  });
}

template <typename T>
void expand_t(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  parallel_for(a.ctx(), outer * n, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t r) {
    int64_t o = r / n;
    std::copy(pa + o * inner, pa + (o + 1) * inner, po + r * inner);
  });
}

template <typename T>
void max_t(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  parallel_for(a.ctx(), outer, 1, [&](int64_t o) {
    for (int64_t i = 0; i < inner; ++i) {
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j < n; ++j) m = std::max(m, pa[(o * n + j) * inner + i]);
      po[o * inner + i] = m;
    }
  });
}
}  // namespace

void reduce_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner, double scale) {
  dispatch_dtype(a.dtype(), [&]<typename T>() { reduce_t<T>(a, out, outer, n, inner, scale); });
}
void expand_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  dispatch_dtype(a.dtype(), [&]<typename T>() { expand_t<T>(a, out, outer, n, inner); });
}
void max_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  dispatch_dtype(a.dtype(), [&]<typename T>() { max_t<T>(a, out, outer, n, inner); });
}

}  // namespace lowpass::cpu
