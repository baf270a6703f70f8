// CUDA element-wise kernels: unary maps, broadcasting binary maps, dtype casts (twins of
// kernels/cpu/elementwise.cpp). out[i] = f(a[i]) or f(a[ia(i)], b[ib(i)]); grid-stride loops.
// Test: build/tests/lowpass_tests -ts=cuda.
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/cuda_state.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/index.h"

namespace lowpass::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T, UnaryOp OP>
__global__ void unary_gridstride_kernel(const T* __restrict__ a, T* __restrict__ o, int64_t n, T p) {
  LP_GRID_STRIDE(i, n) o[i] = apply_unary<T, OP>(a[i], p);
}

template <typename T, BinaryOp OP>
__global__ void binary_same_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ o,
                                   int64_t n) {
  LP_GRID_STRIDE(i, n) o[i] = apply_binary<T, OP>(a[i], b[i]);
}

// One operand is a single value (scalar_is_b says which).
template <typename T, BinaryOp OP>
__global__ void binary_scalar_kernel(const T* __restrict__ v, const T* __restrict__ s, T* __restrict__ o,
                                     int64_t n, bool scalar_is_b) {
  T sv = s[0];
  if (scalar_is_b) {
    LP_GRID_STRIDE(i, n) o[i] = apply_binary<T, OP>(v[i], sv);
  } else {
    LP_GRID_STRIDE(i, n) o[i] = apply_binary<T, OP>(sv, v[i]);
  }
}

// I: uint32_t below 2^31 elements (32-bit divisions in broadcast_offsets), else int64_t.
template <typename T, BinaryOp OP, typename I>
__global__ void binary_broadcast_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ o, I n,
                                        BroadcastMap m) {
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    int64_t ia, ib;
    broadcast_offsets<I>(m, i, ia, ib);
    o[i] = apply_binary<T, OP>(a[ia], b[ib]);
  }
}

template <typename S, typename D>
__global__ void cast_gridstride_kernel(const S* __restrict__ a, D* __restrict__ o, int64_t n) {
  LP_GRID_STRIDE(i, n) o[i] = static_cast<D>(a[i]);
}

template <typename T, UnaryOp OP>
void launch_unary(const CudaState& st, const T* a, T* o, int64_t n, T p) {
  unary_gridstride_kernel<T, OP><<<grid_1d(st, n, kThreads), kThreads, 0, st.stream>>>(a, o, n, p);
  LP_CUDA_LAUNCH_CHECK();
}

template <typename T>
void unary_t(UnaryOp op, const Tensor& a, Tensor& out, double p) {
  int64_t n = a.numel();
  if (n == 0) return;
  const CudaState& st = state_of(a);
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  T pp = static_cast<T>(p);
  switch (op) {
#define LP_UNARY_CASE(OP) \
  case UnaryOp::OP: return launch_unary<T, UnaryOp::OP>(st, pa, po, n, pp);
    LP_UNARY_CASE(Neg) LP_UNARY_CASE(Abs) LP_UNARY_CASE(Square) LP_UNARY_CASE(Sqrt) LP_UNARY_CASE(Rsqrt)
    LP_UNARY_CASE(Exp) LP_UNARY_CASE(Log) LP_UNARY_CASE(Log1p) LP_UNARY_CASE(Sigmoid) LP_UNARY_CASE(Softplus)
    LP_UNARY_CASE(Lgamma) LP_UNARY_CASE(Digamma) LP_UNARY_CASE(Trigamma) LP_UNARY_CASE(Relu)
    LP_UNARY_CASE(Sign) LP_UNARY_CASE(AddScalar) LP_UNARY_CASE(MulScalar) LP_UNARY_CASE(PowScalar)
    LP_UNARY_CASE(GtScalar) LP_UNARY_CASE(EqScalar) LP_UNARY_CASE(Copy)
#undef LP_UNARY_CASE
  }
  LP_ASSERT(false, "cuda::unary: unknown op ", static_cast<int>(op));
}

template <typename T, BinaryOp OP>
void binary_op_t(const Tensor& a, const Tensor& b, Tensor& out) {
  const CudaState& st = state_of(out);
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  int64_t n = out.numel();
  unsigned grid = grid_1d(st, n, kThreads);
  if (a.shape() == b.shape()) {
    binary_same_kernel<T, OP><<<grid, kThreads, 0, st.stream>>>(pa, pb, po, n);
  } else if (b.numel() == 1 && a.numel() == n) {
    binary_scalar_kernel<T, OP><<<grid, kThreads, 0, st.stream>>>(pa, pb, po, n, true);
  } else if (a.numel() == 1 && b.numel() == n) {
    binary_scalar_kernel<T, OP><<<grid, kThreads, 0, st.stream>>>(pb, pa, po, n, false);
  } else {
    BroadcastMap m = make_broadcast_map(out.shape(), a.shape(), b.shape());
    if (n < (int64_t{1} << 31))
      binary_broadcast_kernel<T, OP, uint32_t><<<grid, kThreads, 0, st.stream>>>(pa, pb, po, static_cast<uint32_t>(n),
                                                                                m);
    else
      binary_broadcast_kernel<T, OP, int64_t><<<grid, kThreads, 0, st.stream>>>(pa, pb, po, n, m);
  }
  LP_CUDA_LAUNCH_CHECK();
}

template <typename T>
void binary_t(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  if (out.numel() == 0) return;
  switch (op) {
    case BinaryOp::Add: return binary_op_t<T, BinaryOp::Add>(a, b, out);
    case BinaryOp::Sub: return binary_op_t<T, BinaryOp::Sub>(a, b, out);
    case BinaryOp::Mul: return binary_op_t<T, BinaryOp::Mul>(a, b, out);
    case BinaryOp::Div: return binary_op_t<T, BinaryOp::Div>(a, b, out);
    case BinaryOp::ReluMask: return binary_op_t<T, BinaryOp::ReluMask>(a, b, out);
  }
  LP_ASSERT(false, "cuda::binary: unknown op ", static_cast<int>(op));
}

}  // namespace

void unary(UnaryOp op, const Tensor& a, Tensor& out, double p) {
  LP_ASSERT(a.dtype() == out.dtype() && a.numel() == out.numel() && !a.is_cpu() && !out.is_cpu());
  dispatch_dtype(a.dtype(), [&]<typename T>() { unary_t<T>(op, a, out, p); });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  LP_ASSERT(a.dtype() == b.dtype() && a.dtype() == out.dtype() && !a.is_cpu() && !b.is_cpu() && !out.is_cpu());
  dispatch_dtype(a.dtype(), [&]<typename T>() { binary_t<T>(op, a, b, out); });
}

void cast(const Tensor& a, Tensor& out) {
  LP_ASSERT(a.numel() == out.numel() && !a.is_cpu() && !out.is_cpu());
  int64_t n = a.numel();
  if (n == 0) return;
  const CudaState& st = state_of(a);
  dispatch_dtype(a.dtype(), [&]<typename S>() {
    dispatch_dtype(out.dtype(), [&]<typename D>() {
      cast_gridstride_kernel<S, D><<<grid_1d(st, n, kThreads), kThreads, 0, st.stream>>>(a.data<S>(), out.data<D>(), n);
      LP_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace lowpass::cuda
