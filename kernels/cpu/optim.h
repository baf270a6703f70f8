// Optimiser update kernels, one pass per parameter tensor (CPU; CUDA twins declared below).
// Adam: m ← lerp(m, g, 1−β1); v ← β2·v + (1−β2)·g²; p ← p − (lr/bc1)·m / (√v/√bc2 + ε)  (torch.optim.Adam).
// Test: build/tests/lowpass_tests -ts=optim
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace lowpass {

// Scalars of one Adam step, computed in double as torch.optim.Adam does in Python, then rounded to
// the parameter's dtype inside the kernel exactly where PyTorch's kernels round them.
struct AdamScalars {
  double beta1, beta2, eps, weight_decay;
  double step_size;     // lr / (1 − β1^t)
  double bc2_sqrt;      // (1 − β2^t)^0.5
  bool amsgrad = false;
  bool maximize = false;
  // Graph-capturable stepping (engine/optim.h, "live" steps): when set, three float64 values in the parameter's
  // memory (host or device) read when the update runs, not when it is queued: {step_size, bc2_sqrt, skip}. They
  // replace the two fields above, and the update does nothing unless skip == 0 (a NaN skip skips too).
  const double* live = nullptr;
};

struct SgdScalars {
  double lr, momentum, dampening, weight_decay;
  bool nesterov = false;
  bool maximize = false;
  bool first = false;  // momentum buffer is initialised to the (decayed) gradient on the first step
  const double* live = nullptr;  // as AdamScalars::live: {lr, first (0 or 1), skip}
};

namespace cpu {
// param, grad, exp_avg, exp_avg_sq (and max_exp_avg_sq when amsgrad, else undefined): same shape/dtype.
void adam_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                 const AdamScalars& s);
// momentum_buf undefined when momentum == 0.
void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdScalars& s);
// dst[i] ← src[i] for every i: same numel and dtype, one device for all, contiguous. Used to write a backward
// pass's gradients into their fixed slots in a gradient arena (engine/arena.h) in one pass (one launch on a GPU).
void copy_many(const std::vector<Tensor>& src, const std::vector<Tensor>& dst);
}  // namespace cpu

namespace cuda {
void adam_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                 const AdamScalars& s);
void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdScalars& s);
void copy_many(const std::vector<Tensor>& src, const std::vector<Tensor>& dst);
}  // namespace cuda

}  // namespace lowpass
