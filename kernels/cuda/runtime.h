// Host-side interface to the CUDA backend: device discovery, memory, copies.
// Implemented in kernels/cuda/runtime.cu (built when nvcc is found) or cuda_stub.cpp otherwise.
#pragma once
#include <cstddef>
#include <string>

namespace lowpass::cuda {

// True when the backend was compiled in AND cudaGetDeviceCount succeeds with >= 1 device.
// Any CUDA error (e.g. 35, no driver) counts as "no device"; never throws.
bool available();
bool compiled();               // backend compiled in
std::string unavailable_reason();  // why available() is false, for skip messages

void* alloc(size_t bytes, int device);  // through the caching allocator
void free(void* p, size_t bytes, int device);
void copy_h2d(void* dst, const void* src, size_t bytes);
void copy_d2h(void* dst, const void* src, size_t bytes);
void copy_d2d(void* dst, const void* src, size_t bytes);
void memset_zero(void* dst, size_t bytes);

}  // namespace lowpass::cuda
