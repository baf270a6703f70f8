// Kernels behind the neural-net layer ops: batch-norm statistics / affine / fused backward, max-pool
// with argmax routing, softmax and log-softmax, DeepLIFT's rescale rules. Test: tests/test_nn.cpp.
// Legend: B batch, C channels, L length (x is (B, C, L), or (B, C) read as L = 1), Lo pooled length.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace lowpass {
namespace cpu {
// Per-channel mean (C) and biased variance (C) of x over (B, L); accumulated in double.
void channel_stats(const Tensor& x, Tensor& mean, Tensor& var);
// y[b, c, l] = x[b, c, l] * scale[c] + shift[c].
void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& y);
// y[b, c, l] = g[b, c, l] * a[c] + h[b, c, l] * bc[c] + cc[c] (training-mode BN input gradient).
void channel_affine2(const Tensor& g, const Tensor& h, const Tensor& a, const Tensor& bc, const Tensor& cc, Tensor& y);
// Fused first-order batch-norm backward with n = B·L, xhat = (x - mean)·invstd:
// dx = gamma·invstd·(g - Σg/n - xhat·Σ(g·xhat)/n), dgamma = Σ g·xhat, dbeta = Σ g (sums over B, L).
// gamma may be undefined (= 1).
void batch_norm_bwd(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& gamma,
                    Tensor& dx, Tensor& dgamma, Tensor& dbeta);
// The rule behind batch norm's second derivatives: the vector-Jacobian product of the training-mode input gradient
// dx(g, x, gamma) = gamma·s·(g − ḡ − x̂·m) (the batch statistics recomputed from x: mean, s = invstd, x̂ = (x − mean)·s,
// ḡ = Σg/n, m = Σ(g·x̂)/n) with an upstream u of the shape of x, in one sum pass and one element-wise pass:
//   dg     = gamma·s·(u − ū − x̂·k)                                        (k = Σ(u·x̂)/n, ū = Σu/n)
//   dx     = gamma·s²·((3·m·k − a)·x̂ − m·(u − ū) − k·(g − ḡ))              (a = Σ(u·g)/n − ū·ḡ)
//   dgamma = s·n·(a − m·k)
// Sums in double. Any of dg, dx, dgamma may be undefined (not computed); gamma may be undefined (= 1).
void batch_norm_bwd2(const Tensor& u, const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                     const Tensor& gamma, Tensor& dg, Tensor& dx, Tensor& dgamma);
// out (B, C, Lo)[j] = max of x over [j·stride, j·stride + kernel); idx (B·C·Lo) = its position in
// the row (first maximum on ties).
void max_pool1d_fwd(const Tensor& x, Tensor& out, int32_t* idx, int64_t kernel, int64_t stride);
// out (B, C, L) = 0, then out[b, c, idx[b, c, j]] += g[b, c, j] (adjoint of the gather).
void max_pool1d_scatter(const Tensor& g, Tensor& out, const int32_t* idx);
// out (B, C, Lo)[j] = h[b, c, idx[b, c, j]].
void max_pool1d_gather(const Tensor& h, Tensor& out, const int32_t* idx);
// Along the middle axis of an (outer, n, inner) view: out = x - max - log Σ exp(x - max); softmax = exp of it.
void log_softmax(const Tensor& x, Tensor& out, int64_t outer, int64_t n, int64_t inner);
void softmax(const Tensor& x, Tensor& out, int64_t outer, int64_t n, int64_t inner);
// DeepLIFT's rules (models/attr/deeplift.cpp) on a [x; r] batch: the first n elements of each tensor of 2n are the
// inputs', the other n their references'. Arithmetic in double, one rounding to the dtype per output.
// Rescale: Δin = in[i] − in[i + n]; where |Δin| < eps, res = regular (both halves); elsewhere, for a ReLU (out
// defined, num (2n) the upstream gradient) res[h·n + i] = num[h·n + i]·(out[i] − out[i + n])/Δin, for a max-pool
// (out undefined, num (n) the routed sum U) res[h·n + i] = num[i]/Δin.
void deeplift_rescale(const Tensor& in, const Tensor& num, const Tensor& out, const Tensor& regular, double eps,
                      Tensor& res);
// The ReLU rescale rule on a batch [x (U rows); r (P rows)] whose reference row j pairs with input row owner[j]
// (a row: in.numel() / (U + P) elements): res of row U + j is the input half's result of deeplift_rescale for the pair
// (x row owner[j], r row U + j), with num = g of row U + j and the regular gradient g·[in_x > 0] (relu_mask's rule on
// the input's row); rows < U get 0. The gradient of the input half of each pair, carried on its reference's row.
void deeplift_rescale_owned(const Tensor& in, const Tensor& g, const Tensor& out, const std::vector<int64_t>& owner,
                            double eps, Tensor& res);
// The max-pool rule's seed (captum): with y = out[i], y0 = out[i + n], m = max(y, y0):
// G[i] = g[i]·(m − y0), G[i + n] = g[i + n]·(y − m).
void deeplift_pool_seed(const Tensor& out, const Tensor& g, Tensor& G);
}  // namespace cpu

namespace cuda {
void channel_stats(const Tensor& x, Tensor& mean, Tensor& var);
void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& y);
void channel_affine2(const Tensor& g, const Tensor& h, const Tensor& a, const Tensor& bc, const Tensor& cc, Tensor& y);
void batch_norm_bwd(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& gamma,
                    Tensor& dx, Tensor& dgamma, Tensor& dbeta);
void batch_norm_bwd2(const Tensor& u, const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                     const Tensor& gamma, Tensor& dg, Tensor& dx, Tensor& dgamma);
void max_pool1d_fwd(const Tensor& x, Tensor& out, int32_t* idx, int64_t kernel, int64_t stride);
void max_pool1d_scatter(const Tensor& g, Tensor& out, const int32_t* idx);
void max_pool1d_gather(const Tensor& h, Tensor& out, const int32_t* idx);
void log_softmax(const Tensor& x, Tensor& out, int64_t outer, int64_t n, int64_t inner);
void softmax(const Tensor& x, Tensor& out, int64_t outer, int64_t n, int64_t inner);
void deeplift_rescale(const Tensor& in, const Tensor& num, const Tensor& out, const Tensor& regular, double eps,
                      Tensor& res);
void deeplift_pool_seed(const Tensor& out, const Tensor& g, Tensor& G);
}  // namespace cuda
}  // namespace lowpass
