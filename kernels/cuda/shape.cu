// CUDA data-movement kernels behind the shape ops (twins of kernels/cpu/shape.cpp): strided gather
// (permute, flip: out[i] = a[base + Σ_d idx_d·stride_d]), window copy, concat slot copy, index gather/scatter.
// Test: build/tests/lowpass_tests -ts=cuda.
#include "kernels/cpu/shape.h"
#include "kernels/cuda/cuda_state.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/index.h"

namespace lowpass::cuda {
namespace {

constexpr int kThreads = 256;

struct GatherMap {  // output shape and the input stride of each output axis (may be negative)
  int nd = 0;
  int64_t base = 0;
  int64_t shape[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
};

template <typename T>
__global__ void gather_strided_kernel(const T* __restrict__ a, T* __restrict__ o, int64_t n, GatherMap m) {
  LP_GRID_STRIDE(i, n) {
    int64_t rem = i, off = m.base;
    for (int d = m.nd - 1; d >= 0; --d) {
      off += (rem % m.shape[d]) * m.stride[d];
      rem /= m.shape[d];
    }
    o[i] = a[off];
  }
}

// out (outer, n_out, inner) = a (outer, n_in, inner) shifted by offset along the middle axis, 0 outside.
template <typename T>
__global__ void window_axis_kernel(const T* __restrict__ a, T* __restrict__ o, int64_t total, int64_t n_in,
                                   int64_t n_out, int64_t inner, int64_t offset) {
  LP_GRID_STRIDE(k, total) {
    int64_t i = k % inner, r = k / inner;
    int64_t j = r % n_out, oo = r / n_out;
    int64_t src = j + offset;
    o[k] = (src >= 0 && src < n_in) ? a[(oo * n_in + src) * inner + i] : T(0);
  }
}

template <typename T>
__global__ void copy_into_axis_kernel(const T* __restrict__ a, T* __restrict__ o, int64_t total, int64_t n_a,
                                      int64_t n_out, int64_t inner, int64_t offset) {
  LP_GRID_STRIDE(k, total) {
    int64_t i = k % inner, r = k / inner;
    int64_t j = r % n_a, oo = r / n_a;
    o[(oo * n_out + offset + j) * inner + i] = a[k];
  }
}

template <typename T>
__global__ void index_select_kernel(const T* __restrict__ a, T* __restrict__ o, int64_t total, int64_t n_in,
                                    int64_t m, int64_t inner, const int64_t* __restrict__ index) {
  LP_GRID_STRIDE(k, total) {
    int64_t i = k % inner, r = k / inner;
    int64_t j = r % m, oo = r / m;
    o[k] = a[(oo * n_in + index[j]) * inner + i];
  }
}

// One thread per output element: out[o, r, i] = Σ over j with index[j] == r (ascending j, as the CPU
// adds them) of g[o, j, i]; the j lists come as CSR (starts (n_out + 1), js (m)). No atomics, deterministic.
template <typename T>
__global__ void index_add_csr_kernel(const T* __restrict__ g, T* __restrict__ o, int64_t total, int64_t m,
                                     int64_t n_out, int64_t inner, const int64_t* __restrict__ starts,
                                     const int64_t* __restrict__ js) {
  LP_GRID_STRIDE(k, total) {
    int64_t i = k % inner, q = k / inner;
    int64_t r = q % n_out, oo = q / n_out;
    T s = 0;
    for (int64_t e = starts[r]; e < starts[r + 1]; ++e) s += g[(oo * m + js[e]) * inner + i];
    o[k] = s;
  }
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int64_t d = static_cast<int64_t>(s.size()) - 2; d >= 0; --d) st[d] = st[d + 1] * s[d + 1];
  return st;
}

void gather(const Tensor& a, Tensor& out, const GatherMap& m) {
  int64_t n = out.numel();
  if (n == 0) return;
  const CudaState& st = state_of(a);
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    gather_strided_kernel<T><<<grid_1d(st, n, kThreads), kThreads, 0, st.stream>>>(a.data<T>(), out.data<T>(), n, m);
    LP_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

void permute(const Tensor& a, Tensor& out, const std::vector<int64_t>& perm) {
  int64_t nd = a.dim();
  LP_CHECK(nd <= kMaxDims, "CUDA permute: at most ", kMaxDims, " dimensions, got ", a.describe());
  auto ast = contiguous_strides(a.shape());
  GatherMap m;
  m.nd = static_cast<int>(nd);
  for (int64_t i = 0; i < nd; ++i) {
    m.shape[i] = out.shape()[i];
    m.stride[i] = ast[perm[i]];
  }
  gather(a, out, m);
}

void flip(const Tensor& a, Tensor& out, const std::vector<bool>& flipped) {
  int64_t nd = a.dim();
  LP_CHECK(nd <= kMaxDims, "CUDA flip: at most ", kMaxDims, " dimensions, got ", a.describe());
  auto ast = contiguous_strides(a.shape());
  GatherMap m;
  m.nd = static_cast<int>(nd);
  for (int64_t d = 0; d < nd; ++d) {
    m.shape[d] = a.shape()[d];
    m.stride[d] = flipped[d] ? -ast[d] : ast[d];
    if (flipped[d]) m.base += (a.shape()[d] - 1) * ast[d];
  }
  gather(a, out, m);
}

void window_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n_in, int64_t n_out, int64_t inner,
                 int64_t offset) {
  int64_t total = outer * n_out * inner;
  if (total == 0) return;
  const CudaState& st = state_of(a);
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    window_axis_kernel<T><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
        a.data<T>(), out.data<T>(), total, n_in, n_out, inner, offset);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void copy_into_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n_a, int64_t n_out, int64_t inner,
                    int64_t offset) {
  int64_t total = outer * n_a * inner;
  if (total == 0) return;
  const CudaState& st = state_of(a);
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    copy_into_axis_kernel<T><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
        a.data<T>(), out.data<T>(), total, n_a, n_out, inner, offset);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void index_select(const Tensor& a, Tensor& out, int64_t outer, int64_t n_in, int64_t inner,
                  const std::vector<int64_t>& index) {
  int64_t m = static_cast<int64_t>(index.size());
  int64_t total = outer * m * inner;
  if (total == 0) return;
  const CudaState& st = state_of(a);
  DeviceBuffer<int64_t> dindex(index, a.device().index);
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    index_select_kernel<T><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
        a.data<T>(), out.data<T>(), total, n_in, m, inner, dindex.get());
    LP_CUDA_LAUNCH_CHECK();
  });
}

void index_add(const Tensor& g, Tensor& out, int64_t outer, int64_t n_out, int64_t inner,
               const std::vector<int64_t>& index) {
  int64_t m = static_cast<int64_t>(index.size());
  int64_t total = outer * n_out * inner;
  if (total == 0) return;
  const CudaState& st = state_of(g);
  std::vector<int64_t> starts(static_cast<size_t>(n_out) + 1, 0), js(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j) {
    LP_CHECK(index[j] >= 0 && index[j] < n_out, "index_add: index ", index[j], " out of range [0, ", n_out, ")");
    starts[index[j] + 1]++;
  }
  for (int64_t r = 0; r < n_out; ++r) starts[r + 1] += starts[r];
  std::vector<int64_t> fill(starts.begin(), starts.end() - 1);
  for (int64_t j = 0; j < m; ++j) js[fill[index[j]]++] = j;  // ascending j within each r
  DeviceBuffer<int64_t> dstarts(starts, g.device().index), djs(js, g.device().index);
  dispatch_dtype(g.dtype(), [&]<typename T>() {
    index_add_csr_kernel<T><<<grid_1d(st, total, kThreads), kThreads, 0, st.stream>>>(
        g.data<T>(), out.data<T>(), total, m, n_out, inner, dstarts.get(), djs.get());
    LP_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace lowpass::cuda
