// conv1d kernels (CPU). Dimension letters: B batch, G groups, C input channels per group,
// O output channels per group, K taps, d dilation, p left offset (padding), L lengths.
// One primitive, the correlation y[b,gO+o,t] = bias + Σ_{c,k} w[gO+o,c,k]·x[b,gC+c,t+k·d-p] (x = 0 outside
// [0,Lin)), and its weight adjoint dw[gO+o,c,k] = Σ_{b,t} dy[b,gO+o,t]·x[b,gC+c,t+k·d-p]. conv1d forward and
// weight-grad are these; the input grad is the correlation of dy with the flipped, transposed weights and
// offset p' = d(K-1) - pad_left. Test: build/tests/lowpass_tests -ts=conv1d
#pragma once
#include <cstdint>
#include <vector>

#include "engine/ops.h"
#include "kernels/cpu/corr_geom.h"

namespace lowpass::cpu {

// Kernel families behind one interface (Auto = the fastest measured for the shape, docs/conv1d.md).
enum class ConvAlgo { Auto, Reference, Im2colEigen, Im2colBlas, Direct, Gather };
const char* conv_algo_name(ConvAlgo a);
// Whether `a` can run this problem (Direct needs float32 and AVX-512; Gather a one-hot x; Blas OpenBLAS).
bool conv_algo_available(ConvAlgo a);

// y (B, G·O, Lout) = corr(x (B, G·C, Lin), w (G·O, C, K)) + bias (G·O or undefined). y is overwritten.
void conv1d_corr(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g,
                 ConvAlgo algo = ConvAlgo::Auto);
// dw (G·O, C, K) = Σ_{b,t} dy (B, G·O, Lout) ⊗ x (B, G·C, Lin). dw is overwritten. Reductions over the batch
// are per-thread partial sums added in a fixed order: deterministic for a fixed thread count.
void conv1d_corr_wgrad(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g,
                       ConvAlgo algo = ConvAlgo::Auto);

// conv1d in the ops' terms (engine/ops.h Conv1dOpts): forward, input grad, weight grad.
void conv1d_fwd_cpu(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const Conv1dOpts& o,
                    ConvAlgo algo = ConvAlgo::Auto);
// y = relu(conv1d(x, w) + bias) (+ residual, shaped as y, when defined), where conv1d_fwd_cpu would take the direct
// kernel (conv1d_relu_fusable says when; x, w and o already checked).
bool conv1d_relu_fusable(const Tensor& x, const Tensor& w, const Conv1dOpts& o);
void conv1d_fwd_relu_cpu(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& residual, Tensor& y,
                         const Conv1dOpts& o);
void conv1d_bwd_input_cpu(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv1dOpts& o,
                          ConvAlgo algo = ConvAlgo::Auto);
void conv1d_bwd_weight_cpu(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv1dOpts& o,
                           ConvAlgo algo = ConvAlgo::Auto);

// ---- one-hot input (kernels/cpu/conv1d_onehot.cpp) ----
// Codes of a one-hot x (B, C, L): code[b·L+l] = the channel holding 1 at column l, or -1 for an all-zero
// column. Returns false (codes unspecified) when some column is not one-hot (a value other than 0/1, or
// two ones). Cost: one pass over x.
bool onehot_codes(const Tensor& x, std::vector<int8_t>& codes);
// Gather forward (groups == 1): y[b,o,t] = bias[o] + Σ_k w[o, code(b, t+k·d-p), k].
void conv1d_corr_gather(const std::vector<int8_t>& codes, const Tensor& w, const Tensor& bias, Tensor& y,
                        const CorrGeom& g);
// Scatter weight grad (groups == 1): dw[o,c,k] = Σ_{b,t: code(b,t+k·d-p)=c} dy[b,o,t].
void conv1d_corr_wgrad_scatter(const std::vector<int8_t>& codes, const Tensor& dy, Tensor& dw, const CorrGeom& g);

// ---- AVX-512 direct kernels, float32 (kernels/cpu/conv1d_direct.cpp) ----
bool direct_available();
// relu / res: the inference epilogue y = relu(corr + bias) + res (res shaped as y, or null): the bits of the relu and
// add ops applied after it (the ops' fused form, conv1d_relu in engine/ops.h).
void conv1d_corr_direct(const float* x, const float* w, const float* bias, float* y, const CorrGeom& g,
                        const Context& ctx, bool relu = false, const float* res = nullptr);
void conv1d_corr_wgrad_direct(const float* x, const float* dy, float* dw, const CorrGeom& g, const Context& ctx);

}  // namespace lowpass::cpu
