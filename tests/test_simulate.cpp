// MEME reader and the simulator: bundled SPI1 = JASPAR file, parse errors, GC content, motif
// placement/strand recorded truthfully, profile reads piled around the recorded sites.
// Run: build/tests/lowpass_tests -ts=simulate
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/error.h"
#include "models/data/meme.h"
#include "models/data/simulate.h"
#include "tests/errors.h"

using namespace lowpass;

namespace {
using test::error_of;
using test::has;

// The repository's models/data/motifs/SPI1.meme (tests run from the source root; else via __FILE__).
std::string bundled_motif_path() {
  namespace fs = std::filesystem;
  for (fs::path p : {fs::path("models/data/motifs/SPI1.meme"),
                     fs::path(__FILE__).parent_path() / ".." / "models/data/motifs/SPI1.meme"})
    if (fs::exists(p)) return p.string();
  return "";
}

int base_at(const ArrayDataset& ds, int64_t i, int64_t p) {
  for (int c = 0; c < 4; ++c)
    if (ds.x[static_cast<size_t>((i * 4 + c) * ds.length + p)] == 1.f) return c;
  return -1;
}

// log-likelihood ratio of the motif at [s, s+W) on the given strand vs a uniform background.
double motif_llr(const ArrayDataset& ds, const Motif& m, int64_t i, int64_t s, bool fwd) {
  double llr = 0;
  for (int64_t j = 0; j < m.width(); ++j) {
    int b = fwd ? base_at(ds, i, s + j) : 3 - base_at(ds, i, s + m.width() - 1 - j);
    llr += std::log((m.pwm[static_cast<size_t>(j)][static_cast<size_t>(b)] + 1e-5) / 0.25);
  }
  return llr;
}
}  // namespace

TEST_SUITE("simulate") {
TEST_CASE("bundled SPI1 equals the repository file and JASPAR MA0080.6") {
  Motif m = default_motif();
  CHECK(m.id == "MA0080.6");
  CHECK(m.name == "Spi1");
  REQUIRE(m.width() == 17);
  CHECK(m.pwm[0][0] == doctest::Approx(0.394485 / (0.394485 + 0.147037 + 0.262961 + 0.195517)));
  CHECK(m.pwm[9][0] == doctest::Approx(0.969714).epsilon(1e-5));  // the GGAA core: row 10 is A
  std::string path = bundled_motif_path();
  REQUIRE_MESSAGE(!path.empty(), "models/data/motifs/SPI1.meme not found from the working directory");
  auto file = read_meme(path);
  REQUIRE(file.size() == 1);
  for (int64_t j = 0; j < m.width(); ++j)
    for (int c = 0; c < 4; ++c) CHECK(file[0].pwm[static_cast<size_t>(j)][static_cast<size_t>(c)] ==
                                      m.pwm[static_cast<size_t>(j)][static_cast<size_t>(c)]);
  const char* jaspar = "/work/shared/data/motifs/JASPAR2022_CORE_nonredundant_alltaxa.meme";
  if (std::filesystem::exists(jaspar)) {
    auto all = read_meme(jaspar);
    CHECK(all.size() > 500);
    const Motif& s = select_motif(all, "spi1", jaspar);
    CHECK(s.id == "MA0080.6");
    CHECK(s.pwm == m.pwm);
  } else {
    MESSAGE("shared JASPAR file absent: cross-check skipped");
  }
}

TEST_CASE("MEME parse errors name the file and line") {
  CHECK(has(error_of([] { parse_meme("hello\n", "a.meme"); }), "a.meme"));
  std::string head = "MEME version 4\n\nALPHABET= ACGT\n\n";
  auto e1 = error_of([&] {
    parse_meme(head + "MOTIF X\nletter-probability matrix: alength= 4 w= 2\n0.5 0.5 0 0\n0.2 0.2 0.2\n", "b.meme");
  });
  CHECK(has(e1, "b.meme:8"));
  auto e2 = error_of([&] {
    parse_meme(head + "MOTIF X\nletter-probability matrix: alength= 4 w= 2\n0.5 0.5 0.5 0\n0.25 0.25 0.25 0.25\n",
               "c.meme");
  });
  CHECK(has(e2, "sums to"));
  auto e3 = error_of([&] {
    parse_meme(head + "MOTIF X\nletter-probability matrix: alength= 4 w= 3\n0.5 0.5 0 0\n", "d.meme");
  });
  CHECK(has(e3, "w= 3"));
  CHECK(has(error_of([] { read_meme("/nonexistent/x.meme"); }), "/nonexistent/x.meme"));
  auto ok = parse_meme(head + "MOTIF A a\nletter-probability matrix: alength= 4 w= 1\n1 0 0 0\n\n"
                              "MOTIF B\nletter-probability matrix: alength= 4\n0 1 0 0\n0 0 1 0\n",
                       "e.meme");
  REQUIRE(ok.size() == 2);
  CHECK(ok[1].width() == 2);
  CHECK(select_motif(ok, "b", "e.meme").id == "B");
  CHECK(has(error_of([&] { select_motif(ok, "zz", "e.meme"); }), "'zz'"));
}

TEST_CASE("binary simulation: labels, GC bias, motif at the recorded place and strand") {
  Motif m = default_motif();
  BinarySimOptions o;
  o.n = 301;
  o.length = 251;  // odd on purpose
  o.gc = 0.6;
  o.motif_bound = 40;
  Rng rng(5);
  ArrayDataset ds = simulate_binary(m, o, rng);
  ds.validate();
  REQUIRE(ds.n == 301);
  const auto& st = ds.extra.at("motif_start").values;
  const auto& sd = ds.extra.at("motif_strand").values;
  int64_t npos = 0, nfwd = 0, gc_pos = 0, len_pos = 0, gc_neg = 0, len_neg = 0;
  double llr_true = 0, llr_other = 0;
  for (int64_t i = 0; i < ds.n; ++i) {
    for (int64_t p = 0; p < ds.length; ++p) {
      int b = base_at(ds, i, p);
      REQUIRE(b >= 0);  // exactly one-hot
    }
    bool pos = ds.y[static_cast<size_t>(i)] == 1.f;
    CHECK(ds.status[static_cast<size_t>(i)] == (pos ? 1 : 0));
    int64_t s = st[static_cast<size_t>(i)];
    if (!pos) {
      CHECK(s == -1);
      for (int64_t p = 0; p < ds.length; ++p) gc_neg += (base_at(ds, i, p) == 1 || base_at(ds, i, p) == 2);
      len_neg += ds.length;
      continue;
    }
    ++npos;
    nfwd += sd[static_cast<size_t>(i)];
    int64_t lo = (ds.length - m.width()) / 2 - o.motif_bound;
    CHECK(s >= lo);
    CHECK(s <= lo + 2 * o.motif_bound);
    llr_true += motif_llr(ds, m, i, s, sd[static_cast<size_t>(i)] == 1);
    llr_other += motif_llr(ds, m, i, s, sd[static_cast<size_t>(i)] != 1);
    for (int64_t p = 0; p < ds.length; ++p)
      if (p < s || p >= s + m.width()) gc_pos += (base_at(ds, i, p) == 1 || base_at(ds, i, p) == 2), ++len_pos;
  }
  CHECK(npos == 151);  // llround(0.5 · 301)
  CHECK(std::abs(static_cast<double>(nfwd) / npos - 0.5) < 0.15);
  CHECK(static_cast<double>(gc_pos) / len_pos == doctest::Approx(0.6).epsilon(0.03));
  CHECK(static_cast<double>(gc_neg) / len_neg == doctest::Approx(0.5).epsilon(0.03));
  // The recorded strand explains the embedded bases far better than the other strand.
  CHECK(llr_true / npos > 10.0);
  CHECK(llr_true / npos > llr_other / npos + 5.0);

  Rng a(9), b(9);
  CHECK(simulate_binary(m, o, a).x == simulate_binary(m, o, b).x);  // deterministic given the seed

  o.motif_bound = 0;  // exactly central
  Rng c(1);
  auto centred = simulate_binary(m, o, c);
  for (int64_t i = 0; i < centred.n; ++i)
    if (centred.y[static_cast<size_t>(i)] == 1.f) CHECK(centred.extra.at("motif_start").values[static_cast<size_t>(i)] == (251 - 17) / 2);
  o.motif_bound = 200;
  CHECK(has(error_of([&] { simulate_binary(m, o, c); }), "motif_bound"));
}

TEST_CASE("profile simulation: reads pile up 5' (+) and 3' (−) of recorded sites") {
  Motif m = default_motif();
  ProfileSimOptions o;
  o.n = 60;
  o.input_length = 301;
  o.output_length = 201;
  o.motif_bound = 30;
  o.max_instances = 1;
  Rng rng(3);
  ArrayDataset ds = simulate_profile(m, o, rng);
  ds.validate();
  CHECK(ds.y_shape == Shape{60, 1, 2, 201});
  CHECK(ds.control_shape == Shape{60, 1, 2, 201});
  const int64_t O = 201, off = 50, M = o.max_instances;
  double near_pos = 0, far_pos = 0, tot_neg = 0, npos = 0, nneg = 0;
  double plus_left = 0, plus_right = 0;
  for (int64_t i = 0; i < ds.n; ++i) {
    double tot = 0;
    for (int64_t k = 0; k < 2 * O; ++k) tot += ds.y[static_cast<size_t>(i * 2 * O + k)];
    if (ds.status[static_cast<size_t>(i)] == 0) {
      tot_neg += tot, ++nneg;
      CHECK(ds.extra.at("motif_start").values[static_cast<size_t>(i * M)] == -1);
      continue;
    }
    ++npos;
    int64_t s = ds.extra.at("motif_start").values[static_cast<size_t>(i * M)];
    REQUIRE(s >= 0);
    double centre = static_cast<double>(s - off) + (m.width() - 1) / 2.0;
    for (int64_t o2 = 0; o2 < O; ++o2) {
      double c = ds.y[static_cast<size_t>(i * 2 * O + O + o2)] + ds.y[static_cast<size_t>(i * 2 * O + o2)];
      (std::fabs(o2 - centre) < 40 ? near_pos : far_pos) += c;
      if (std::fabs(o2 - centre) < 40) {
        (o2 < centre ? plus_left : plus_right) += ds.y[static_cast<size_t>(i * 2 * O + O + o2)];  // strand 1 = +
      }
    }
  }
  REQUIRE(npos > 10);
  REQUIRE(nneg > 10);
  CHECK(tot_neg / nneg == doctest::Approx(2 * o.background_reads).epsilon(0.25));
  CHECK(near_pos / npos > 2 * far_pos / npos);
  CHECK(plus_left > 2 * plus_right);  // + strand reads lie 5' (left) of the site
}
}
