// Shared by the CUDA test files (tests/test_cuda.cpp, tests/test_cuda_train.cpp): the skip when no GPU is usable,
// the device, and ‖got − ref‖/‖ref‖ of two tensors wherever they live.
#pragma once
#include <doctest/doctest.h>

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

inline double rel(const Tensor& got, const Tensor& ref) {
  REQUIRE(got.shape() == ref.shape());
  return rel_err(got.to_vector<double>(), ref.to_vector<double>());
}

}  // namespace lowpass::test
