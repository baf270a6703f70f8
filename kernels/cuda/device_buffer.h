// DeviceBuffer<T>: a small RAII array in device memory from the caching allocator, e.g. index lists
// uploaded for one launch. Freed to the allocator's cache; same-stream ordering makes reuse safe.
// Test: build/tests/lowpass_tests -ts=cuda.
#pragma once
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"

namespace lowpass::cuda {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer(size_t count, int device) : count_(count), device_(device) {
    ptr_ = static_cast<T*>(cuda::alloc(count ? count * sizeof(T) : 1, device));
  }
  DeviceBuffer(const std::vector<T>& host, int device) : DeviceBuffer(host.size(), device) {
    if (!host.empty()) copy_h2d(ptr_, host.data(), host.size() * sizeof(T), device);
  }
  ~DeviceBuffer() { cuda::free(ptr_, count_ * sizeof(T), device_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  size_t size() const { return count_; }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
  int device_ = 0;
};

}  // namespace lowpass::cuda
