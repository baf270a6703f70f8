// Device twins of the CPU element-wise maths (kernels/cpu/elementwise.cpp): same formulas, same
// branches, float or double. digamma: reflection, recurrence to 10, asymptotic series; trigamma alike.
// Test: build/tests/lowpass_tests -ts=cuda.
#pragma once
#include <cuda_runtime.h>

#include "kernels/cpu/elementwise.h"

namespace lowpass::cuda {

template <typename T>
__device__ inline T lp_pi() { return T(3.14159265358979323846); }

template <typename T>
__device__ T digamma_d(T x) {
  T r = 0;
  if (x < T(0.5)) {  // ψ(x) = ψ(1 - x) - π / tan(πx)
    r = -lp_pi<T>() / tan(lp_pi<T>() * x);
    x = T(1) - x;
  }
  while (x < 10) { r -= 1 / x; x += 1; }
  T f = 1 / (x * x);
  T s = T(691.0 / 32760) - f * T(1.0 / 12);  // Horner, innermost first
  s = T(1.0 / 132) - f * s;
  s = T(1.0 / 240) - f * s;
  s = T(1.0 / 252) - f * s;
  s = T(1.0 / 120) - f * s;
  s = T(1.0 / 12) - f * s;
  return r + log(x) - T(0.5) / x - f * s;
}

template <typename T>
__device__ T trigamma_d(T x) {
  T r = 0, sign = 1;
  if (x < T(0.5)) {  // ψ1(x) = π² / sin²(πx) - ψ1(1 - x)
    T s = sin(lp_pi<T>() * x);
    r = lp_pi<T>() * lp_pi<T>() / (s * s);
    sign = -1;
    x = T(1) - x;
  }
  T t = 0;
  while (x < 10) { t += 1 / (x * x); x += 1; }
  T f = 1 / (x * x);
  T s = T(691.0 / 2730) - f * T(7.0 / 6);  // Horner, innermost first
  s = T(5.0 / 66) - f * s;
  s = T(1.0 / 30) - f * s;
  s = T(1.0 / 42) - f * s;
  s = T(1.0 / 30) - f * s;
  s = T(1.0 / 6) - f * s;
  t += 1 / x + f / 2 + (f / x) * s;
  return r + sign * t;
}

template <typename T, UnaryOp OP>
__device__ __forceinline__ T apply_unary(T x, T p) {
  if constexpr (OP == UnaryOp::Neg) return -x;
  else if constexpr (OP == UnaryOp::Abs) return fabs(x);
  else if constexpr (OP == UnaryOp::Square) return x * x;
  else if constexpr (OP == UnaryOp::Sqrt) return sqrt(x);
  else if constexpr (OP == UnaryOp::Rsqrt) return T(1) / sqrt(x);
  else if constexpr (OP == UnaryOp::Exp) return exp(x);
  else if constexpr (OP == UnaryOp::Log) return log(x);
  else if constexpr (OP == UnaryOp::Log1p) return log1p(x);
  else if constexpr (OP == UnaryOp::Sigmoid) return x >= 0 ? T(1) / (T(1) + exp(-x)) : exp(x) / (T(1) + exp(x));
  else if constexpr (OP == UnaryOp::Softplus) return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
  else if constexpr (OP == UnaryOp::Lgamma) return lgamma(x);
  else if constexpr (OP == UnaryOp::Digamma) return digamma_d(x);
  else if constexpr (OP == UnaryOp::Trigamma) return trigamma_d(x);
  else if constexpr (OP == UnaryOp::Relu) return !(x <= T(0)) ? x : T(0);  // NaN stays NaN, as on the CPU
  else if constexpr (OP == UnaryOp::Sign) return x > 0 ? T(1) : (x < 0 ? T(-1) : T(0));
  else if constexpr (OP == UnaryOp::AddScalar) return x + p;
  else if constexpr (OP == UnaryOp::MulScalar) return x * p;
  else if constexpr (OP == UnaryOp::PowScalar) return p == T(2) ? x * x : pow(x, p);
  else if constexpr (OP == UnaryOp::GtScalar) return x > p ? T(1) : T(0);
  else if constexpr (OP == UnaryOp::EqScalar) return x == p ? T(1) : T(0);
  else return x;  // Copy
}

template <typename T, BinaryOp OP>
__device__ __forceinline__ T apply_binary(T a, T b) {
  if constexpr (OP == BinaryOp::Add) return a + b;
  else if constexpr (OP == BinaryOp::Sub) return a - b;
  else if constexpr (OP == BinaryOp::Mul) return a * b;
  else if constexpr (OP == BinaryOp::Div) return a / b;
  else return !(b <= T(0)) ? a : T(0);  // ReluMask: passes where the input is NaN, as on the CPU
}

}  // namespace lowpass::cuda
