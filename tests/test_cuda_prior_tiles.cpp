// The tiled smoothing kernels of the CUDA Fourier prior (kernels/cuda/prior_tiles.h), run on the host block by block
// — every thread's window load, then every thread's output, with the window NaN-filled first — against the formulas
// they implement: s[b, l] = Σ_j taps[j]·Σ_c |a[b, c, l + j − r]| and da[b, c, l] = sign(a)·Σ_j taps[j]·ds[b, l + j − r]
// (0 for rows the prior does not score), with the signs from the forward's one-byte codes or from a. The kernels themselves run in the fused-prior GPU cases of
// tests/test_cuda_train.cpp against the CPU chain.
// Run: build-dev/tests/lowpass_tests -ts=cuda -tc='*prior*tile*'
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cuda/prior_tiles.h"

using namespace lowpass;

namespace {

// use_signs: the forward writes sign codes and the backward reads them (C <= kPriorSignMaxC), else the backward
// reads a.
template <typename T>
void check(int64_t B, int64_t C, int64_t L, int n, uint32_t seed, bool use_signs) {
  INFO("B ", B, " C ", C, " L ", L, " taps ", n, " ", sizeof(T) == 4 ? "float32" : "float64", " signs ", use_signs);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> U(-1, 1);
  const int r = n / 2;
  std::vector<T> a(static_cast<size_t>(B * C * L)), ds(static_cast<size_t>(B * L)), taps(static_cast<size_t>(n));
  for (auto& v : a) {  // some exact zeros, of both signs: sign 0
    const double q = U(rng);
    v = q < -0.9 ? T(0) : q < -0.8 ? T(-0.0) : T(U(rng));
  }
  std::vector<uint8_t> signs(static_cast<size_t>(B * L), 0xFF);  // 0xFF: unwritten (decodes as sign 0 everywhere)
  uint8_t* sg = use_signs ? signs.data() : nullptr;
  for (auto& v : ds) v = T(U(rng));
  for (auto& v : taps) v = T(0.5 + 0.5 * U(rng));
  std::vector<bool> selected(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) selected[static_cast<size_t>(b)] = b % 3 != 1;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> s(static_cast<size_t>(B * L), nan), da(a.size(), nan), w(cuda::kPriorWindow);
  const int64_t tiles = (L + cuda::kPriorTile - 1) / cuda::kPriorTile;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t l0 = t * cuda::kPriorTile;
      std::fill(w.begin(), w.end(), nan);
      for (int tid = 0; tid < cuda::kPriorTile; ++tid) cuda::prior_sum_abs_load(a.data(), w.data(), sg, b, l0, C, L, r, tid);
      for (int tid = 0; tid < cuda::kPriorTile; ++tid)
        if (l0 + tid < L) s[static_cast<size_t>(b * L + l0 + tid)] = cuda::prior_smooth_at(w.data(), taps.data(), n, tid);
      std::fill(w.begin(), w.end(), nan);
      const bool sel = selected[static_cast<size_t>(b)];
      if (sel)
        for (int tid = 0; tid < cuda::kPriorTile; ++tid) cuda::prior_row_load(ds.data(), w.data(), b, l0, L, r, tid);
      for (int tid = 0; tid < cuda::kPriorTile; ++tid)
        if (l0 + tid < L)
          cuda::prior_dattr_store(a.data(), static_cast<const uint8_t*>(sg), da.data(),
                                  sel ? cuda::prior_smooth_at(w.data(), taps.data(), n, tid) : T(0), sel, b, l0 + tid, C,
                                  L);
    }
  // Every position's sign code written once the forward has run, and equal to the attributions' signs.
  if (use_signs)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t l = 0; l < L; ++l) {
        const uint8_t code = signs[static_cast<size_t>(b * L + l)];
        for (int64_t c = 0; c < C; ++c) {
          const T av = a[static_cast<size_t>((b * C + c) * L + l)];
          REQUIRE(cuda::prior_sign_of(code, c) == (av > T(0) ? 1 : av < T(0) ? -1 : 0));
        }
        REQUIRE((code >> (2 * C)) == 0);  // no bits past the bases
      }
  const double tol = sizeof(T) == 4 ? 1e-6 : 1e-14;
  double es = 0, ea = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l) {
      double ref = 0, du = 0;
      for (int j = 0; j < n; ++j) {
        const int64_t src = l + j - r;
        if (src < 0 || src >= L) continue;
        double u = 0;
        for (int64_t c = 0; c < C; ++c) u += std::fabs(double(a[static_cast<size_t>((b * C + c) * L + src)]));
        ref += double(taps[static_cast<size_t>(j)]) * u;
        du += double(taps[static_cast<size_t>(j)]) * double(ds[static_cast<size_t>(b * L + src)]);
      }
      const double got = double(s[static_cast<size_t>(b * L + l)]);
      REQUIRE(std::isfinite(got));  // written, from a window with no unloaded element
      es = std::max(es, std::fabs(got - ref) / std::max(1.0, std::fabs(ref)));
      for (int64_t c = 0; c < C; ++c) {
        const double av = double(a[static_cast<size_t>((b * C + c) * L + l)]);
        const double want = selected[static_cast<size_t>(b)] ? (av > 0 ? du : av < 0 ? -du : 0.0) : 0.0;
        const double g = double(da[static_cast<size_t>((b * C + c) * L + l)]);
        REQUIRE(std::isfinite(g));
        ea = std::max(ea, std::fabs(g - want) / std::max(1.0, std::fabs(want)));
      }
    }
  CHECK(es <= tol);
  CHECK(ea <= tol);
}

}  // namespace

TEST_SUITE("cuda") {
TEST_CASE("prior smoothing tiles (forward window of Σ|a|, backward smoothed gradient × sign) equal the formulas (host)") {
  // The binary geometry (L 1000, 4 bases, sigma 3: 25 taps), BPNet's 1000 of 1346, one tile exactly, one position,
  // the widest taps (63), a single tap, rows the prior skips.
  // Each with the forward's sign codes (C <= 4) and without (the backward reads a).
  for (bool sg : {true, false}) {
    check<float>(3, 4, 1000, 25, 1, sg);
    check<double>(3, 4, 1000, 25, 2, sg);
    check<float>(2, 4, 256, 25, 3, sg);
    check<float>(2, 4, 1, 25, 4, sg);
    check<double>(4, 4, 300, 63, 5, sg);
    check<float>(2, 3, 257, 1, 6, sg);
    check<double>(1, 1, 40, 63, 7, sg);
  }
  check<float>(2, 6, 300, 25, 8, false);  // more bases than a code holds: the backward reads a
}
}
