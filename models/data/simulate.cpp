// Simulated datasets with known truth (REFERENCE §5.3): PWM samples embedded in zero-order
// backgrounds; profile reads ~ Poisson total, multinomial over Gaussian piles 5'/3' of each site.
// Test: build/tests/lowpass_tests -ts=simulate
#include "models/data/simulate.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "engine/error.h"

namespace lowpass {

namespace {

// Fill x[(0..3) * L + pos] for a zero-order background with the given GC content.
void fill_background(float* x, int64_t L, double gc, Rng& rng) {
  const double pa = (1 - gc) / 2, pc = gc / 2;
  const double cum[3] = {pa, pa + pc, pa + 2 * pc};
  for (int64_t p = 0; p < L; ++p) {
    double u = rng.uniform();
    int b = u < cum[0] ? 0 : u < cum[1] ? 1 : u < cum[2] ? 2 : 3;
    for (int c = 0; c < 4; ++c) x[c * L + p] = c == b ? 1.f : 0.f;
  }
}

// Write bases into x at [start, start + W); reverse-complemented when !forward.
void embed(float* x, int64_t L, int64_t start, std::vector<int> bases, bool forward) {
  if (!forward) {
    std::reverse(bases.begin(), bases.end());
    for (auto& b : bases) b = 3 - b;  // A<->T, C<->G in the order A C G T
  }
  for (size_t j = 0; j < bases.size(); ++j) {
    int64_t p = start + static_cast<int64_t>(j);
    for (int c = 0; c < 4; ++c) x[c * L + p] = c == bases[j] ? 1.f : 0.f;
  }
}

// Random order of npos positives among n examples.
std::vector<int> shuffled_labels(int64_t n, int64_t npos, Rng& rng) {
  std::vector<int> lab(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < npos; ++i) lab[static_cast<size_t>(i)] = 1;
  std::shuffle(lab.begin(), lab.end(), rng.engine());
  return lab;
}

// Poisson total, then a multinomial over `rate` (unnormalised), counts added into out (O).
void sample_reads(const std::vector<double>& rate, Rng& rng, float* out) {
  double total = std::accumulate(rate.begin(), rate.end(), 0.0);
  if (total <= 0) return;
  int64_t n = std::poisson_distribution<int64_t>(total)(rng.engine());
  std::vector<double> cum(rate.size());
  std::partial_sum(rate.begin(), rate.end(), cum.begin());
  for (int64_t r = 0; r < n; ++r) {
    double u = rng.uniform() * total;
    size_t k = static_cast<size_t>(std::upper_bound(cum.begin(), cum.end(), u) - cum.begin());
    out[std::min(k, rate.size() - 1)] += 1.f;
  }
}

void check_common(int64_t n, double frac, double gc, int64_t W, int64_t bound, int64_t L, const char* what) {
  LP_CHECK(n >= 1, what, ": n must be >= 1, got ", n);
  LP_CHECK(frac >= 0 && frac <= 1, what, ": positive_fraction must be in [0, 1], got ", frac);
  LP_CHECK(gc >= 0 && gc <= 1, what, ": gc must be in [0, 1], got ", gc);
  LP_CHECK(bound >= 0, what, ": motif_bound must be >= 0, got ", bound);
  LP_CHECK(W + 2 * bound <= L, what, ": motif width ", W, " + 2·motif_bound ", bound,
           " does not fit in length ", L);
}

}  // namespace

std::vector<int> sample_pwm(const Motif& motif, Rng& rng) {
  std::vector<int> b(motif.pwm.size());
  for (size_t j = 0; j < motif.pwm.size(); ++j) {
    double u = rng.uniform(), c = 0;
    int k = 3;
    for (int q = 0; q < 4; ++q) {
      c += motif.pwm[j][q];
      if (u < c) { k = q; break; }
    }
    b[j] = k;
  }
  return b;
}

ArrayDataset simulate_binary(const Motif& motif_in, const BinarySimOptions& o, Rng& rng) {
  const int64_t W = motif_in.width(), L = o.length;
  check_common(o.n, o.positive_fraction, o.gc, W, o.motif_bound, L, "simulate (binary)");
  Motif motif = with_pseudocount(motif_in, o.pseudocount);
  ArrayDataset ds;
  ds.source = "<simulated binary>";
  ds.type = "binary";
  ds.n = o.n;
  ds.length = L;
  ds.x.assign(static_cast<size_t>(o.n * 4 * L), 0.f);
  ds.y_shape = {o.n, 1};
  ds.y.assign(static_cast<size_t>(o.n), 0.f);
  ds.status.assign(static_cast<size_t>(o.n), 0);
  ExtraArray start{{o.n}, std::vector<int64_t>(static_cast<size_t>(o.n), -1)};
  ExtraArray strand{{o.n}, std::vector<int64_t>(static_cast<size_t>(o.n), -1)};
  const int64_t npos = static_cast<int64_t>(std::llround(o.positive_fraction * static_cast<double>(o.n)));
  auto lab = shuffled_labels(o.n, npos, rng);
  const int64_t lo = (L - W) / 2 - o.motif_bound;  // first allowed start
  for (int64_t i = 0; i < o.n; ++i) {
    float* x = ds.x.data() + i * 4 * L;
    if (lab[static_cast<size_t>(i)]) {
      fill_background(x, L, o.gc, rng);
      int64_t s = lo + rng.randint(0, 2 * o.motif_bound + 1);
      bool fwd = rng.uniform() >= o.revcomp_prob;
      embed(x, L, s, sample_pwm(motif, rng), fwd);
      ds.y[static_cast<size_t>(i)] = 1.f;
      ds.status[static_cast<size_t>(i)] = 1;
      start.values[static_cast<size_t>(i)] = s;
      strand.values[static_cast<size_t>(i)] = fwd ? 1 : 0;
    } else {
      fill_background(x, L, 0.5, rng);
    }
  }
  ds.extra["motif_start"] = std::move(start);
  ds.extra["motif_strand"] = std::move(strand);
  return ds;
}

ArrayDataset simulate_profile(const Motif& motif_in, const ProfileSimOptions& o, Rng& rng) {
  const int64_t W = motif_in.width(), I = o.input_length, O = o.output_length, M = o.max_instances;
  check_common(o.n, o.positive_fraction, o.gc, W, o.motif_bound, I, "simulate (profile)");
  LP_CHECK(O >= 1 && O <= I, "simulate (profile): output_length must be in [1, input_length], got ", O);
  LP_CHECK(M >= 1, "simulate (profile): max_instances must be >= 1, got ", M);
  LP_CHECK(o.peak_width > 0, "simulate (profile): peak_width must be > 0");
  Motif motif = with_pseudocount(motif_in, o.pseudocount);
  ArrayDataset ds;
  ds.source = "<simulated profile>";
  ds.type = "profile";
  ds.n = o.n;
  ds.length = I;
  ds.x.assign(static_cast<size_t>(o.n * 4 * I), 0.f);
  ds.y_shape = {o.n, 1, 2, O};
  ds.y.assign(static_cast<size_t>(o.n * 2 * O), 0.f);
  if (o.control) {
    ds.control_shape = {o.n, 1, 2, O};
    ds.control.assign(static_cast<size_t>(o.n * 2 * O), 0.f);
  }
  ds.status.assign(static_cast<size_t>(o.n), 0);
  ExtraArray start{{o.n, M}, std::vector<int64_t>(static_cast<size_t>(o.n * M), -1)};
  ExtraArray strand{{o.n, M}, std::vector<int64_t>(static_cast<size_t>(o.n * M), -1)};
  const int64_t npos = static_cast<int64_t>(std::llround(o.positive_fraction * static_cast<double>(o.n)));
  auto lab = shuffled_labels(o.n, npos, rng);
  const int64_t lo = (I - W) / 2 - o.motif_bound, off = (I - O) / 2;
  std::vector<double> rate(static_cast<size_t>(O));
  for (int64_t i = 0; i < o.n; ++i) {
    float* x = ds.x.data() + i * 4 * I;
    fill_background(x, I, o.gc, rng);
    std::vector<int64_t> starts;
    if (lab[static_cast<size_t>(i)]) {
      int64_t k = rng.randint(1, M + 1);
      for (int64_t tries = 0; static_cast<int64_t>(starts.size()) < k && tries < 50 * k; ++tries) {
        int64_t s = lo + rng.randint(0, 2 * o.motif_bound + 1);
        bool clash = false;
        for (auto t : starts) clash |= std::llabs(t - s) < W;
        if (!clash) starts.push_back(s);
      }
      std::sort(starts.begin(), starts.end());
      for (size_t j = 0; j < starts.size(); ++j) {
        bool fwd = rng.uniform() >= 0.5;
        embed(x, I, starts[j], sample_pwm(motif, rng), fwd);
        start.values[static_cast<size_t>(i * M) + j] = starts[j];
        strand.values[static_cast<size_t>(i * M) + j] = fwd ? 1 : 0;
      }
      ds.status[static_cast<size_t>(i)] = 1;
    }
    for (int s = 0; s < 2; ++s) {  // strand 0 = negative (reads 3' of the site), 1 = positive (5')
      for (int64_t p = 0; p < O; ++p) rate[static_cast<size_t>(p)] = o.background_reads / static_cast<double>(O);
      for (auto st : starts) {
        double centre = static_cast<double>(st - off) + (static_cast<double>(W) - 1) / 2 +
                        (s == 1 ? -o.peak_offset : o.peak_offset);
        double norm = 0;
        std::vector<double> g(static_cast<size_t>(O));
        for (int64_t p = 0; p < O; ++p) {
          double z = (static_cast<double>(p) - centre) / o.peak_width;
          g[static_cast<size_t>(p)] = std::exp(-0.5 * z * z);
          norm += g[static_cast<size_t>(p)];
        }
        if (norm > 0)
          for (int64_t p = 0; p < O; ++p) rate[static_cast<size_t>(p)] += o.reads_per_site * g[static_cast<size_t>(p)] / norm;
      }
      sample_reads(rate, rng, ds.y.data() + (i * 2 + s) * O);
      if (o.control) {
        std::fill(rate.begin(), rate.end(), o.control_reads / static_cast<double>(O));
        sample_reads(rate, rng, ds.control.data() + (i * 2 + s) * O);
      }
    }
  }
  ds.extra["motif_start"] = std::move(start);
  ds.extra["motif_strand"] = std::move(strand);
  return ds;
}

}  // namespace lowpass
