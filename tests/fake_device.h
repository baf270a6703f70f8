// A host stand-in for the device behind cuda::BlockCache, for testing the caching allocator's logic without a GPU:
// "device" memory is malloc'd, every raw allocation and free is counted, and allocations can be made to fail.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <set>

#include "kernels/cuda/block_cache.h"

namespace lowpass::test {

struct FakeDevice {
  std::set<void*> held;  // raw blocks the fake device has handed out and not yet been given back
  int64_t raw_allocs = 0, raw_frees = 0;
  int64_t fail_next = 0;  // the next this many raw allocations fail
  bool full = false;      // every raw allocation fails while set

  // A BlockCache over this fake device (which must outlive it).
  cuda::BlockCache cache() {
    return cuda::BlockCache(
        [this](size_t n, int) -> void* {
          if (full) return nullptr;
          if (fail_next > 0) return --fail_next, nullptr;
          ++raw_allocs;
          void* p = std::malloc(n);
          held.insert(p);
          return p;
        },
        [this](void* p, int) {
          ++raw_frees;
          held.erase(p);
          std::free(p);
        });
  }
};

}  // namespace lowpass::test
