// CPU element-wise kernels: contiguous fast paths, a strided loop for broadcasting.
// Test: tests/test_elementwise.cpp.
#include "kernels/cpu/elementwise.h"

#include <cmath>

#include "kernels/cpu/parallel.h"

namespace lowpass {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    LP_CHECK(da == db || da == 1 || db == 1, "shapes ", shape_str(a), " and ", shape_str(b), " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace cpu {
namespace {

template <typename T>
T digamma_t(T x) {
  // Reflection for x < 0.5, recurrence up to 10, then the asymptotic series ln x − 1/2x − Σ_{k=1..7} B_2k/(2k·x^2k)
  // (the first term left out is ~4e-17 at x = 10; cut after x^-10 at 6, the error was ~1e-10).
  if (x < T(0.5)) return digamma_t(T(1) - x) - T(M_PI) / std::tan(T(M_PI) * x);
  T r = 0;
  while (x < 10) { r -= 1 / x; x += 1; }
  T f = 1 / (x * x);
  T s = T(691.0 / 32760) - f * T(1.0 / 12);  // Horner, innermost first
  s = T(1.0 / 132) - f * s;
  s = T(1.0 / 240) - f * s;
  s = T(1.0 / 252) - f * s;
  s = T(1.0 / 120) - f * s;
  s = T(1.0 / 12) - f * s;
  return r + std::log(x) - T(0.5) / x - f * s;
}

template <typename T>
T trigamma_t(T x) {
  if (x < T(0.5)) {  // reflection: ψ1(1-x) + ψ1(x) = π² / sin²(πx)
    T s = std::sin(T(M_PI) * x);
    return T(M_PI * M_PI) / (s * s) - trigamma_t(T(1) - x);
  }
  // Recurrence up to 10, then 1/x + 1/2x² + Σ_{k=1..7} B_2k/x^(2k+1) (cut after x^-9 at 6, the error was ~1e-9).
  T r = 0;
  while (x < 10) { r += 1 / (x * x); x += 1; }
  T f = 1 / (x * x);
  T s = T(691.0 / 2730) - f * T(7.0 / 6);  // Horner, innermost first
  s = T(5.0 / 66) - f * s;
  s = T(1.0 / 30) - f * s;
  s = T(1.0 / 42) - f * s;
  s = T(1.0 / 30) - f * s;
  s = T(1.0 / 6) - f * s;
  return r + 1 / x + f / 2 + (f / x) * s;
}

template <typename T>
inline T apply_unary(UnaryOp op, T x, T p) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Log1p: return std::log1p(x);
    case UnaryOp::Sigmoid: return x >= 0 ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
    case UnaryOp::Softplus: return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    case UnaryOp::Lgamma: return std::lgamma(x);
    case UnaryOp::Digamma: return digamma_t(x);
    case UnaryOp::Trigamma: return trigamma_t(x);
    case UnaryOp::Relu: return !(x <= T(0)) ? x : T(0);  // NaN stays NaN (as in PyTorch), not 0
    case UnaryOp::Sign: return x > 0 ? T(1) : (x < 0 ? T(-1) : T(0));
    case UnaryOp::AddScalar: return x + p;
    case UnaryOp::MulScalar: return x * p;
    case UnaryOp::PowScalar: return p == T(2) ? x * x : std::pow(x, p);
    case UnaryOp::GtScalar: return x > p ? T(1) : T(0);
    case UnaryOp::EqScalar: return x == p ? T(1) : T(0);
    case UnaryOp::Copy: return x;
  }
  return x;
}

template <typename T>
inline T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::ReluMask: return !(b <= T(0)) ? a : T(0);  // passes where relu's input is NaN, as PyTorch
  }
  return a;
}

template <typename T, UnaryOp OP>
void unary_loop(const Context& ctx, const T* a, T* o, int64_t n, T p) {
  parallel_chunks(ctx, n, 1 << 15, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) o[i] = apply_unary<T>(OP, a[i], p);
  });
}

template <typename T>
void unary_t(UnaryOp op, const Tensor& a, Tensor& out, double p) {
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  int64_t n = a.numel();
  T pp = static_cast<T>(p);
  const Context& ctx = a.ctx();
  switch (op) {  // instantiate the hot ones so the switch leaves the inner loop
    case UnaryOp::Relu: return unary_loop<T, UnaryOp::Relu>(ctx, pa, po, n, pp);
    case UnaryOp::MulScalar: return unary_loop<T, UnaryOp::MulScalar>(ctx, pa, po, n, pp);
    case UnaryOp::AddScalar: return unary_loop<T, UnaryOp::AddScalar>(ctx, pa, po, n, pp);
    case UnaryOp::Abs: return unary_loop<T, UnaryOp::Abs>(ctx, pa, po, n, pp);
    case UnaryOp::Square: return unary_loop<T, UnaryOp::Square>(ctx, pa, po, n, pp);
    case UnaryOp::Neg: return unary_loop<T, UnaryOp::Neg>(ctx, pa, po, n, pp);
    case UnaryOp::Sign: return unary_loop<T, UnaryOp::Sign>(ctx, pa, po, n, pp);
    case UnaryOp::Copy: return unary_loop<T, UnaryOp::Copy>(ctx, pa, po, n, pp);
    default:
      parallel_chunks(ctx, n, 1 << 13, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) po[i] = apply_unary<T>(op, pa[i], pp);
      });
  }
}

template <typename T, BinaryOp OP>
void binary_same(const Context& ctx, const T* a, const T* b, T* o, int64_t n) {
  parallel_chunks(ctx, n, 1 << 15, [&](int64_t s, int64_t e) {
#pragma omp simd
    for (int64_t i = s; i < e; ++i) o[i] = apply_binary<T>(OP, a[i], b[i]);
  });
}

template <typename T>
void binary_t(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  const Context& ctx = a.ctx();
  int64_t n = out.numel();
  if (a.shape() == b.shape()) {
    switch (op) {
      case BinaryOp::Add: return binary_same<T, BinaryOp::Add>(ctx, pa, pb, po, n);
      case BinaryOp::Sub: return binary_same<T, BinaryOp::Sub>(ctx, pa, pb, po, n);
      case BinaryOp::Mul: return binary_same<T, BinaryOp::Mul>(ctx, pa, pb, po, n);
      case BinaryOp::Div: return binary_same<T, BinaryOp::Div>(ctx, pa, pb, po, n);
      case BinaryOp::ReluMask: return binary_same<T, BinaryOp::ReluMask>(ctx, pa, pb, po, n);
    }
  }
  if (b.numel() == 1 || a.numel() == 1) {
    bool bs = b.numel() == 1;
    T s = bs ? pb[0] : pa[0];
    const T* v = bs ? pa : pb;
    parallel_chunks(ctx, n, 1 << 15, [&](int64_t st, int64_t e) {
      for (int64_t i = st; i < e; ++i) po[i] = bs ? apply_binary<T>(op, v[i], s) : apply_binary<T>(op, s, v[i]);
    });
    return;
  }
  // General broadcast: strides of a and b in the output's index space (0 on broadcast axes).
  const Shape& os = out.shape();
  int64_t nd = static_cast<int64_t>(os.size());
  std::vector<int64_t> sa(nd, 0), sb(nd, 0);
  auto fill_strides = [&](const Shape& s, std::vector<int64_t>& st) {
    int64_t stride = 1;
    for (int64_t i = nd - 1, j = static_cast<int64_t>(s.size()) - 1; j >= 0; --i, --j) {
      st[i] = s[j] == 1 ? 0 : stride;
      stride *= s[j];
    }
  };
  fill_strides(a.shape(), sa);
  fill_strides(b.shape(), sb);
  int64_t inner = nd ? os[nd - 1] : 1;
  int64_t rows = inner ? n / inner : 0;
  parallel_for(ctx, rows, 64, [&](int64_t r) {
    int64_t ia = 0, ib = 0, rem = r;
    for (int64_t d = nd - 2; d >= 0; --d) {
      int64_t idx = rem % os[d];
      rem /= os[d];
      ia += idx * sa[d];
      ib += idx * sb[d];
    }
    int64_t la = nd ? sa[nd - 1] : 0, lb = nd ? sb[nd - 1] : 0;
    T* o = po + r * inner;
    for (int64_t i = 0; i < inner; ++i) o[i] = apply_binary<T>(op, pa[ia + i * la], pb[ib + i * lb]);
  });
}

}  // namespace

void unary(UnaryOp op, const Tensor& a, Tensor& out, double p) {
  dispatch_dtype(a.dtype(), [&]<typename T>() { unary_t<T>(op, a, out, p); });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  LP_ASSERT(a.dtype() == b.dtype() && a.dtype() == out.dtype());
  dispatch_dtype(a.dtype(), [&]<typename T>() { binary_t<T>(op, a, b, out); });
}

void cast(const Tensor& a, Tensor& out) {
  const int64_t n = a.numel();  // once: the stores may alias the shape, which kept the loop from vectorising
  dispatch_dtype(a.dtype(), [&]<typename S>() {
    dispatch_dtype(out.dtype(), [&]<typename D>() {
      const S* pa = a.data<S>();
      D* po = out.data<D>();
      for (int64_t i = 0; i < n; ++i) po[i] = static_cast<D>(pa[i]);
    });
  });
}

}  // namespace cpu
}  // namespace lowpass
