// Element-wise kernels (CPU): unary maps and broadcasting binary maps, float32/float64.
// out = f(a) or f(a, b) with numpy broadcasting; `p` is a scalar parameter where the op takes one.
#pragma once
#include "engine/tensor.h"

namespace lowpass {

enum class UnaryOp {
  Neg, Abs, Square, Sqrt, Rsqrt, Exp, Log, Log1p, Sigmoid, Softplus, Lgamma, Digamma, Trigamma,
  Relu, Sign, AddScalar, MulScalar, PowScalar, GtScalar, EqScalar, Copy
};
enum class BinaryOp { Add, Sub, Mul, Div, ReluMask /* a where b > 0 */ };

Shape broadcast_shapes(const Shape& a, const Shape& b);  // throws Error on mismatch

namespace cpu {
void unary(UnaryOp op, const Tensor& a, Tensor& out, double p);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);  // out has broadcast shape
void cast(const Tensor& a, Tensor& out);
}  // namespace cpu

namespace cuda {
void unary(UnaryOp op, const Tensor& a, Tensor& out, double p);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);
void cast(const Tensor& a, Tensor& out);
}  // namespace cuda

}  // namespace lowpass
