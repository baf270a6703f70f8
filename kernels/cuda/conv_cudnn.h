// cuDNN path of CUDA conv1d (opt-in: kernels/cuda/conv_backend.h): y[b,gO+o,t] = bias + Σ_{c,k} w[gO+o,c,k]·x[b,gC+c,t+k·d-p]
// as cuDNN's cross-correlation of NCHW tensors with H = 1, plus its backward data and backward filter; deterministic
// algorithms only. Ran on an H200 with cuDNN 9.19.0 (docs/cuda.md, "cuDNN convolution path").
// Test: build/tests/lowpass_tests -ts=cuda -sf='*test_cuda_cudnn.cpp'
// Legend: B batch, G groups, C/O input/output channels per group, K taps, d dilation, p padding (each side), L lengths.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/ops.h"

namespace lowpass {
class Context;
struct CudnnState;  // cuDNN handle and per-geometry plans of one CudaState (conv_cudnn.cu)

namespace cuda {

// Each runs one conv1d direction through cuDNN and returns true, or returns false having written nothing when
// cuDNN cannot take the problem here: built without cuDNN, pad_left != pad_right, an empty tensor, a size over
// cuDNN's 32-bit limits, or no deterministic algorithm (of the math allowed) for the geometry. The caller then runs
// the im2col path. Outputs are overwritten. The first call of a geometry plans it (descriptors, then
// cudnnFind*AlgorithmEx on the call's own buffers, which synchronises); later calls reuse the plan.
// y (B, G·O, Lout) = corr(x (B, G·C, Lin), w (G·O, C, K)) + bias (G·O, or undefined).
bool conv1d_fwd_cudnn(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const Conv1dOpts& o);
// dx (B, G·C, Lin) = the adjoint of the forward in x, for dy (B, G·O, Lout).
bool conv1d_bwd_input_cudnn(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv1dOpts& o);
// dw (G·O, C, K) = Σ_{b,t} dy ⊗ x.
bool conv1d_bwd_weight_cudnn(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv1dOpts& o);

// What the cuDNN path of ctx's CUDA state on `device` has done (zeros before its first use).
struct CudnnStats {
  int64_t fwd = 0, bwd_data = 0, bwd_filter = 0;  // calls run by cuDNN
  int64_t declined = 0;                           // calls that returned false (im2col ran instead)
  int64_t plans = 0;                              // geometries planned (algorithm searches run)
};
CudnnStats cudnn_stats(Context& ctx, int device);
// One line per planned geometry: direction, dtype, math, sizes, and the algorithm and workspace chosen (or why
// cuDNN declined it). For benchmark logs.
std::vector<std::string> cudnn_plan_descriptions(Context& ctx, int device);

// Frees a CudnnState (destroys its descriptors and handle; only prints on failure). Called by ~CudaState.
void cudnn_state_destroy(CudnnState* s) noexcept;

}  // namespace cuda
}  // namespace lowpass
