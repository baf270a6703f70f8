// CUDA twins of the conv1d kernels (kernels/cpu/conv1d.h): the correlation
// y[b,gO+o,t] = bias + Σ_{c,k} w[gO+o,c,k]·x[b,gC+c,t+k·d-p] via im2col + cuBLAS GEMM, its weight adjoint,
// and the one-hot gather/scatter. Test: build/tests/lowpass_tests -ts=cuda.
// Legend: B batch, G groups, C/O input/output channels per group, K taps, d dilation, p left offset, L lengths.
#pragma once
#include <cstdint>

#include "engine/ops.h"
#include "kernels/cpu/conv1d.h"

namespace lowpass::cuda {

using cpu::CorrGeom;

// y (B, G·O, Lout) = corr(x, w) + bias (or none); im2col in batch chunks + strided-batched GEMM.
void conv1d_corr(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g);
// dw (G·O, C, K) = Σ_{b,t} dy ⊗ im2col(x); one GEMM per group and batch chunk with k = chunk·Lout.
void conv1d_corr_wgrad(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g);

// One-hot input: codes (B·Lin int8, device) = the channel holding 1, or -1 for an all-zero column.
// Returns false when some column is not one-hot. Reads one flag back, so it synchronises the stream.
bool onehot_codes(const Tensor& x, int8_t* codes);
// y[b,o,t] = bias[o] + Σ_k w[o, code(b, t+k·d-p), k] (groups 1): K look-ups per output instead of C·K FMAs.
void conv1d_corr_gather(const int8_t* codes, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g);
// dw[o,c,k] = Σ_{b,t: code(b,t+k·d-p)=c} dy[b,o,t] (groups 1, C <= 16).
void conv1d_corr_wgrad_scatter(const int8_t* codes, const Tensor& dy, Tensor& dw, const CorrGeom& g);

// Direct kernels for layers with few inputs or outputs per group (kernels/cuda/conv_direct.h), no im2col:
// y = corr(x, w) + bias, one thread per output; dw = Σ dy ⊗ x, one block per (output, input channel, 8 taps).
void conv1d_corr_direct(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g);
// The tiled (implicit-GEMM) float32 correlation for wide layers (kernels/cuda/conv_tiled.h; LOWPASS_CUDA_CONV=tiled).
// Returns false, having written nothing, when it cannot take the problem (not float32, TF32 or bf16 GEMMs switched on,
// shared memory over 48 KiB, batch·groups over 65535).
// pipelined: the two-stage cp.async variant (conv_tiled.h; `auto` for wide layers, `tiled`), where the
// device's shared-memory opt-in allows two stages; otherwise the plain kernel.
bool conv1d_corr_tiled(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g,
                       bool pipelined = false);
// dw = Σ dy ⊗ x by the tiled float32 weight-grad kernel (split over positions, partials added in order); false,
// having written nothing, when it cannot take the problem (not float32, TF32 or bf16 GEMMs on, K > 16, shared
// memory over 48 KiB).
// pipelined: the two-stage cp.async variant (LOWPASS_CUDA_CONV=tiled) where it fits.
bool conv1d_corr_wgrad_tiled(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g,
                             bool pipelined = false);
void conv1d_corr_wgrad_direct(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g);
// The tiled correlation for layers with at most 16 outputs per group (kernels/cuda/conv_narrow.h; float32 and
// float64, double sums; `auto` and `tiled` for few outputs). Returns false, having written nothing, when
// it cannot take the problem (more outputs, one channel's tiles over 40 KiB, batch·groups over 65535).
bool conv1d_corr_narrow(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g);
// dw = Σ dy ⊗ x for layers with at most 16 outputs per group by the narrow kernel's weight grad (double sums, split
// over positions, partials added in order; float32 and float64); false, having written nothing, when it cannot take
// the problem (more outputs, K over the column block, tiles over 40 KiB).
bool conv1d_corr_wgrad_narrow(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g);

// The correlation as one cuBLAS GEMM per (group, tap) on shifted views of x, without im2col (kernels/cuda/conv_taps.h;
// a `tune` candidate; its weight grad is `auto`'s for wide layers with long reductions). False, having written
// nothing, when cuBLAS's int sizes do not fit.
bool conv1d_corr_taps(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g);
// dw = Σ dy ⊗ x by the same plan: per-item GEMMs per (group, tap) into a workspace of B·G·K·O·C values, then the batch
// items added in order in double (deterministic).
bool conv1d_corr_wgrad_taps(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g);

// conv1d in the ops' terms (engine/ops.h Conv1dOpts), as cpu::conv1d_*_cpu: the forward and the weight
// grad take the one-hot path when x has <= 16 channels, groups 1 and is one-hot.
void conv1d_fwd_cuda(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const Conv1dOpts& o);
void conv1d_bwd_input_cuda(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv1dOpts& o);
void conv1d_bwd_weight_cuda(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv1dOpts& o);

}  // namespace lowpass::cuda
