// Shared fixtures of the genome tests: temp folders, random genomes/tracks/peaks, reference one-hot.
// Each helper is the plain definition the data layer is checked against.
// Run: build/tests/lowpass_tests -ts=genome
#pragma once
#include <doctest/doctest.h>
#include <htslib/bgzf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include "models/data/bed.h"
#include "models/data/bigwig.h"
#include "models/data/binary_genome.h"
#include "models/data/fasta.h"
#include "models/data/folds.h"
#include "models/data/peak_retention.h"
#include "models/data/profile_genome.h"
#include "models/data/window_cache.h"

using namespace lowpass;
namespace fs = std::filesystem;

namespace genome_test {
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/lowpass_genome_XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& f) const { return path + "/" + f; }
};

inline void write_text(const std::string& p, const std::string& s) { std::ofstream(p) << s; }

// Random genome with lower case runs and N runs; FASTA with 60-column lines (last line shorter).
struct Genome {
  ChromSizes sizes;
  std::vector<std::string> seq;
};
inline Genome random_genome(Rng& rng, const std::vector<std::pair<std::string, int64_t>>& chroms) {
  Genome g;
  const char* bases = "ACGTacgtNnRY";
  for (auto& [name, L] : chroms) {
    g.sizes.add(name, L);
    std::string s(L, 'A');
    for (auto& ch : s) ch = bases[rng.uniform() < 0.97 ? rng.randint(0, 8) : rng.randint(8, 12)];
    if (L > 300) std::fill(s.begin() + 100, s.begin() + 160, 'N');  // a gap
    g.seq.push_back(s);
  }
  return g;
}
inline std::string fasta_text(const Genome& g, int width = 60) {
  std::string t;
  for (size_t c = 0; c < g.seq.size(); ++c) {
    t += ">" + g.sizes.names[c] + " description\n";
    for (size_t i = 0; i < g.seq[c].size(); i += width) t += g.seq[c].substr(i, width) + "\n";
  }
  return t;
}
inline void write_bgzf(const std::string& p, const std::string& s) {
  BGZF* f = bgzf_open(p.c_str(), "w");
  REQUIRE(f);
  REQUIRE(bgzf_write(f, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
  REQUIRE(bgzf_close(f) == 0);
}
// The same one-hot, written as the plain definition.
inline std::vector<float> ref_one_hot(const std::string& s, bool rc) {
  int64_t L = static_cast<int64_t>(s.size());
  std::vector<float> o(4 * L, 0.0f);
  const std::string up = "ACGT";
  for (int64_t i = 0; i < L; ++i) {
    char ch = static_cast<char>(std::toupper(rc ? s[L - 1 - i] : s[i]));
    size_t b = up.find(ch);
    if (b == std::string::npos) continue;
    o[(rc ? 3 - b : b) * L + i] = 1.0f;
  }
  return o;
}
// Expects an Error whose message contains every fragment.
template <typename F>
inline void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("expected lowpass::Error containing '", parts.front(), "'");
  } catch (const Error& e) {
    std::string m = e.what();
    for (auto& p : parts) CHECK_MESSAGE(m.find(p) != std::string::npos, "message: ", m, " lacks: ", p);
  }
}
inline std::vector<std::vector<float>> random_track(Rng& rng, const ChromSizes& cs, double density) {
  std::vector<std::vector<float>> v;
  for (auto L : cs.lengths) {
    std::vector<float> a(L, 0.0f);
    for (auto& x : a)
      if (rng.uniform() < density) x = static_cast<float>(rng.randint(1, 6));
    v.push_back(a);
  }
  return v;
}
inline int64_t rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string k;
  while (f >> k)
    if (k == "VmRSS:") {
      int64_t v;
      f >> v;
      return v;
    }
  return 0;
}
inline const std::string kYeast = "../shared/data/yeast_atac/";
inline std::string norm(const std::string& s) {  // what a one-hot column can say: ACGT or N
  std::string o(s);
  for (auto& ch : o) ch = "ACGTN"[base_code(ch)];
  return o;
}
inline std::string decode(const float* x, int64_t L) {
  std::string o(L, 'N');
  for (int64_t i = 0; i < L; ++i)
    for (int b = 0; b < 4; ++b)
      if (x[b * L + i] == 1.0f) o[i] = "ACGT"[b];
  return o;
}
inline void check_rc_rows(const Batch& b) {  // rows [B/2, B) are the reverse complements of rows [0, B/2)
  auto x = b.x.to_vector<float>();
  int64_t B = b.x.size(0) / 2, L = b.x.size(2);
  for (int64_t r = 0; r < B; ++r)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t i = 0; i < L; ++i) REQUIRE(x[((B + r) * 4 + c) * L + i] == x[(r * 4 + 3 - c) * L + L - 1 - i]);
}
inline std::string random_peaks(Rng& rng, const ChromSizes& cs, int n, int64_t maxw, std::vector<std::vector<int>>* cov) {
  std::string t = "track type=narrowPeak\n";
  for (int k = 0; k < n; ++k) {
    int64_t c = rng.randint(0, cs.size()), L = cs.lengths[c], w = rng.randint(1, maxw + 1);
    int64_t a = rng.randint(0, L - w + 1);
    t += cs.names[c] + "\t" + std::to_string(a) + "\t" + std::to_string(a + w) + "\tp\t0\t.\t" +
         std::to_string(rng.uniform(1, 100)) + "\t0\t0\t" + std::to_string(rng.randint(-1, w)) + "\n";
    if (cov)
      for (int64_t i = a; i < a + w; ++i) (*cov)[c][i] = 1;
  }
  return t;
}
}  // namespace genome_test
using namespace genome_test;
