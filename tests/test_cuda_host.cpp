// CUDA host-side logic that runs on every machine: device discovery, the allocator's size buckets, the block cache
// under a capture (fake device), and the broadcast and im2col index arithmetic against plain loops.
// Run: build/tests/lowpass_tests -ts=cuda
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

#include "kernels/cuda/block_cache.h"
#include "kernels/cuda/index.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cpu/elementwise.h"
#include "tests/cuda_test.h"
#include "tests/fake_device.h"
#include "tests/gradcheck.h"
#ifdef LOWPASS_HAVE_CUDA
#include "kernels/cpu/nn.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/shape.h"
#include "kernels/cuda/cuda_state.h"
#endif

using namespace lowpass;
using namespace lowpass::test;

TEST_SUITE("cuda") {

// ---------------- host-side logic: runs on every machine ----------------
TEST_CASE("discovery never throws and explains itself") {
  bool a = false;
  CHECK_NOTHROW(a = cuda::available());
  CHECK(a == cuda::available());  // cached, stable
  if (!a) CHECK(!cuda::unavailable_reason().empty());
  if (!cuda::compiled()) CHECK(!a);
  MESSAGE("CUDA compiled: " << cuda::compiled() << ", available: " << a
                            << (a ? std::string() : ", reason: " + cuda::unavailable_reason()));
}

TEST_CASE("allocator buckets: cover the request, waste <= 12.5% above 4 KiB, stable under 64-byte rounding") {
  size_t prev = 0;
  for (size_t b = 0; b < (1u << 22); b = b < 4096 ? b + 1 : b + b / 61 + 7) {
    size_t k = cuda::allocator_bucket(b);
    CHECK(k >= b);
    CHECK(k >= 512);
    CHECK(k % 512 == 0);
    CHECK(k >= prev);  // monotone
    if (b > 4096) CHECK(static_cast<double>(k) <= 1.125 * static_cast<double>(b) + 512);
    CHECK(cuda::allocator_bucket((b + 63) / 64 * 64) == k);
    prev = k;
  }
  CHECK(cuda::allocator_bucket(0) == cuda::allocator_bucket(64));
}

TEST_CASE("block cache out of memory during a capture: nothing is freed, the error names the capture (host)") {
  // cudaFree during a stream capture invalidates the capture (and would synchronise the device): while a pool is
  // open, a failed device allocation must not give the shared cached blocks back. After the capture it does.
  test::FakeDevice dev;  // every allocation fails while dev.full
  cuda::BlockCache bc = dev.cache();
  void* a = bc.alloc(1000, 1);
  void* b = bc.alloc(70000, 1);
  bc.free(a, 1), bc.free(b, 1);  // both cached on the shared lists
  const int64_t pool = bc.open_pool(1);
  dev.full = true;
  CHECK_THROWS_WITH_AS(bc.alloc(1 << 20, 1), doctest::Contains("during a CUDA-graph capture"), OutOfMemory);
  CHECK(dev.raw_frees == 0);
  CHECK(bc.stats(1).bytes_cached ==
        static_cast<int64_t>(cuda::allocator_bucket(1000) + cuda::allocator_bucket(70000)));
  CHECK(bc.alloc(1000, 1) == a);  // the pool still adopts cached blocks of the right bucket
  bc.free(a, 1);
  bc.close_pool(1);
  // No capture: the cached shared block (b) is given back and the allocation retried once, then OutOfMemory.
  CHECK_THROWS_WITH_AS(bc.alloc(1 << 20, 1), doctest::Contains("CUDA out of memory: an allocation of"),
                       OutOfMemory);
  CHECK(dev.raw_frees == 1);
  dev.full = false;
  void* c = bc.alloc(1 << 20, 1);
  CHECK(c != nullptr);
  bc.free(c, 1);
  bc.release_shared(1);  // a stays the closed pool's block (a graph would still hold it)
  CHECK(dev.held.size() == 1);
  CHECK(dev.held.count(a) == 1);
  bc.release_pool(pool);
  bc.release_shared(1);
  CHECK(dev.held.empty());
}

TEST_CASE("broadcast index map (host): merged dims give the same offsets as the plain loop") {
  struct Case { Shape a, b; };
  std::vector<Case> cases = {
      {{7}, {7}},           {{1}, {5}},           {{3, 5}, {1}},          {{2, 3, 33}, {3, 1}},
      {{2, 3, 33}, {1, 3, 1}}, {{2, 1, 33}, {2, 4, 1}}, {{4, 1, 3, 1, 5}, {2, 3, 6, 5}}, {{1, 1, 1}, {1}},
      {{5, 1}, {1, 6}},     {{2, 3, 4, 5}, {2, 3, 4, 5}}, {{6, 1, 1, 7}, {6, 2, 3, 7}}, {{1, 9}, {4, 1, 9}},
  };
  for (auto& c : cases) {
    Shape out = lowpass::broadcast_shapes(c.a, c.b);
    cuda::BroadcastMap m = cuda::make_broadcast_map(out, c.a, c.b);
    CHECK(m.nd <= static_cast<int>(out.size()));
    int64_t nd = static_cast<int64_t>(out.size()), n = shape_numel(out);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      // Plain loop: unravel i over `out`, then ravel into a and b with broadcasting.
      std::vector<int64_t> idx(nd);
      int64_t rem = i;
      for (int64_t d = nd - 1; d >= 0; --d) {
        idx[d] = rem % out[d];
        rem /= out[d];
      }
      auto ravel = [&](const Shape& s) {
        int64_t off = 0;
        for (int64_t j = 0, d = nd - static_cast<int64_t>(s.size()); j < static_cast<int64_t>(s.size()); ++j, ++d)
          off = off * s[j] + (s[j] == 1 ? 0 : idx[d]);
        return off;
      };
      int64_t ia, ib, ia32, ib32;
      cuda::broadcast_offsets<int64_t>(m, i, ia, ib);
      cuda::broadcast_offsets<uint32_t>(m, static_cast<uint32_t>(i), ia32, ib32);  // the kernels' 32-bit path
      bad += (ia != ravel(c.a)) + (ib != ravel(c.b)) + (ia32 != ia) + (ib32 != ib);
    }
    INFO(shape_str(c.a), " with ", shape_str(c.b));
    CHECK(bad == 0);
  }
}

TEST_CASE("im2col index arithmetic (host): 32- and 64-bit versions equal the plain loop, both layouts") {
  struct Geo { int64_t B, G, C, Lin, K, d, p, Lout, b0, nb; };
  // Lout = Lin + pad_left + pad_right - d(K-1) for the forward ('same', 'valid', one-sided pads), p = pad_left;
  // the input grad's correlation has p = d(K-1) - pad_left; b0/nb pick a chunk of the batch.
  const Geo geos[] = {{3, 1, 4, 17, 3, 1, 1, 17, 0, 3},  {5, 2, 3, 40, 5, 3, 6, 40, 1, 3},
                      {2, 1, 1, 1, 1, 1, 0, 1, 0, 2},    {4, 1, 64, 97, 15, 1, 0, 83, 2, 2},
                      {2, 3, 2, 33, 3, 16, 32, 1, 0, 2}, {6, 1, 5, 50, 7, 2, 12, 50, 3, 3}};
  for (const Geo& g : geos) {
    INFO("B ", g.B, " G ", g.G, " C ", g.C, " Lin ", g.Lin, " K ", g.K, " d ", g.d, " p ", g.p, " chunk ", g.b0, "+",
         g.nb);
    for (bool group_major : {false, true}) {
      int64_t bad = 0, e = 0;
      // Plain loop in each layout's own order: (bb, gi, ck, t) or (gi, ck, bb, t).
      auto expect = [&](int64_t bb, int64_t gi, int64_t ck, int64_t t) {
        const int64_t c = ck / g.K, k = ck % g.K, s = t + k * g.d - g.p;
        return (s >= 0 && s < g.Lin) ? ((g.b0 + bb) * g.G * g.C + gi * g.C + c) * g.Lin + s : int64_t{-1};
      };
      auto check = [&](int64_t want) {
        auto u = static_cast<uint32_t>(e);
        int64_t got32 = group_major
            ? cuda::im2col_source<uint32_t, true>(u, g.b0, g.nb, g.G, g.C, g.Lin, g.Lout, g.K, g.d, g.p)
            : cuda::im2col_source<uint32_t, false>(u, g.b0, g.nb, g.G, g.C, g.Lin, g.Lout, g.K, g.d, g.p);
        int64_t got64 = group_major
            ? cuda::im2col_source<int64_t, true>(e, g.b0, g.nb, g.G, g.C, g.Lin, g.Lout, g.K, g.d, g.p)
            : cuda::im2col_source<int64_t, false>(e, g.b0, g.nb, g.G, g.C, g.Lin, g.Lout, g.K, g.d, g.p);
        bad += (got32 != want) + (got64 != want);
        ++e;
      };
      if (group_major) {
        for (int64_t gi = 0; gi < g.G; ++gi)
          for (int64_t ck = 0; ck < g.C * g.K; ++ck)
            for (int64_t bb = 0; bb < g.nb; ++bb)
              for (int64_t t = 0; t < g.Lout; ++t) check(expect(bb, gi, ck, t));
      } else {
        for (int64_t bb = 0; bb < g.nb; ++bb)
          for (int64_t gi = 0; gi < g.G; ++gi)
            for (int64_t ck = 0; ck < g.C * g.K; ++ck)
              for (int64_t t = 0; t < g.Lout; ++t) check(expect(bb, gi, ck, t));
      }
      INFO("group-major ", group_major);
      CHECK(e == g.nb * g.G * g.C * g.K * g.Lout);
      CHECK(bad == 0);
    }
  }
  // The 64-bit version also takes a negative offset (an input grad with pad_left > d(K-1)).
  CHECK(cuda::im2col_source<int64_t, false>(0, 0, 1, 1, 1, 10, 5, 1, 1, -2) == 2);
  CHECK(cuda::im2col_source<int64_t, false>(4, 0, 1, 1, 1, 5, 5, 1, 1, -2) == -1);
}
}
