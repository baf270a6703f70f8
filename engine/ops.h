// The engine's differentiable ops (forward + backward rule written with these same ops, so every
// op has a gradient of its gradient). One file per family under engine/ops/; kernels live in
// kernels/cpu/<op>.cpp and kernels/cuda/<op>.cu. Tests: tests/test_<family>.cpp.
// Dimension letters: B batch, C channels, L length, K kernel taps, T tasks, S strands, O outputs.
#pragma once
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/tensor.h"

namespace lowpass {

// ---------------- element-wise (engine/ops/elementwise.cpp) ----------------
// Binary ops broadcast numpy-style; the gradient is reduced back with sum_to.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& a, double s);
Tensor mul_scalar(const Tensor& a, double s);
Tensor pow_scalar(const Tensor& a, double p);  // a^p, p any real (a > 0 unless p integer)
Tensor neg(const Tensor& a);
Tensor abs(const Tensor& a);          // d/da = sign(a) (0 at 0), second derivative 0
Tensor square(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor rsqrt(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor log1p(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor softplus(const Tensor& a);     // log(1 + e^a), stable
Tensor lgamma(const Tensor& a);       // d/da = digamma(a); d2 = trigamma
Tensor digamma(const Tensor& a);
Tensor trigamma(const Tensor& a);     // derivative of this one is not implemented (throws)
Tensor relu(const Tensor& a);         // backward: relu_mask(g, a); second derivative 0
Tensor relu_mask(const Tensor& g, const Tensor& a);  // g where a > 0 else 0 (linear in g)
Tensor sign(const Tensor& a);         // not differentiable (constant)
Tensor cast(const Tensor& a, DType t);
// Constant-valued comparisons (no gradient): 1 where true else 0.
Tensor gt_scalar(const Tensor& a, double s);
Tensor eq_scalar(const Tensor& a, double s);

// ---------------- reductions & broadcasting (engine/ops/reduce.cpp) ----------------
Tensor sum(const Tensor& a, const std::vector<int64_t>& axes, bool keepdim = false);
Tensor mean(const Tensor& a, const std::vector<int64_t>& axes, bool keepdim = false);
Tensor sum_all(const Tensor& a);   // shape ()
Tensor mean_all(const Tensor& a);  // shape ()
Tensor broadcast_to(const Tensor& a, const Shape& shape);
Tensor sum_to(const Tensor& a, const Shape& shape);  // adjoint of broadcast_to
Tensor max_detached(const Tensor& a, int64_t axis, bool keepdim = true);  // no gradient
Tensor matmul(const Tensor& a, const Tensor& b);  // (M,K)x(K,N); batched (B,M,K)x(B,K,N) too

// ---------------- shape (engine/ops/shape.cpp) ----------------
Tensor reshape(const Tensor& a, const Shape& shape);  // one -1 allowed; shares storage
Tensor permute(const Tensor& a, const std::vector<int64_t>& perm);
Tensor transpose(const Tensor& a, int64_t d0, int64_t d1);
Tensor flip(const Tensor& a, const std::vector<int64_t>& axes);
Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t length);   // crop
Tensor pad(const Tensor& a, int64_t dim, int64_t before, int64_t after);    // zero pad (adjoint of slice)
Tensor concat(const std::vector<Tensor>& parts, int64_t dim);
Tensor index_select(const Tensor& a, int64_t dim, const std::vector<int64_t>& index);
Tensor index_add(const Tensor& g, int64_t dim, const std::vector<int64_t>& index, int64_t size);  // adjoint
Tensor center_crop(const Tensor& a, int64_t dim, int64_t length);

// ---------------- convolution & dense (engine/ops/conv1d.cpp, linear.cpp) ----------------
struct Conv1dOpts {
  int64_t dilation = 1;
  int64_t pad_left = 0;   // zero padding; 'same' = dilation*(K-1)/2 on both sides (K odd)
  int64_t pad_right = 0;
  int64_t groups = 1;
  static Conv1dOpts valid(int64_t dilation = 1) { return {dilation, 0, 0, 1}; }
  static Conv1dOpts same(int64_t k, int64_t dilation = 1);
};
// x (B, Cin, L), w (Cout, Cin/groups, K), bias (Cout) or undefined -> (B, Cout, Lout),
// Lout = L + pad_left + pad_right - dilation*(K-1). Stride 1.
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv1dOpts& o = {});
// relu(conv1d(x, w, bias, o)), plus `residual` (shaped as the output) when it is defined: a conv–ReLU(–residual add)
// of the profile trunk. When nothing would be recorded (grad mode off, or no input requires grad) and x is a float32
// CPU tensor that takes the direct kernel, one pass (the kernel's epilogue, no intermediate) with the same bits as
// the ops composed; otherwise the ops composed, recording what they record. Test: -ts=conv1d
Tensor conv1d_relu(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv1dOpts& o = {},
                   const Tensor& residual = Tensor());
// The two adjoints of conv1d (linear in each argument); each one's gradient uses the others.
Tensor conv1d_input_grad(const Tensor& dy, const Tensor& w, int64_t L_in, const Conv1dOpts& o);
Tensor conv1d_weight_grad(const Tensor& x, const Tensor& dy, int64_t K, const Conv1dOpts& o);
// x (N, In), w (Out, In), bias (Out) -> (N, Out). x·wᵀ + b.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);

// ---------------- neural-net layers (engine/ops/nn.cpp) ----------------
// Batch norm over the channel axis 1 of x (B, C) or (B, C, L). Training mode normalises with the
// batch statistics (biased variance) and updates running stats in place (unbiased variance,
// PyTorch's rule); eval mode uses the running stats. gamma/beta (C) may be undefined.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean,
                  Tensor running_var, bool training, double momentum = 0.1, double eps = 1e-5);
// The training-mode batch-norm input gradient as an op of (g, x, gamma): dx = γ·s·(g − mean(g) − x̂·mean(g·x̂)) with
// x̂ = (x − mean)·s, s = invstd, where mean and invstd (C) must be the batch statistics of x with this eps (the
// forward's). batch_norm's backward under create_graph returns it; its own backward (batch norm's second derivatives)
// is one fused rule that accounts for the statistics' dependence on x (kernels/cpu/nn.h, batch_norm_bwd2); a third
// derivative goes through the rule composed from ops.
Tensor batch_norm_input_grad(const Tensor& g, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                             const Tensor& invstd, double eps);
// Max pool along L: x (B, C, L) -> (B, C, floor((L - k)/stride) + 1). Ties go to the first.
Tensor max_pool1d(const Tensor& x, int64_t kernel, int64_t stride);
Tensor global_avg_pool1d(const Tensor& x);  // (B, C, L) -> (B, C)
// Inverted dropout (training): each element kept with probability 1 − p and then scaled by 1/(1 − p), else 0; the
// mask is drawn from ctx's generator on the host (uniform u > p, in x's dtype) and moved to x's device, and is a
// constant for the gradient (d/dx = mask). p in [0, 1); p = 0 returns x itself.
Tensor dropout(const Tensor& x, double p, Context& ctx);
Tensor log_softmax(const Tensor& x, int64_t dim);
Tensor softmax(const Tensor& x, int64_t dim);

// ---------------- spectral (engine/ops/spectral.cpp) ----------------
// Gaussian smoothing along the last axis, zero padding, the reference's 7-tap kernel for
// sigma 3 (truncate at 1 sigma, normalised to sum 1; sigma 0 = identity). x (..., L) -> (..., L).
std::vector<double> gaussian_kernel(double sigma);
Tensor smooth_gaussian(const Tensor& x, double sigma);
// Real DFT along the last axis: x (..., L) -> Re/Im of X_k = Σ_n x_n e^{-2πikn/L}, k = 0..L/2.
Tensor rfft_real(const Tensor& x);
Tensor rfft_imag(const Tensor& x);
// Adjoints (..., L/2+1) -> (..., L): rfft_real_adjoint(g)_n = Σ_k g_k cos(2πkn/L), imag: -Σ g_k sin.
Tensor rfft_real_adjoint(const Tensor& g, int64_t L);
Tensor rfft_imag_adjoint(const Tensor& g, int64_t L);
// |rfft(x)| along the last axis (..., L/2+1); gradient at |X_k| = 0 is taken as 0.
Tensor rfft_magnitude(const Tensor& x);

// ---------------- the Fourier prior (engine/ops/prior.cpp) ----------------
// Per selected row r of attributions attr (B, C, L) (REFERENCE §1.2): u = Σ_c |attr_r|, s = smooth_gaussian(u, σ),
// m = |rfft(s)|, out_p = 1 − Σ_{f=1..L/2} w_{f−1}·m_f / Σ_{f≥0} m_f (denominator 1 when 0); weights has L/2 entries.
// Returns (P) for P = rows.size(). One fused kernel chain per backend; its backward is one fused chain too,
// and under create_graph it is the composed version's (so gradients of gradients exist).
Tensor fourier_prior_scores(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& weights,
                            double sigma);
// The same function composed from the ops above (the reference for tests and for higher-order gradients).
Tensor fourier_prior_scores_composed(const Tensor& attr, const std::vector<int64_t>& rows,
                                     const std::vector<double>& weights, double sigma);

// ---------------- operators ----------------
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double s) { return add_scalar(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add_scalar(a, -s); }
inline Tensor operator*(const Tensor& a, double s) { return mul_scalar(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul_scalar(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return mul_scalar(a, 1.0 / s); }

}  // namespace lowpass
