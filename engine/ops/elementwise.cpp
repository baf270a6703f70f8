// Element-wise ops and their backward rules (written with these same ops => higher order).
// Test: tests/test_elementwise.cpp.
#include "kernels/cpu/elementwise.h"

#include "engine/ops.h"
#include "engine/ops/dispatch.h"

namespace lowpass {

namespace {

Tensor run_unary(UnaryOp op, const Tensor& a, double p = 0.0) {
  LP_CHECK(a.defined(), "element-wise op on an undefined tensor");
  Tensor out = empty_like(a);
  LP_ON_DEVICE(a, cpu::unary(op, a, out, p), cuda::unary(op, a, out, p));
  return out;
}

Tensor run_binary(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  LP_SAME_DEVICE_DTYPE(a, b, name);
  Tensor out = empty_like(a, broadcast_shapes(a.shape(), b.shape()));
  LP_ON_DEVICE(a, cpu::binary(op, a, b, out), cuda::binary(op, a, b, out));
  return out;
}

// Gradient of a broadcast operand: reduce back to its shape.
Tensor unbroadcast(const Tensor& g, const Shape& shape) { return g.shape() == shape ? g : sum_to(g, shape); }
Tensor unbroadcast(const Tensor& g, const Tensor& like) { return unbroadcast(g, like.shape()); }

using Grads = std::vector<Tensor>;

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary(BinaryOp::Add, a, b, "add");
  // Shapes only: the rule needs no values, so the operands are not kept alive for it.
  return record("add", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g, const Tensor&,
                                                                     const std::vector<bool>& n) {
    return Grads{n[0] ? unbroadcast(g, sa) : Tensor(), n[1] ? unbroadcast(g, sb) : Tensor()};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary(BinaryOp::Sub, a, b, "sub");
  return record("sub", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g, const Tensor&,
                                                                     const std::vector<bool>& n) {
    return Grads{n[0] ? unbroadcast(g, sa) : Tensor(), n[1] ? unbroadcast(neg(g), sb) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary(BinaryOp::Mul, a, b, "mul");
  // Each operand is kept only for the other's gradient: mul(h, constant mask) keeps the mask, not h.
  Tensor keep_a = b.requires_grad() ? a : Tensor(), keep_b = a.requires_grad() ? b : Tensor();
  return record("mul", out, {a, b}, [keep_a, keep_b, sa = a.shape(), sb = b.shape()](
                                        const Tensor& g, const Tensor&, const std::vector<bool>& n) {
    return Grads{n[0] ? unbroadcast(mul(g, keep_b), sa) : Tensor(), n[1] ? unbroadcast(mul(g, keep_a), sb) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary(BinaryOp::Div, a, b, "div");
  return record("div", out, {a, b}, [a, b](const Tensor& g, const Tensor& out, const std::vector<bool>& n) {
    Tensor ga, gb;
    if (n[0]) ga = unbroadcast(div(g, b), a);
    if (n[1]) gb = unbroadcast(neg(div(mul(g, out), b)), b);
    return Grads{ga, gb};
  }, /*uses_output=*/true);
}

Tensor add_scalar(const Tensor& a, double s) {
  Tensor out = run_unary(UnaryOp::AddScalar, a, s);
  return record("add_scalar", out, {a}, [](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{g};
  });
}

Tensor mul_scalar(const Tensor& a, double s) {
  Tensor out = run_unary(UnaryOp::MulScalar, a, s);
  return record("mul_scalar", out, {a}, [s](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{mul_scalar(g, s)};
  });
}

Tensor pow_scalar(const Tensor& a, double p) {
  Tensor out = run_unary(UnaryOp::PowScalar, a, p);
  return record("pow_scalar", out, {a}, [a, p](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    if (p == 0.0) return Grads{zeros_like(g)};  // a^0 is constant: 0, not 0 · a^-1 (NaN at a = 0), as PyTorch
    if (p == 1.0) return Grads{g};
    if (p == 2.0) return Grads{mul(g, mul_scalar(a, 2.0))};
    return Grads{mul(g, mul_scalar(pow_scalar(a, p - 1.0), p))};
  });
}

Tensor neg(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Neg, a);
  return record("neg", out, {a}, [](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{neg(g)};
  });
}

Tensor sign(const Tensor& a) { return run_unary(UnaryOp::Sign, a); }

Tensor abs(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Abs, a);
  return record("abs", out, {a}, [a](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{mul(g, sign(a.detach()))};  // sign is constant: second derivative 0 (away from 0)
  });
}

Tensor square(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Square, a);
  return record("square", out, {a}, [a](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{mul(g, mul_scalar(a, 2.0))};
  });
}

Tensor sqrt(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Sqrt, a);
  return record("sqrt", out, {a}, [](const Tensor& g, const Tensor& out, const std::vector<bool>&) {
    return Grads{div(mul_scalar(g, 0.5), out)};
  }, /*uses_output=*/true);
}

Tensor rsqrt(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Rsqrt, a);
  return record("rsqrt", out, {a}, [](const Tensor& g, const Tensor& out, const std::vector<bool>&) {
    // d a^{-1/2} = -1/2 a^{-3/2} = -1/2 out^3
    return Grads{mul(g, mul_scalar(mul(out, square(out)), -0.5))};
  }, /*uses_output=*/true);
}

Tensor exp(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Exp, a);
  return record("exp", out, {a}, [](const Tensor& g, const Tensor& out, const std::vector<bool>&) {
    return Grads{mul(g, out)};
  }, /*uses_output=*/true);
}

Tensor log(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Log, a);
  return record("log", out, {a}, [a](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{div(g, a)};
  });
}

Tensor log1p(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Log1p, a);
  return record("log1p", out, {a}, [a](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{div(g, add_scalar(a, 1.0))};
  });
}

Tensor sigmoid(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Sigmoid, a);
  return record("sigmoid", out, {a}, [](const Tensor& g, const Tensor& out, const std::vector<bool>&) {
    return Grads{mul(g, mul(out, add_scalar(neg(out), 1.0)))};
  }, /*uses_output=*/true);
}

Tensor softplus(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Softplus, a);
  return record("softplus", out, {a}, [a](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{mul(g, sigmoid(a))};
  });
}

Tensor lgamma(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Lgamma, a);
  return record("lgamma", out, {a}, [a](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{mul(g, digamma(a))};
  });
}

Tensor digamma(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Digamma, a);
  return record("digamma", out, {a}, [a](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{mul(g, trigamma(a))};
  });
}

Tensor trigamma(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Trigamma, a);
  return record("trigamma", out, {a}, [](const Tensor&, const Tensor&, const std::vector<bool>&) -> Grads {
    throw Error("the gradient of trigamma (third derivative of lgamma) is not implemented");
  });
}

Tensor relu(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Relu, a);
  // The mask from the output (relu(a) > 0 exactly where a > 0), as PyTorch saves it: the input, often a conv's
  // output read by nothing else, is then freed after the forward pass. Detached: a rule may not hold its own output.
  Tensor od = out.detach();
  return record("relu", out, {a}, [od](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{relu_mask(g, od)};  // the mask is constant: second derivative 0
  });
}

Tensor relu_mask(const Tensor& g, const Tensor& a) {
  LP_CHECK(g.shape() == a.shape(), "relu_mask: shapes ", shape_str(g.shape()), " and ", shape_str(a.shape()));
  Tensor out = run_binary(BinaryOp::ReluMask, g, a, "relu_mask");
  Tensor ad = a.detach();
  return record("relu_mask", out, {g}, [ad](const Tensor& gg, const Tensor&, const std::vector<bool>&) {
    return Grads{relu_mask(gg, ad)};
  });
}

Tensor gt_scalar(const Tensor& a, double s) { return run_unary(UnaryOp::GtScalar, a, s); }
Tensor eq_scalar(const Tensor& a, double s) { return run_unary(UnaryOp::EqScalar, a, s); }

Tensor cast(const Tensor& a, DType t) {
  if (a.dtype() == t) return a;
  Tensor out = Tensor::empty(a.ctx(), a.shape(), t, a.device());
  LP_ON_DEVICE(a, cpu::cast(a, out), cuda::cast(a, out));
  DType from = a.dtype();
  return record("cast", out, {a}, [from](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{cast(g, from)};
  });
}

}  // namespace lowpass
