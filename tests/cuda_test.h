// Shared by the CUDA test files (tests/test_cuda*.cpp): the skip when no GPU is usable,
// the device, and ‖got − ref‖/‖ref‖ of two tensors wherever they live.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <memory>

#include "engine/tensor.h"
#include "kernels/cuda/runtime.h"
#include "tests/gradcheck.h"

// First statement of every test case that needs a GPU: passes with a message when none is usable.
#define LP_SKIP_WITHOUT_GPU()                                                      \
  do {                                                                             \
    if (!::lowpass::cuda::available()) {                                           \
      MESSAGE("CUDA test skipped (no usable GPU): " << ::lowpass::cuda::unavailable_reason()); \
      return;                                                                      \
    }                                                                              \
  } while (0)

namespace lowpass::test {

inline const Device kGpu{DeviceKind::CUDA, 0};

// The kernel tests' tolerance on ‖Δ‖/‖ref‖: 1e-5 in float32, 1e-12 in float64.
[[maybe_unused]] inline double tol_for(DType t) { return t == DType::F32 ? 1e-5 : 1e-12; }

inline Tensor rnd(Context& ctx, const Shape& s, double lo, double hi, DType t) {
  return Tensor::uniform(ctx, s, lo, hi, t);
}

inline double rel(const Tensor& got, const Tensor& ref) {
  REQUIRE(got.shape() == ref.shape());
  return rel_err(got.to_vector<double>(), ref.to_vector<double>());
}

constexpr int64_t kCanary = 17;  // NaN-filled elements after every kernel-written output

// A GPU output of `shape` whose storage is NaN everywhere and runs kCanary elements past its end.
inline Tensor gpu_out(Context& ctx, const Shape& shape, DType t) {
  Tensor full = Tensor::full(ctx, {shape_numel(shape) + kCanary}, std::numeric_limits<double>::quiet_NaN(), t).to(kGpu);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = full.impl()->storage;
  impl->shape = shape;
  impl->dtype = t;
  impl->ctx = &ctx;
  return Tensor(impl);
}

// The kCanary elements after `view` are still NaN (nothing wrote past the end).
inline bool canaries_intact(const Tensor& view) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = view.impl()->storage;
  impl->shape = {view.numel() + kCanary};
  impl->dtype = view.dtype();
  impl->ctx = &view.ctx();
  auto all = Tensor(impl).to_vector<double>();
  for (int64_t i = view.numel(); i < view.numel() + kCanary; ++i)
    if (!std::isnan(all[static_cast<size_t>(i)])) return false;
  return true;
}

#ifdef LOWPASS_HAVE_CUDA
// Runs a CPU kernel and its CUDA twin on the same inputs; compares outputs and canaries.
template <typename CpuCall, typename GpuCall>
void compare_kernel(Context& ctx, const char* what, const Shape& out_shape, DType t, CpuCall cpu_call,
                    GpuCall gpu_call) {
  Tensor ref = Tensor::empty(ctx, out_shape, t);
  cpu_call(ref);
  Tensor got = gpu_out(ctx, out_shape, t);
  gpu_call(got);
  cuda::synchronize(0);
  INFO(std::string(what), " ", shape_str(out_shape), " ", dtype_name(t));
  CHECK(rel(got, ref) <= tol_for(t));
  CHECK(canaries_intact(got));
}
#endif

}  // namespace lowpass::test
