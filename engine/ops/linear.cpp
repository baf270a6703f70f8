// Dense ops: matmul (2-D and batched 3-D) and linear (x·wᵀ + b), on the row-major GEMM kernels (cuBLAS on CUDA).
// C = op(A)·op(B) is one recorded op whose backward uses itself with other transpose flags.
// Test: build/tests/lowpass_tests -ts=linear
#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/gemm.h"

namespace lowpass {

namespace {

using Grads = std::vector<Tensor>;

// Matrix view sizes of a 2-D or 3-D operand: (batch, rows, cols) as stored.
struct MatDims {
  int64_t batch, rows, cols;
};
MatDims mat_dims(const Tensor& t, const char* what) {
  LP_CHECK(t.defined(), "matmul: ", what, " is undefined");
  LP_CHECK(t.dim() == 2 || t.dim() == 3, "matmul: ", what, " must be 2-D (M, K) or 3-D (B, M, K), got ", t.describe());
  if (t.dim() == 2) return {1, t.size(0), t.size(1)};
  return {t.size(0), t.size(1), t.size(2)};
}

// C = op(A) · op(B), batched over a leading axis when both are 3-D. Differentiable to any order.
Tensor gemm_op(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  LP_SAME_DEVICE_DTYPE(a, b, "matmul");
  LP_CHECK(a.dim() == b.dim(), "matmul: operands must both be 2-D or both 3-D, got ", a.describe(), " and ",
           b.describe());
  MatDims da = mat_dims(a, "left operand"), db = mat_dims(b, "right operand");
  LP_CHECK(da.batch == db.batch, "matmul: batch sizes differ: ", a.describe(), " and ", b.describe());
  const int64_t M = ta ? da.cols : da.rows, K = ta ? da.rows : da.cols;
  const int64_t Kb = tb ? db.cols : db.rows, N = tb ? db.rows : db.cols;
  LP_CHECK(K == Kb, "matmul: inner sizes differ (", K, " vs ", Kb, ") for ", a.describe(), " and ", b.describe());
  Shape os = a.dim() == 2 ? Shape{M, N} : Shape{da.batch, M, N};
  Tensor out = empty_like(a, os);
  auto cpu_gemm = [&] {
    dispatch_dtype(a.dtype(), [&]<typename T>() {
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* pc = out.data<T>();
      for (int64_t i = 0; i < da.batch; ++i)
        cpu::gemm<T>(a.ctx(), ta, tb, M, N, K, T(1), pa + i * da.rows * da.cols, da.cols, pb + i * db.rows * db.cols,
                     db.cols, T(0), pc + i * M * N, N);
    });
  };
  LP_ON_DEVICE(a, cpu_gemm(), cuda::gemm_rowmajor(a, b, out, ta, tb, da.batch, M, N, K));
  return record("matmul", out, {a, b}, [a, b, ta, tb](const Tensor& g, const Tensor&, const std::vector<bool>& n) {
    Tensor ga, gb;
    if (!ta && !tb) {  // C = A B
      if (n[0]) ga = gemm_op(g, b, false, true);
      if (n[1]) gb = gemm_op(a, g, true, false);
    } else if (!ta && tb) {  // C = A Bᵀ
      if (n[0]) ga = gemm_op(g, b, false, false);
      if (n[1]) gb = gemm_op(g, a, true, false);
    } else if (ta && !tb) {  // C = Aᵀ B
      if (n[0]) ga = gemm_op(b, g, false, true);
      if (n[1]) gb = gemm_op(a, g, false, false);
    } else {  // C = Aᵀ Bᵀ
      if (n[0]) ga = gemm_op(b, g, true, true);
      if (n[1]) gb = gemm_op(g, a, true, true);
    }
    return Grads{ga, gb};
  });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) { return gemm_op(a, b, false, false); }

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  LP_CHECK(x.defined() && w.defined(), "linear: x and w must be defined");
  LP_CHECK(x.dim() == 2, "linear: x must be (N, In), got ", x.describe());
  LP_CHECK(w.dim() == 2, "linear: w must be (Out, In), got ", w.describe());
  LP_CHECK(x.size(1) == w.size(1), "linear: x has ", x.size(1), " features but w expects ", w.size(1), " (",
           x.describe(), " vs ", w.describe(), ")");
  Tensor y = gemm_op(x, w, false, true);  // (N, Out)
  if (!bias.defined()) return y;
  LP_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0), "linear: bias must be (", w.size(0), "), got ",
           bias.describe());
  return add(y, bias);  // broadcast over N; gradient sums over N
}

}  // namespace lowpass
