// CUDA reductions over the middle axis of an (outer, n, inner) view (twins of kernels/cpu/reduce.cpp):
// out[o, i] = scale * Σ_j a[o, j, i] (double accumulators), expand_axis, max_axis. Fixed order per shape.
// Test: build/tests/lowpass_tests -ts=cuda.
#include <math_constants.h>

#include <algorithm>
#include <type_traits>

#include "kernels/cpu/reduce.h"
#include "kernels/cuda/cuda_state.h"

namespace lowpass::cuda {
namespace {

constexpr int kRowThreads = 256;       // inner == 1: one block per row
constexpr int kRowThreadsWide = 1024;  // ... for fewer than kWideRows long rows (a loss's mean over a batch); a
constexpr int64_t kWideRows = 64;      // constant, not the card's SM count, so the order is the same on every card
constexpr int kRowUnroll = 4;          // loads per thread issued before their sums
constexpr int kTileX = 32;        // inner > 1: 32 inner positions x kTileY partial sums over j
constexpr int kTileY = 8;

template <typename T> __device__ __forceinline__ T lowest();
template <> __device__ __forceinline__ float lowest<float>() { return -CUDART_INF_F; }
template <> __device__ __forceinline__ double lowest<double>() { return -CUDART_INF; }

// max as the CPU's std::max(m, x): a NaN x never replaces m.
template <typename T> __device__ __forceinline__ T max_keep(T m, T x) { return m < x ? x : m; }

template <bool kMax, typename A>
__device__ __forceinline__ A combine(A s, A x) {
  if constexpr (kMax) return max_keep(s, x);
  else return s + x;
}

// inner == 1: rows of length n, kThreads per row; block-wide tree reduction (warp shuffles, then shared memory).
// Each thread combines its elements j = tid + k·kThreads in ascending k, kRowUnroll loads in flight at a time (a
// single row is latency-bound: one SM's worth of loads).
template <typename T, bool kMax, int kThreads>
__global__ void __launch_bounds__(kThreads) reduce_rows_kernel(const T* __restrict__ a, T* __restrict__ out,
                                                               int64_t n, double scale) {
  using A = std::conditional_t<kMax, T, double>;
  const T* row = a + static_cast<int64_t>(blockIdx.x) * n;
  A s = kMax ? A(lowest<T>()) : A(0);
  int64_t j = threadIdx.x;
  for (; j + (kRowUnroll - 1) * kThreads < n; j += kRowUnroll * kThreads) {
    T x[kRowUnroll];
#pragma unroll
    for (int k = 0; k < kRowUnroll; ++k) x[k] = row[j + k * kThreads];
#pragma unroll
    for (int k = 0; k < kRowUnroll; ++k) s = combine<kMax, A>(s, A(x[k]));
  }
  for (; j < n; j += kThreads) s = combine<kMax, A>(s, A(row[j]));
  for (int off = 16; off > 0; off >>= 1) s = combine<kMax, A>(s, __shfl_down_sync(0xffffffffu, s, off));
  __shared__ A warp_part[kThreads / 32];
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_part[warp] = s;
  __syncthreads();
  if (warp == 0) {
    s = lane < kThreads / 32 ? warp_part[lane] : (kMax ? A(lowest<T>()) : A(0));
    for (int off = 16; off > 0; off >>= 1) s = combine<kMax, A>(s, __shfl_down_sync(0xffffffffu, s, off));
    if (lane == 0) out[blockIdx.x] = kMax ? T(s) : static_cast<T>(s * scale);
  }
}

// inner > 1: block (kTileX, kTileY) covers 32 consecutive inner positions (coalesced) of one outer
// index; the y threads split j and are combined in shared memory.
template <typename T, bool kMax>
__global__ void reduce_strided_kernel(const T* __restrict__ a, T* __restrict__ out, int64_t outer, int64_t n,
                                      int64_t inner, double scale) {
  using A = std::conditional_t<kMax, T, double>;
  __shared__ A part[kTileY][kTileX + 1];
  int64_t i = static_cast<int64_t>(blockIdx.x) * kTileX + threadIdx.x;
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {  // uniform per block
    A s = kMax ? A(lowest<T>()) : A(0);
    if (i < inner) {
      const T* base = a + o * n * inner + i;
      for (int64_t j = threadIdx.y; j < n; j += kTileY) s = combine<kMax, A>(s, A(base[j * inner]));
    }
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
      for (int y = 1; y < kTileY; ++y) s = combine<kMax, A>(s, part[y][threadIdx.x]);
      out[o * inner + i] = kMax ? T(s) : static_cast<T>(s * scale);
    }
    __syncthreads();
  }
}

template <typename T, typename I>
__global__ void expand_gridstride_kernel(const T* __restrict__ a, T* __restrict__ out, I total, I n, I inner) {
  for (I k = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; k < total;
       k += static_cast<I>(gridDim.x) * blockDim.x) {  // I: uint32_t below 2^31 elements (cheaper divisions)
    I i = k % inner;
    I o = k / (inner * n);
    out[k] = a[static_cast<int64_t>(o) * inner + i];
  }
}

template <typename T, bool kMax>
void reduce_launch(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner, double scale) {
  if (outer * inner == 0) return;
  LP_CHECK(outer <= INT32_MAX, "CUDA reduction: outer size ", outer, " above 2^31-1");
  const CudaState& st = state_of(a);
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  if (inner == 1) {
    if (outer < kWideRows && n >= 8 * kRowThreads)
      reduce_rows_kernel<T, kMax, kRowThreadsWide><<<static_cast<unsigned>(outer), kRowThreadsWide, 0, st.stream>>>(
          pa, po, n, scale);
    else
      reduce_rows_kernel<T, kMax, kRowThreads><<<static_cast<unsigned>(outer), kRowThreads, 0, st.stream>>>(
          pa, po, n, scale);
  } else {
    dim3 grid(static_cast<unsigned>((inner + kTileX - 1) / kTileX), static_cast<unsigned>(std::min<int64_t>(outer, 65535)));
    LP_CHECK((inner + kTileX - 1) / kTileX <= INT32_MAX, "CUDA reduction: inner size ", inner, " too large");
    reduce_strided_kernel<T, kMax><<<grid, dim3(kTileX, kTileY), 0, st.stream>>>(pa, po, outer, n, inner, scale);
  }
  LP_CUDA_LAUNCH_CHECK();
}

}  // namespace

void reduce_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner, double scale) {
  dispatch_dtype(a.dtype(), [&]<typename T>() { reduce_launch<T, false>(a, out, outer, n, inner, scale); });
}

void max_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  dispatch_dtype(a.dtype(), [&]<typename T>() { reduce_launch<T, true>(a, out, outer, n, inner, 1.0); });
}

void expand_axis(const Tensor& a, Tensor& out, int64_t outer, int64_t n, int64_t inner) {
  int64_t total = outer * n * inner;
  if (total == 0) return;
  const CudaState& st = state_of(a);
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    if (total < (int64_t{1} << 31))
      expand_gridstride_kernel<T, uint32_t><<<grid_1d(st, total, 256), 256, 0, st.stream>>>(
          a.data<T>(), out.data<T>(), static_cast<uint32_t>(total), static_cast<uint32_t>(n),
          static_cast<uint32_t>(inner));
    else
      expand_gridstride_kernel<T, int64_t><<<grid_1d(st, total, 256), 256, 0, st.stream>>>(a.data<T>(), out.data<T>(),
                                                                                          total, n, inner);
    LP_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace lowpass::cuda
