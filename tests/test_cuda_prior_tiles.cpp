// The CUDA Fourier prior's block phases (kernels/cuda/prior_tiles.h), run on the host block by block and thread by
// thread in the kernels' order (kernels/cuda/prior.cu), with every shared window NaN-filled first:
// - the smoothing blocks against the formulas they implement: s[p, l] = Σ_j taps[j]·Σ_c |a[b, c, l + j − r]| for
//   compact row p of batch row b (0 for padding rows, which read nothing) and da[b, c, l] = sign(a)·Σ_j
//   taps[j]·ds[p, l + j − r] (0 for rows the prior does not score, which read nothing), the signs from the
//   forward's one-byte codes or from a;
// - the whole chain with naive DFTs in place of cuFFT's R2C and C2R (the smoothing, score and dX blocks), against
//   the CPU twin (kernels/cpu/prior.cpp): scores and attribution gradients.
// The kernels themselves run in the fused-prior GPU cases of tests/test_cuda_train.cpp against the CPU chain.
// Run: build-dev/tests/lowpass_tests -ts=cuda -tc='*prior*'
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "engine/ops.h"
#include "kernels/cpu/prior.h"
#include "kernels/cuda/prior_tiles.h"

using namespace lowpass;

namespace {

template <typename T>
struct Cplx {
  T x, y;
};

// Every block of a smoothing kernel as the kernels run it: grid row b (a compact row in the forward, a batch row in
// the backward), positions from l0; the shared window NaN-filled; every thread's load(b, l0, tid, window) for rows
// with data (selected[b]); then every thread's kPriorPer outputs, out(b, l, tid, k, the smoothed value at l or 0,
// selected).
template <typename T, typename Load, typename Out>
void run_smoothing_blocks(const std::vector<T>& taps, const std::vector<bool>& selected, int64_t B, int64_t L,
                          Load load, Out out) {
  const int n = static_cast<int>(taps.size());
  std::vector<T> w(cuda::kPriorWindow);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l0 = 0; l0 < L; l0 += cuda::kPriorSpan) {
      const bool sel = selected[static_cast<size_t>(b)];
      std::fill(w.begin(), w.end(), std::numeric_limits<T>::quiet_NaN());
      if (sel)
        for (int tid = 0; tid < cuda::kPriorThreads; ++tid) load(b, l0, tid, w.data());
      for (int tid = 0; tid < cuda::kPriorThreads; ++tid)
        for (int k = 0; k < cuda::kPriorPer; ++k) {
          const int i = tid + k * cuda::kPriorThreads;
          if (l0 + i < L) out(b, l0 + i, tid, k, sel ? cuda::prior_smooth_at(w.data(), taps.data(), n, i) : T(0), sel);
        }
    }
}

// The forward over compact rows p (batch row compact[p], −1 for padding): s (Rp, L), and sign codes (Rp, L) where
// sg is not null; kC as the kernel's template argument: 4, or 0 for any C. The backward over batch rows b (compact
// row pos[b], −1 for rows not scored): da from ds (Rp, L), the signs from sg where not null, else from a, scaled by
// the row's gs[p] where gs is not null (ds then the unit gradient's).
template <int kC, typename T>
void smooth_forward(const std::vector<T>& a, std::vector<T>& s, uint8_t* sg, const std::vector<T>& taps,
                    const std::vector<int64_t>& compact, int64_t C, int64_t L) {
  const int r = static_cast<int>(taps.size()) / 2;
  const int64_t Rp = static_cast<int64_t>(compact.size());
  std::vector<bool> data(compact.size());
  for (size_t p = 0; p < compact.size(); ++p) data[p] = compact[p] >= 0;
  run_smoothing_blocks(
      taps, data, Rp, L,
      [&](int64_t p, int64_t l0, int tid, T* w) {
        cuda::prior_sum_abs_load<kC>(a.data(), w, sg, compact[static_cast<size_t>(p)], p, l0, C, L, r, tid);
      },
      [&](int64_t p, int64_t l, int, int, T v, bool) { s[static_cast<size_t>(p * L + l)] = v; });
}

template <typename T>
void smooth_backward(const std::vector<T>& a, const uint8_t* sg, const std::vector<T>& ds, std::vector<T>& da,
                     const std::vector<T>& taps, const std::vector<int64_t>& pos, int64_t C, int64_t L,
                     const T* gs = nullptr) {
  const int r = static_cast<int>(taps.size()) / 2;
  const int64_t B = static_cast<int64_t>(pos.size());
  std::vector<bool> selected(pos.size());
  for (size_t b = 0; b < pos.size(); ++b) selected[b] = pos[b] >= 0;
  std::vector<uint8_t> codes(static_cast<size_t>(cuda::kPriorThreads * cuda::kPriorPer));  // per thread, per k
  run_smoothing_blocks(
      taps, selected, B, L,
      [&](int64_t b, int64_t l0, int tid, T* w) {
        const int64_t p = pos[static_cast<size_t>(b)];
        uint8_t* mine = codes.data() + tid * cuda::kPriorPer;
        std::fill(mine, mine + cuda::kPriorPer, uint8_t(0xEE));
        if (sg) cuda::prior_codes_load(sg, mine, p, l0, L, tid);
        cuda::prior_row_load(ds.data(), w, p, l0, L, r, tid);
      },
      [&](int64_t b, int64_t l, int tid, int k, T du, bool sel) {
        const T gp = sel && gs ? gs[pos[static_cast<size_t>(b)]] : T(1);
        cuda::prior_dattr_store(a.data(), sg != nullptr, codes[static_cast<size_t>(tid * cuda::kPriorPer + k)],
                                da.data(), gp * du, sel, b, l, C, L);
      });
}

template <typename T>
std::vector<T> random_attributions(std::mt19937& rng, size_t count) {
  std::uniform_real_distribution<double> U(-1, 1);
  std::vector<T> a(count);
  for (auto& v : a) {  // some exact zeros, of both signs: sign 0
    const double q = U(rng);
    v = q < -0.9 ? T(0) : q < -0.8 ? T(-0.0) : T(U(rng));
  }
  return a;
}

// The rows the tests score in a batch of B: every row but b % 3 == 1.
std::vector<int64_t> scored_rows(int64_t B) {
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < B; ++b)
    if (b % 3 != 1) rows.push_back(b);
  return rows;
}

// Scored rows as the kernels index them: pos (each batch row's compact row, −1 when not scored) and compact (Rp
// entries: each compact row's batch row, −1 for padding).
struct RowLists {
  std::vector<int64_t> rows, pos, compact;
};
RowLists row_lists(int64_t B, const std::vector<int64_t>& rows, int64_t Rp) {
  REQUIRE(Rp >= static_cast<int64_t>(rows.size()));
  RowLists r{rows, std::vector<int64_t>(static_cast<size_t>(B), -1), std::vector<int64_t>(static_cast<size_t>(Rp), -1)};
  for (size_t p = 0; p < rows.size(); ++p)
    r.pos[static_cast<size_t>(rows[p])] = static_cast<int64_t>(p), r.compact[p] = rows[p];
  return r;
}

// Σ_j taps[j]·value(l + j − r) over the sources inside [0, L): the smoothing formula the blocks implement.
template <typename T, typename Value>
double smoothed(const std::vector<T>& taps, int64_t L, int64_t l, Value value) {
  const int64_t r = static_cast<int64_t>(taps.size()) / 2;
  double acc = 0;
  for (size_t j = 0; j < taps.size(); ++j) {
    const int64_t src = l + static_cast<int64_t>(j) - r;
    if (src >= 0 && src < L) acc += double(taps[j]) * value(src);
  }
  return acc;
}

// use_signs: the forward writes sign codes and the backward reads them (C <= kPriorSignMaxC), else the backward
// reads a. kC: the forward's compile-time base count (0: any C). pad: zero rows past the scored ones.
template <int kC, typename T>
void check_tiles(int64_t B, int64_t C, int64_t L, int n, uint32_t seed, bool use_signs, int64_t pad = 2) {
  INFO("B ", B, " C ", C, " L ", L, " taps ", n, " ", sizeof(T) == 4 ? "float32" : "float64", " signs ", use_signs,
       " kC ", kC, " pad ", pad);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> U(-1, 1);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const std::vector<int64_t> rows = scored_rows(B);
  const int64_t P = static_cast<int64_t>(rows.size()), Rp = P + pad;
  const RowLists lists = row_lists(B, rows, Rp);
  std::vector<T> a = random_attributions<T>(rng, static_cast<size_t>(B * C * L)), ds(static_cast<size_t>(Rp * L), nan),
                 taps(static_cast<size_t>(n));
  std::vector<uint8_t> signs(static_cast<size_t>(Rp * L), 0xFF);  // 0xFF: unwritten
  uint8_t* sg = use_signs ? signs.data() : nullptr;
  for (int64_t i = 0; i < P * L; ++i) ds[static_cast<size_t>(i)] = T(U(rng));  // padding rows NaN: never read
  for (auto& v : taps) v = T(0.5 + 0.5 * U(rng));
  std::vector<T> s(static_cast<size_t>(Rp * L), nan), da(a.size(), nan);
  smooth_forward<kC>(a, s, sg, taps, lists.compact, C, L);
  smooth_backward(a, sg, ds, da, taps, lists.pos, C, L);
  // Every scored position's sign code written by the forward, at its compact row, and equal to the attributions'
  // signs; the padding rows' codes untouched.
  if (use_signs)
    for (int64_t p = 0; p < Rp; ++p)
      for (int64_t l = 0; l < L; ++l) {
        const uint8_t code = signs[static_cast<size_t>(p * L + l)];
        if (p >= P) {
          REQUIRE(code == 0xFF);
          continue;
        }
        const int64_t b = lists.rows[static_cast<size_t>(p)];
        for (int64_t c = 0; c < C; ++c) {
          const T av = a[static_cast<size_t>((b * C + c) * L + l)];
          REQUIRE(cuda::prior_sign_of(code, c) == (av > T(0) ? 1 : av < T(0) ? -1 : 0));
        }
        REQUIRE((code >> (2 * C)) == 0);  // no bits past the bases
      }
  const double tol = sizeof(T) == 4 ? 1e-6 : 1e-14;
  double es = 0, ea = 0;
  for (int64_t p = 0; p < Rp; ++p) {  // the forward's compact rows
    const int64_t b = lists.compact[static_cast<size_t>(p)];
    for (int64_t l = 0; l < L; ++l) {
      const double ref = b < 0 ? 0.0 : smoothed(taps, L, l, [&](int64_t src) {
        double u = 0;
        for (int64_t c = 0; c < C; ++c) u += std::fabs(double(a[static_cast<size_t>((b * C + c) * L + src)]));
        return u;
      });
      const double got = double(s[static_cast<size_t>(p * L + l)]);
      REQUIRE(std::isfinite(got));  // written, from a window with no unloaded entry
      if (b < 0) REQUIRE(got == 0.0);  // padding: exactly 0
      es = std::max(es, std::fabs(got - ref) / std::max(1.0, std::fabs(ref)));
    }
  }
  for (int64_t b = 0; b < B; ++b) {  // the backward's batch rows
    const int64_t p = lists.pos[static_cast<size_t>(b)];
    for (int64_t l = 0; l < L; ++l) {
      const double du =
          p < 0 ? 0.0 : smoothed(taps, L, l, [&](int64_t src) { return double(ds[static_cast<size_t>(p * L + src)]); });
      for (int64_t c = 0; c < C; ++c) {
        const double av = double(a[static_cast<size_t>((b * C + c) * L + l)]);
        const double want = p >= 0 ? (av > 0 ? du : av < 0 ? -du : 0.0) : 0.0;
        const double g = double(da[static_cast<size_t>((b * C + c) * L + l)]);
        REQUIRE(std::isfinite(g));
        if (p < 0) REQUIRE(g == 0.0);
        ea = std::max(ea, std::fabs(g - want) / std::max(1.0, std::fabs(want)));
      }
    }
  }
  CHECK(es <= tol);
  CHECK(ea <= tol);
}

// The whole CUDA chain on the host: smoothing blocks, a naive R2C (X_f = Σ_l s_l e^{−2πi·fl/L}), the score blocks'
// per-thread partials (summed in thread order: the reduction tree differs on a GPU, within rounding), then either
// (unit) the score blocks' second pass, the spectrum gradient for g = 1 (padding rows 0), or (a repeated backward)
// the dX blocks for g; a naive C2R of the packed gradient (ds_l = Σ_f c_f·Re(dX_f e^{2πi·fl/L}), c_f = 2 for middle
// bins, 1 for DC and an even L's Nyquist, whose imaginary parts cuFFT's C2R ignores), the backward smoothing blocks
// (× g after the C2R when unit). Against the CPU twin.
template <typename T>
void check_chain(int64_t B, int64_t C, int64_t L, double sigma, uint32_t seed, bool unit) {
  const int64_t F = L / 2 + 1;
  const std::vector<int64_t> rows = scored_rows(B);
  const int64_t P = static_cast<int64_t>(rows.size()), Rp = cuda::prior_fft_rows(P, B);
  INFO("B ", B, " C ", C, " L ", L, " sigma ", sigma, " ", sizeof(T) == 4 ? "float32" : "float64", " P ", P, " Rp ",
       Rp, " unit ", unit);
  const RowLists lists = row_lists(B, rows, Rp);
  const int threads = cuda::prior_score_threads(F);  // of a score block
  {  // the index lists as the kernels get them (prior_index) are the test's own
    const std::vector<int32_t> idx = cuda::prior_index(B, rows);
    REQUIRE(static_cast<int64_t>(idx.size()) == B + Rp);
    CHECK(std::vector<int64_t>(idx.begin(), idx.begin() + B) == lists.pos);
    CHECK(std::vector<int64_t>(idx.begin() + B, idx.end()) == lists.compact);
  }
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> U(-1, 1);
  std::vector<T> a = random_attributions<T>(rng, static_cast<size_t>(B * C * L));
  std::vector<double> wd(static_cast<size_t>(F), 0.0), gd(static_cast<size_t>(P));
  for (int64_t f = 1; f < F; ++f) wd[static_cast<size_t>(f)] = 0.2 + 0.8 * (0.5 + 0.5 * U(rng));
  for (auto& v : gd) v = 0.5 + U(rng);
  const std::vector<double> tapsd = gaussian_kernel(sigma);
  std::vector<T> taps(tapsd.begin(), tapsd.end()), wf(wd.begin(), wd.end()), g(gd.begin(), gd.end());
  const double pi = std::acos(-1.0);

  // forward, on the Rp compact rows
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> s(static_cast<size_t>(Rp * L), nan);
  std::vector<uint8_t> signs(static_cast<size_t>(Rp * L), 0);
  uint8_t* sg = C <= cuda::kPriorSignMaxC ? signs.data() : nullptr;
  if (C == 4) smooth_forward<4>(a, s, sg, taps, lists.compact, C, L);
  else smooth_forward<0>(a, s, sg, taps, lists.compact, C, L);
  std::vector<Cplx<T>> z(static_cast<size_t>(Rp * F));
  for (int64_t p = 0; p < Rp; ++p)
    for (int64_t f = 0; f < F; ++f) {
      double re = 0, im = 0;
      for (int64_t l = 0; l < L; ++l) {
        const double th = -2 * pi * double(f * l % L) / double(L), v = double(s[static_cast<size_t>(p * L + l)]);
        re += v * std::cos(th), im += v * std::sin(th);
      }
      z[static_cast<size_t>(p * F + f)] = {T(re), T(im)};
    }
  std::vector<T> out(static_cast<size_t>(P), nan), nd(static_cast<size_t>(2 * P), nan);
  for (int64_t p = 0; p < P; ++p) {  // one score block per scored row
    T d = 0, n = 0;
    for (int tid = 0; tid < threads; ++tid) {
      T dt, nt;
      cuda::prior_score_partial(z.data() + p * F, wf.data(), F, tid, threads, dt, nt);
      d += dt, n += nt;
    }
    if (d == T(0)) d = T(1);
    nd[static_cast<size_t>(2 * p)] = n, nd[static_cast<size_t>(2 * p + 1)] = d;
    out[static_cast<size_t>(p)] = T(1) - n / d;
  }

  // the spectrum gradient on the compact rows (0 for the padding): the forward's for g = 1, or the backward's dX
  std::vector<Cplx<T>> dz(z.size(), {nan, nan});
  constexpr int kSpan = cuda::kPriorSpecThreads * cuda::kPriorSpecPer;
  for (int64_t p = 0; unit && p < Rp; ++p)
    for (int tid = 0; tid < threads; ++tid) {
      const bool scored = p < P;
      const T N = scored ? nd[static_cast<size_t>(2 * p)] : T(0);
      const T D = scored ? nd[static_cast<size_t>(2 * p + 1)] : T(1);
      cuda::prior_unit_dspec(z.data() + p * F, wf.data(), dz.data() + p * F, F, tid, threads, N, D,
                             L % 2 == 0, scored);
    }
  for (int64_t p = 0; !unit && p < Rp; ++p) {
    for (int64_t blk = 0; blk * kSpan < F; ++blk)
      for (int tid = 0; tid < cuda::kPriorSpecThreads; ++tid)
        for (int k = 0; k < cuda::kPriorSpecPer; ++k) {
          const int64_t f = blk * kSpan + tid + k * cuda::kPriorSpecThreads;
          if (f >= F) continue;
          auto& o = dz[static_cast<size_t>(p * F + f)];
          if (p >= P) {
            o = {T(0), T(0)};
            continue;
          }
          const T N = nd[static_cast<size_t>(2 * p)], D = nd[static_cast<size_t>(2 * p + 1)];
          const auto x = z[static_cast<size_t>(p * F + f)];
          cuda::prior_dspec_at(x.x, x.y, wf[static_cast<size_t>(f)], g[static_cast<size_t>(p)], D, N / D,
                               f == 0 || (L % 2 == 0 && f == F - 1), o.x, o.y);
        }
  }
  bool written = true;  // every bin of every compact row
  for (const auto& x : dz) written = written && std::isfinite(double(x.x)) && std::isfinite(double(x.y));
  REQUIRE(written);
  for (size_t e = static_cast<size_t>(P * F); e < dz.size(); ++e) REQUIRE((dz[e].x == T(0) && dz[e].y == T(0)));
  std::vector<T> ds(static_cast<size_t>(Rp * L));
  for (int64_t p = 0; p < Rp; ++p)
    for (int64_t l = 0; l < L; ++l) {
      double v = 0;
      for (int64_t f = 0; f < F; ++f) {
        const auto x = dz[static_cast<size_t>(p * F + f)];
        const bool edge = f == 0 || (L % 2 == 0 && f == F - 1);
        const double th = 2 * pi * double(f * l % L) / double(L);
        v += (edge ? 1.0 : 2.0) * (double(x.x) * std::cos(th) - (edge ? 0.0 : double(x.y)) * std::sin(th));
      }
      ds[static_cast<size_t>(p * L + l)] = T(v);
    }
  std::vector<T> da(a.size(), nan);
  smooth_backward(a, static_cast<const uint8_t*>(sg), ds, da, taps, lists.pos, C, L, unit ? g.data() : nullptr);

  // the CPU twin
  Context ctx(1, 1);
  Tensor at = Tensor::from_vector(ctx, {B, C, L}, std::vector<double>(a.begin(), a.end())).to(dtype_of<T>());
  Tensor ref = Tensor::empty(ctx, {P}, dtype_of<T>()), dref = Tensor::empty(ctx, {B, C, L}, dtype_of<T>());
  PriorSaved saved;
  cpu::fourier_prior_fwd(at, lists.rows, wd, tapsd, ref, saved);
  cpu::fourier_prior_bwd(at, lists.rows, wd, tapsd, Tensor::from_vector(ctx, {P}, gd).to(dtype_of<T>()), saved,
                         dref);
  const std::vector<double> rv = ref.to_vector<double>(), dv = dref.to_vector<double>();
  auto rel = [](const auto& got, const std::vector<double>& want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      REQUIRE(std::isfinite(double(got[i])));
      num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]), den += want[i] * want[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
  };
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-12;
  CHECK(rel(out, rv) <= tol);
  CHECK(rel(da, dv) <= tol * 10);
  for (int64_t b = 0; b < B; ++b)  // rows not scored: gradient exactly 0
    if (lists.pos[static_cast<size_t>(b)] < 0)
      for (int64_t e = b * C * L; e < (b + 1) * C * L; ++e) REQUIRE(da[static_cast<size_t>(e)] == T(0));
}

}  // namespace

TEST_SUITE("cuda") {
TEST_CASE("prior_fft_rows: the compact spectrum rows cover the scored rows, at most 8 sizes per batch (host)") {
  for (int64_t B = 1; B <= 300; ++B) {
    const int64_t g = (B + 7) / 8;
    std::vector<int64_t> sizes;
    for (int64_t P = 1; P <= B; ++P) {
      const int64_t Rp = cuda::prior_fft_rows(P, B);
      INFO("B ", B, " P ", P, " Rp ", Rp);
      REQUIRE(Rp >= P);
      REQUIRE(Rp <= B);
      REQUIRE(Rp - P < g);
      if (sizes.empty() || sizes.back() != Rp) sizes.push_back(Rp);
    }
    CHECK(sizes.size() <= 8);
    CHECK(cuda::prior_fft_rows(B, B) == B);
  }
  CHECK(cuda::prior_fft_rows(4096, 8192) == 4096);  // the bench's half-scored batch: no padding
  CHECK(cuda::prior_fft_rows(13, 20) == 15);  // the chain case below
  // prior_index: each batch row's compact row, then each compact row's batch row, −1 where there is none
  const std::vector<int64_t> rows = {0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
  const std::vector<int32_t> idx = cuda::prior_index(20, rows);
  REQUIRE(idx.size() == 35u);
  for (int32_t b = 0; b < 20; ++b) {
    const auto it = std::find(rows.begin(), rows.end(), b);
    CHECK(idx[static_cast<size_t>(b)] == (it == rows.end() ? -1 : static_cast<int32_t>(it - rows.begin())));
  }
  for (size_t p = 0; p < 15; ++p) CHECK(idx[20 + p] == (p < rows.size() ? rows[p] : -1));
}

TEST_CASE("prior spectrum gradient: finite and accurate in float32 for tiny and huge D (host)") {
  // dm = −g·(w − N/D)/D. Written as w/D − N/D², D² left float32's range: 0 for D = 1e-24 (N/D² inf, or NaN at
  // N = 0), denormal for 3e-21 (a few digits), inf for 1e25 (N/D² 0: a finite, wrong gradient). Bins of magnitude
  // about 1 keep |X| itself in range, so only D's range is tested; the reference is the same formula in double.
  const float xf = 0.6f, yf = 0.8f, wf1 = 0.3f, gf = 1.5f;
  const double tol = 4e-6;  // a few float32 roundings, one subtraction with up to 10× cancellation
  auto close = [&](float got, double want) { return std::abs(double(got) - want) <= tol * std::abs(want); };
  for (double D : {1e-24, 3e-21, 1e-15, 1e19, 1e25, 1e30})
    for (double frac : {0.0, 0.5, 0.9, 1.0}) {  // N / D
      INFO("D ", D, " N/D ", frac);
      const auto Df = static_cast<float>(D), Nf = static_cast<float>(frac * D);
      const double nd = double(Nf) / double(Df);
      for (bool edge : {false, true}) {
        float gx = 0, gy = 0;
        double rx = 0, ry = 0;
        cuda::prior_dspec_at(xf, yf, wf1, gf, Df, Nf / Df, edge, gx, gy);
        cuda::prior_dspec_at(double(xf), double(yf), double(wf1), double(gf), double(Df), nd, edge, rx, ry);
        REQUIRE(std::isfinite(gx));
        REQUIRE(std::isfinite(gy));
        CHECK(close(gx, rx));
        CHECK(close(gy, ry));
      }
      // the score kernel's unit gradient over a row of 9 bins (two threads, rounds as the kernel's), L even
      const int64_t F = 9;
      std::vector<Cplx<float>> z(F);
      std::vector<float> wf(F);
      for (int64_t f = 0; f < F; ++f) {
        z[static_cast<size_t>(f)] = {0.1f * float(f + 1), -0.05f * float(f)};
        wf[static_cast<size_t>(f)] = f == 0 ? 0.0f : 0.1f * float(f);
      }
      std::vector<Cplx<float>> u(F, {std::numeric_limits<float>::quiet_NaN(), 0.0f});
      for (int tid = 0; tid < 2; ++tid)
        cuda::prior_unit_dspec(z.data(), wf.data(), u.data(), F, tid, 2, Nf, Df, true, true);
      for (int64_t f = 0; f < F; ++f) {
        const auto zf = z[static_cast<size_t>(f)], uf = u[static_cast<size_t>(f)];
        double rx = 0, ry = 0;
        cuda::prior_dspec_at(double(zf.x), double(zf.y), double(wf[static_cast<size_t>(f)]), 1.0, double(Df), nd,
                             f == 0 || f == F - 1, rx, ry);
        REQUIRE(std::isfinite(uf.x));
        REQUIRE(std::isfinite(uf.y));
        CHECK(close(uf.x, rx));
        CHECK(close(uf.y, ry));
      }
    }
}

TEST_CASE("prior smoothing blocks (forward window of Σ|a|, backward smoothed gradient × sign) = the formulas (host)") {
  // The binary geometry (L 1000, 4 bases, sigma 3: 25 taps), BPNet's 1346 (two spans), one span exactly, one
  // position, the widest taps (63), a single tap, rows the prior skips. Each with the forward's sign codes (C <= 4)
  // and without (the backward reads a); DNA through the kernel's 4-base instance and the generic one.
  for (bool sg : {true, false}) {
    check_tiles<4, float>(3, 4, 1000, 25, 1, sg);
    check_tiles<0, float>(3, 4, 1000, 25, 1, sg);
    check_tiles<4, float>(5, 4, 300, 25, 9, sg, 0);  // no padding rows
    check_tiles<4, double>(3, 4, 1346, 25, 2, sg);
    check_tiles<4, float>(2, 4, cuda::kPriorSpan, 25, 3, sg);
    check_tiles<4, float>(2, 4, cuda::kPriorSpan + 1, 63, 3, sg);
    check_tiles<4, float>(2, 4, 1, 25, 4, sg);
    check_tiles<4, double>(4, 4, 300, 63, 5, sg);
    check_tiles<0, float>(2, 3, 257, 1, 6, sg);
    check_tiles<0, double>(1, 1, 40, 63, 7, sg);
  }
  check_tiles<0, float>(2, 6, 300, 25, 8, false);  // more bases than a code holds: the backward reads a
}

TEST_CASE("prior chain with naive DFTs for cuFFT (smoothing, score, dX, C2R packing) equals the CPU twin (host)") {
  // Both backwards: the first after a forward (the forward's unit spectrum gradient, × g at the end), a repeated one
  // (dX for g from the saved spectrum).
  // Odd and even lengths (the Nyquist bin), two bins, one tap, more than one dX block of bins (F > 512), rows the
  // prior skips, 3 and 6 bases (the generic forward; 6: the backward reads a), a batch of 20 whose 13 scored rows
  // the spectrum side pads to 15 (prior_fft_rows).
  for (auto [B, C, L, sigma] : {std::tuple<int64_t, int64_t, int64_t, double>{4, 4, 100, 3.0}, {3, 4, 17, 3.0},
                                {2, 4, 2, 3.0}, {1, 4, 61, 1.0}, {3, 4, 1100, 3.0}, {4, 3, 40, 0.0},
                                {3, 6, 33, 3.0}, {20, 4, 40, 3.0}}) {
    for (bool unit : {true, false}) {
      check_chain<double>(B, C, L, sigma, 11, unit);
      check_chain<float>(B, C, L, sigma, 12, unit);
    }
  }
}
}
