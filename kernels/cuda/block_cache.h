// BlockCache: the bookkeeping of the CUDA caching allocator (kernels/cuda/runtime.cu), free of CUDA so the host
// tests can drive it with a fake device allocator. Blocks are rounded to a bucket (allocator_bucket) and kept on a
// free list per bucket; the backing allocator runs only on a miss.
//
// Graph pools (docs/cuda.md, "CUDA graphs"): while a pool is open on a device (a stream capture is running), every
// allocation of that device is served from the pool: first its own free blocks, then blocks adopted from the shared
// free lists, then the backing allocator. A block keeps its pool for life and goes back to that pool's free list when
// freed, so no later work outside the graph can be handed memory that a replay of the graph writes. Closing a pool
// stops the routing; releasing it (when the graph is destroyed) gives its free blocks back to the shared lists, and
// blocks of a released pool that are still held go to the shared lists when they are freed.
// Not thread-safe by itself: runtime.cu holds a mutex around every call.
// Test: tests/test_cuda.cpp (-tc="*block cache*", host-only).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>
#include <vector>

#include "engine/error.h"
#include "kernels/cuda/runtime.h"

namespace lowpass::cuda {

class BlockCache {
 public:
  // raw_alloc(bytes, device) returns nullptr when the device is out of memory; raw_free gives a block back.
  using RawAlloc = std::function<void*(size_t, int)>;
  using RawFree = std::function<void(void*, int)>;
  BlockCache(RawAlloc a, RawFree f) : raw_alloc_(std::move(a)), raw_free_(std::move(f)) {}

  // A block of at least `bytes` on `device`. Out of memory: gives back the shared cached blocks, retries once,
  // then throws OutOfMemory naming the size and what is held. While a pool is open (a graph capture) nothing is
  // given back: cudaFree is not allowed during a capture (it would invalidate the capture and synchronise the
  // device), so the error says so instead.
  void* alloc(size_t bytes, int device) {
    const size_t b = allocator_bucket(bytes);
    Device& d = dev(device);
    const int64_t pool = d.open_pool;
    if (pool != 0) {  // the open pool's own blocks first
      if (void* p = pop(pools_[pool].free_lists, b)) return hand_out(d, p, b, pool, true);
    }
    if (void* p = pop(d.free_lists, b)) return hand_out(d, p, b, pool, true);  // adopted by the pool, if any
    void* p = raw_alloc_(b, device);
    if (!p && pool == 0) {
      release_shared(device);
      p = raw_alloc_(b, device);
    }
    if (!p && pool != 0)
      throw OutOfMemory(::lowpass::detail::concat(
          "CUDA out of memory during a CUDA-graph capture: an allocation of ", b, " bytes on device ", device,
          " failed; lowpass holds ", d.stats.bytes_in_use, " bytes in use and ", d.stats.bytes_cached,
          " bytes cached, and cached blocks cannot be given back while capturing (cudaFree would invalidate the "
          "capture)"));
    if (!p)
      throw OutOfMemory(::lowpass::detail::concat("CUDA out of memory: an allocation of ", b, " bytes on device ",
                                                  device, " failed; lowpass holds ", d.stats.bytes_in_use,
                                                  " bytes in use"));
    d.stats.device_mallocs++;
    return hand_out(d, p, b, pool, false);
  }

  void free(void* p, int device) {
    if (!p) return;
    Device& d = dev(device);
    auto it = d.live.find(p);
    LP_ASSERT(it != d.live.end(), "cuda::free of a pointer the caching allocator did not hand out");
    const auto [b, pool] = it->second;
    d.live.erase(it);
    auto pit = pool != 0 ? pools_.find(pool) : pools_.end();
    if (pit != pools_.end()) pit->second.free_lists[b].push_back(p);
    else d.free_lists[b].push_back(p);
    d.stats.bytes_in_use -= static_cast<int64_t>(b);
    d.stats.bytes_cached += static_cast<int64_t>(b);
  }

  // Routes every allocation of `device` to a new pool until close_pool; returns the pool's id (> 0).
  int64_t open_pool(int device) {
    Device& d = dev(device);
    LP_CHECK(d.open_pool == 0, "CUDA graph capture: a capture is already running on device ", device);
    const int64_t id = next_pool_++;
    pools_[id].device = device;
    d.open_pool = id;
    return id;
  }
  void close_pool(int device) { dev(device).open_pool = 0; }
  // The pool's free blocks go back to the shared lists; its blocks still held follow when they are freed.
  void release_pool(int64_t id) {
    auto it = pools_.find(id);
    if (it == pools_.end()) return;
    Device& d = dev(it->second.device);
    if (d.open_pool == id) d.open_pool = 0;
    for (auto& [b, blocks] : it->second.free_lists)
      for (void* p : blocks) d.free_lists[b].push_back(p);
    pools_.erase(it);
  }
  // Bytes of blocks that belong to pool `id` (held or free).
  int64_t pool_bytes(int64_t id) const {
    auto it = pools_.find(id);
    if (it == pools_.end()) return 0;
    int64_t n = 0;
    for (const auto& [b, blocks] : it->second.free_lists) n += static_cast<int64_t>(b * blocks.size());
    const Device& d = devices_.at(static_cast<size_t>(it->second.device));
    for (const auto& [p, bp] : d.live)
      if (bp.second == id) n += static_cast<int64_t>(bp.first);
    return n;
  }

  AllocatorStats stats(int device) { return dev(device).stats; }
  // Gives every shared cached block of `device` back (pools keep theirs: a live graph may still use them).
  void release_shared(int device) {
    Device& d = dev(device);
    for (auto& [b, blocks] : d.free_lists) {
      for (void* p : blocks) raw_free_(p, device);
      d.stats.bytes_cached -= static_cast<int64_t>(b * blocks.size());
      blocks.clear();
    }
  }

 private:
  struct Device {
    std::unordered_map<size_t, std::vector<void*>> free_lists;      // bucket -> shared free blocks
    std::unordered_map<void*, std::pair<size_t, int64_t>> live;     // block -> (bucket, pool; 0 = shared)
    AllocatorStats stats;
    int64_t open_pool = 0;
  };
  struct Pool {
    int device = 0;
    std::unordered_map<size_t, std::vector<void*>> free_lists;
  };

  Device& dev(int device) {
    LP_CHECK(device >= 0 && device < 64, "CUDA device index ", device, " out of range");
    if (static_cast<size_t>(device) >= devices_.size()) devices_.resize(static_cast<size_t>(device) + 1);
    return devices_[static_cast<size_t>(device)];
  }
  static void* pop(std::unordered_map<size_t, std::vector<void*>>& lists, size_t b) {
    auto it = lists.find(b);
    if (it == lists.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    return p;
  }
  void* hand_out(Device& d, void* p, size_t b, int64_t pool, bool from_cache) {
    d.live[p] = {b, pool};
    if (from_cache) {
      d.stats.cache_hits++;
      d.stats.bytes_cached -= static_cast<int64_t>(b);
    }
    d.stats.bytes_in_use += static_cast<int64_t>(b);
    return p;
  }

  RawAlloc raw_alloc_;
  RawFree raw_free_;
  std::vector<Device> devices_;
  std::map<int64_t, Pool> pools_;
  int64_t next_pool_ = 1;
};

}  // namespace lowpass::cuda
