// CPU data-movement kernels for the shape ops: strided permute (tiled when it transposes the
// innermost axis), flip, window copy, concat slot copy, index gather/scatter. Test: tests/test_shape.cpp.
// All are exact copies (or sums for index_add); threads split the outer rows.
#include "kernels/cpu/shape.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/parallel.h"

namespace lowpass::cpu {

namespace {

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int64_t d = static_cast<int64_t>(s.size()) - 2; d >= 0; --d) st[d] = st[d + 1] * s[d + 1];
  return st;
}

template <typename T>
void permute_t(const Tensor& a, Tensor& out, const std::vector<int64_t>& perm) {
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  const Shape& os = out.shape();
  int64_t nd = static_cast<int64_t>(os.size());
  if (nd == 0 || out.numel() == 0) {
    if (out.numel()) po[0] = pa[0];
    return;
  }
  auto ast = strides_of(a.shape());
  std::vector<int64_t> istr(nd);  // input stride of each output axis
  for (int64_t i = 0; i < nd; ++i) istr[i] = ast[perm[i]];
  int64_t inner = os[nd - 1], sl = istr[nd - 1];
  int64_t rows = out.numel() / inner;
  // Output axis p that walks the input contiguously: tile (p, last) to keep both sides in cache.
  int64_t p = -1;
  for (int64_t i = 0; i < nd - 1; ++i)
    if (istr[i] == 1 && os[i] > 1) p = i;
  if (sl != 1 && p >= 0) {
    // Rows of the output, grouped by all axes except p and the last.
    int64_t np = os[p], sp_out = 1;
    for (int64_t i = p + 1; i < nd; ++i) sp_out *= os[i];
    int64_t groups = rows / np;
    constexpr int64_t TB = 32;
    parallel_for(a.ctx(), groups, 1, [&](int64_t gidx) {
      // Decompose gidx over output axes except p and nd-1.
      int64_t rem = gidx, ibase = 0, obase = 0;
      for (int64_t d = nd - 2; d >= 0; --d) {
        if (d == p) continue;
        int64_t idx = rem % os[d];
        rem /= os[d];
        ibase += idx * istr[d];
        int64_t ost = 1;
        for (int64_t k = d + 1; k < nd; ++k) ost *= os[k];
        obase += idx * ost;
      }
      for (int64_t j0 = 0; j0 < np; j0 += TB)
        for (int64_t l0 = 0; l0 < inner; l0 += TB) {
          int64_t j1 = std::min(np, j0 + TB), l1 = std::min(inner, l0 + TB);
          for (int64_t j = j0; j < j1; ++j) {
            T* dst = po + obase + j * sp_out;
            const T* src = pa + ibase + j;
            for (int64_t l = l0; l < l1; ++l) dst[l] = src[l * sl];
          }
        }
    });
    return;
  }
  parallel_for(a.ctx(), rows, std::max<int64_t>(1, 4096 / inner), [&](int64_t r) {
    int64_t rem = r, off = 0;
    for (int64_t d = nd - 2; d >= 0; --d) {
      off += (rem % os[d]) * istr[d];
      rem /= os[d];
    }
    T* dst = po + r * inner;
    const T* src = pa + off;
    if (sl == 1) std::memcpy(dst, src, sizeof(T) * inner);
    else
      for (int64_t l = 0; l < inner; ++l) dst[l] = src[l * sl];
  });
}

template <typename T>
void flip_t(const Tensor& a, Tensor& out, const std::vector<bool>& flipped) {
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  const Shape& s = a.shape();
  int64_t nd = static_cast<int64_t>(s.size());
  if (nd == 0) {
    po[0] = pa[0];
    return;
  }
  if (a.numel() == 0) return;
  auto st = strides_of(s);
  int64_t inner = s[nd - 1];
  int64_t rows = a.numel() / inner;
  bool rev = flipped[nd - 1];
  parallel_for(a.ctx(), rows, std::max<int64_t>(1, 4096 / inner), [&](int64_t r) {
    int64_t rem = r, off = 0;
    for (int64_t d = nd - 2; d >= 0; --d) {
      int64_t idx = rem % s[d];
      rem /= s[d];
      off += (flipped[d] ? s[d] - 1 - idx : idx) * st[d];
    }
    const T* src = pa + off;
    T* dst = po + r * inner;
    if (rev)
      for (int64_t l = 0; l < inner; ++l) dst[l] = src[inner - 1 - l];
    else
      std::memcpy(dst, src, sizeof(T) * inner);
  });
}

template <typename T>
void window_t(const Tensor& a, Tensor& out, int64_t outer, int64_t n_in, int64_t n_out, int64_t inner,
              int64_t offset) {
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  int64_t j0 = std::clamp<int64_t>(-offset, 0, n_out);            // first j with source in range
  int64_t j1 = std::clamp<int64_t>(n_in - offset, j0, n_out);      // one past the last
  parallel_for(a.ctx(), outer, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, n_out * inner)), [&](int64_t o) {
    T* dst = po + o * n_out * inner;
    const T* src = pa + o * n_in * inner;
    std::fill(dst, dst + j0 * inner, T(0));
    if (j1 > j0) std::memcpy(dst + j0 * inner, src + (j0 + offset) * inner, sizeof(T) * (j1 - j0) * inner);
    std::fill(dst + j1 * inner, dst + n_out * inner, T(0));
  });
}

template <typename T>
void copy_into_t(const Tensor& a, Tensor& out, int64_t outer, int64_t n_a, int64_t n_out, int64_t inner,
                 int64_t offset) {
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  parallel_for(a.ctx(), outer, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, n_a * inner)), [&](int64_t o) {
    std::memcpy(po + (o * n_out + offset) * inner, pa + o * n_a * inner, sizeof(T) * n_a * inner);
  });
}

template <typename T>
void index_select_t(const Tensor& a, Tensor& out, int64_t outer, int64_t n_in, int64_t inner,
                    const std::vector<int64_t>& index) {
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  int64_t m = static_cast<int64_t>(index.size());
  parallel_for(a.ctx(), outer, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, m * inner)), [&](int64_t o) {
    for (int64_t j = 0; j < m; ++j)
      std::memcpy(po + (o * m + j) * inner, pa + (o * n_in + index[j]) * inner, sizeof(T) * inner);
  });
}

template <typename T>
void index_add_t(const Tensor& g, Tensor& out, int64_t outer, int64_t n_out, int64_t inner,
                 const std::vector<int64_t>& index) {
  const T* pg = g.data<T>();
  T* po = out.data<T>();
  int64_t m = static_cast<int64_t>(index.size());
  // Each thread owns whole outer rows, so repeated indices accumulate without races.
  parallel_for(g.ctx(), outer, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, m * inner)), [&](int64_t o) {
    T* dst = po + o * n_out * inner;
    std::fill(dst, dst + n_out * inner, T(0));
    for (int64_t j = 0; j < m; ++j) {
      const T* src = pg + (o * m + j) * inner;
      T* d = dst + index[j] * inner;
      for (int64_t i = 0; i < inner; ++i) d[i] += src[i];
    }
  });
}

}  // namespace

void permute(const Tensor& a, Tensor& out, const std::vector<int64_t>& perm) {
  dispatch_dtype(a.dtype(), [&]<typename T>() { permute_t<T>(a, out, perm); });
}
void flip(const Tensor& a, Tensor& out, const std::vector<bool>& flipped) {
  dispatch_dtype(a.dtype(), [&]<typename T>() { flip_t<T>(a, out, flipped); });
}
void window_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n_in, int64_t n_out, int64_t inner,
                 int64_t offset) {
  dispatch_dtype(a.dtype(), [&]<typename T>() { window_t<T>(a, out, outer, n_in, n_out, inner, offset); });
}
void copy_into_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n_a, int64_t n_out, int64_t inner,
                    int64_t offset) {
  dispatch_dtype(a.dtype(), [&]<typename T>() { copy_into_t<T>(a, out, outer, n_a, n_out, inner, offset); });
}
void index_select(const Tensor& a, Tensor& out, int64_t outer, int64_t n_in, int64_t inner,
                  const std::vector<int64_t>& index) {
  dispatch_dtype(a.dtype(), [&]<typename T>() { index_select_t<T>(a, out, outer, n_in, inner, index); });
}
void index_add(const Tensor& g, Tensor& out, int64_t outer, int64_t n_out, int64_t inner,
               const std::vector<int64_t>& index) {
  dispatch_dtype(g.dtype(), [&]<typename T>() { index_add_t<T>(g, out, outer, n_out, inner, index); });
}

}  // namespace lowpass::cpu
