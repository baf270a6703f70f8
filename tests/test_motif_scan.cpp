// Motif scan (models/eval/motif_scan.*) against a brute-force scan of explicit reverse complements on
// random sequences with planted motifs; motif-site fraction on a hand-built attribution; position masks.
// Run: build/tests/lowpass_tests -ts=motif_scan
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <tuple>

#include "engine/error.h"
#include "models/data/meme.h"
#include "models/eval/attr_metrics.h"
#include "models/eval/motif_scan.h"

using namespace lowpass;
using namespace lowpass::eval;

namespace {
// Plain score of bases[s .. s+W) against motif m (probabilities, pseudocount pc), no shared code.
double plain_score(const Motif& m, const std::vector<int>& seq, int64_t s, double pc) {
  double t = 0;
  for (int64_t w = 0; w < m.width(); ++w) t += std::log2((m.pwm[w][seq[s + w]] + pc) / (1 + 4 * pc) * 4.0);
  return t;
}
double plain_max(const Motif& m, double pc) {
  double t = 0;
  for (const auto& r : m.pwm) {
    double b = -1e300;
    for (double p : r) b = std::max(b, std::log2((p + pc) / (1 + 4 * pc) * 4.0));
    t += b;
  }
  return t;
}
using HitKey = std::tuple<int64_t, char, int64_t>;  // start, strand, motif
std::set<HitKey> brute_force(const std::vector<int>& seq, const std::vector<Motif>& motifs, double f, double pc) {
  const int64_t L = static_cast<int64_t>(seq.size());
  std::vector<int> rc(seq.size());  // reverse complement of the whole sequence; N stays N
  for (int64_t l = 0; l < L; ++l) rc[L - 1 - l] = seq[l] < 0 ? -1 : 3 - seq[l];
  std::set<HitKey> r;
  for (size_t k = 0; k < motifs.size(); ++k) {
    const int64_t W = motifs[k].width();
    const double cut = f * plain_max(motifs[k], pc) - 1e-9;  // the scan's documented slack
    for (int64_t s = 0; s + W <= L; ++s) {
      bool n = false;
      for (int64_t w = 0; w < W; ++w) n |= seq[s + w] < 0;
      if (n) continue;
      if (plain_score(motifs[k], seq, s, pc) >= cut) r.insert({s, '+', static_cast<int64_t>(k)});
      // the window [s, s+W) read on the minus strand starts at L − s − W in rc
      if (plain_score(motifs[k], rc, L - s - W, pc) >= cut) r.insert({s, '-', static_cast<int64_t>(k)});
    }
  }
  return r;
}
std::vector<int> consensus(const Motif& m) {
  std::vector<int> c;
  for (const auto& r : m.pwm) c.push_back(static_cast<int>(std::max_element(r.begin(), r.end()) - r.begin()));
  return c;
}
Motif small_motif() {  // width 3, asymmetric: "ACG" mostly, so its RC is "CGT"
  return parse_meme("MEME version 4\n\nALPHABET= ACGT\n\nMOTIF m1 small\nletter-probability matrix: alength= 4 w= 3\n"
                    "0.7 0.1 0.1 0.1\n0.1 0.7 0.1 0.1\n0.1 0.1 0.7 0.1\n",
                    "<test>")
      .front();
}
}  // namespace

TEST_SUITE("motif_scan") {
TEST_CASE("scan equals a brute-force scan on random sequences with planted motifs") {
  std::vector<Motif> motifs{default_motif(), small_motif()};
  std::mt19937_64 g(7);
  for (int64_t L : {1, 2, 3, 20, 21, 101, 257}) {
    for (double f : {0.5, 0.8, 1.0}) {
      std::vector<int> seq(L);
      for (auto& b : seq) b = static_cast<int>(g() % 4);
      if (L > 5) seq[g() % L] = -1;  // an N
      const auto c = consensus(motifs[0]);
      const int64_t W = motifs[0].width();
      int64_t planted = -1, planted_rc = -1;
      if (L >= 2 * W + 2) {  // consensus forward at one place, reverse-complemented at another
        planted = static_cast<int64_t>(g() % (L / 2 - W));
        planted_rc = L / 2 + static_cast<int64_t>(g() % (L - L / 2 - W + 1));
        for (int64_t w = 0; w < W; ++w) {
          seq[planted + w] = c[w];
          seq[planted_rc + W - 1 - w] = 3 - c[w];
        }
      }
      ScanOptions o;
      o.threshold = f;
      auto hits = scan_sequence(seq, motifs, o);
      std::set<HitKey> got;
      for (const auto& h : hits) {
        got.insert({h.start, h.strand, h.motif});
        CHECK(h.end - h.start == motifs[h.motif].width());
        std::vector<int> win(seq.begin() + h.start, seq.begin() + h.end);
        if (h.strand == '-') {
          std::reverse(win.begin(), win.end());
          for (auto& b : win) b = 3 - b;
        }
        CHECK(h.score == doctest::Approx(plain_score(motifs[h.motif], win, 0, o.pseudocount)).epsilon(1e-12));
      }
      INFO("L = ", L, " threshold ", f);
      CHECK(got.size() == hits.size());
      CHECK(got == brute_force(seq, motifs, f, o.pseudocount));
      if (planted >= 0) {
        CHECK(got.count({planted, '+', 0}) == 1);
        CHECK(got.count({planted_rc, '-', 0}) == 1);
      }
    }
  }
}

TEST_CASE("threshold 0.8 finds a planted SPI1 consensus in a long random sequence and little else") {
  std::vector<Motif> motifs{default_motif()};
  std::mt19937_64 g(3);
  std::vector<int> seq(2000);
  for (auto& b : seq) b = static_cast<int>(g() % 4);
  const auto c = consensus(motifs[0]);
  for (size_t w = 0; w < c.size(); ++w) seq[1000 + w] = c[w];
  auto hits = scan_sequence(seq, motifs, ScanOptions{});
  bool found = false;
  for (const auto& h : hits) found |= h.start == 1000 && h.strand == '+';
  CHECK(found);
  CHECK(hits.size() < 10);  // random background rarely reaches 80 % of the maximum
}

TEST_CASE("decode one-hot, N columns, masks and the motif-site fraction on a hand-built attribution") {
  const int64_t L = 6;
  // bases A C G T N A, row-major (4, L)
  std::vector<double> ohe(4 * L, 0.0);
  int b[L] = {0, 1, 2, 3, -1, 0};
  for (int64_t l = 0; l < L; ++l)
    if (b[l] >= 0) ohe[b[l] * L + l] = 1.0;
  auto dec = decode_one_hot(ohe, L, "x");
  for (int64_t l = 0; l < L; ++l) CHECK(dec[l] == b[l]);
  ohe[1 * L + 0] = 1.0;  // two bases at position 0
  CHECK_THROWS_AS(decode_one_hot(ohe, L, "x"), Error);
  CHECK_THROWS_AS(decode_one_hot(ohe, L + 1, "x"), Error);

  // small motif ACG at 0 (+); CGT at 1 is its reverse complement (−); window over the N is skipped
  auto hits = scan_sequence(dec, {small_motif()}, ScanOptions{0.99, 0.01});
  REQUIRE(hits.size() == 2);
  CHECK(hits[0].start == 0);
  CHECK(hits[0].strand == '+');
  CHECK(hits[1].start == 1);
  CHECK(hits[1].strand == '-');
  auto mask = hit_mask(hits, L);
  std::vector<uint8_t> want{1, 1, 1, 1, 0, 0};
  CHECK(mask == want);
  // attribution (4, L): |.| per position 1, 2, 3, 4, 5, 5 spread over bases with signs
  std::vector<double> attr(4 * L, 0.0);
  double mag[L] = {1, 2, 3, 4, 5, 5};
  for (int64_t l = 0; l < L; ++l) {
    attr[0 * L + l] = -0.5 * mag[l];
    attr[3 * L + l] = 0.5 * mag[l];
  }
  CHECK(fraction_inside(attr, L, mask) == doctest::Approx(10.0 / 20.0));
  CHECK(overlap_auprc({attr}, L, {mask}) >= 0.0);
  CHECK_THROWS_AS(scan_sequence(dec, {small_motif()}, ScanOptions{1.5, 0.01}), Error);
}

TEST_CASE("the simulator's motif_positions.tsv gives masks for one split") {
  namespace fs = std::filesystem;
  fs::path p = fs::temp_directory_path() / "lowpass_motif_positions_test.tsv";
  {
    std::ofstream f(p);
    f << "split\tindex\tstart\tend\tstrand\n"
      << "train\t0\t0\t3\t+\n"
      << "test\t1\t2\t5\t-\n"
      << "test\t1\t6\t8\t+\n";
  }
  auto m = read_position_masks(p.string(), "test", 2, 8);
  REQUIRE(m.size() == 2);
  CHECK(m[0] == std::vector<uint8_t>(8, 0));
  CHECK(m[1] == std::vector<uint8_t>{0, 0, 1, 1, 1, 0, 1, 1});
  CHECK_THROWS_AS(read_position_masks(p.string(), "test", 1, 8), Error);   // index 1 >= 1 row
  CHECK_THROWS_AS(read_position_masks(p.string(), "test", 2, 7), Error);   // end 8 > L 7
  CHECK_THROWS_AS(read_position_masks(p.string(), "valid", 2, 8), Error);  // nothing for that split
  CHECK_THROWS_AS(read_position_masks((p.string() + ".missing"), "test", 2, 8), Error);
  fs::remove(p);
}
}
