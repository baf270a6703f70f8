// Genome-file data layer: FASTA/BED/bigWig/folds readers, window cache, binary and profile datasets.
// Checks every extracted window against direct reads / brute-force labels; bad inputs give named errors.
// Run: build-data/tests/lowpass_tests -ts=genome   (real-data cases skip when ../shared/data is absent)
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
#include "models/data/profile_genome.h"
#include "models/data/window_cache.h"

using namespace lowpass;
namespace fs = std::filesystem;

namespace {
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

void write_text(const std::string& p, const std::string& s) { std::ofstream(p) << s; }

// Random genome with lower case runs and N runs; FASTA with 60-column lines (last line shorter).
struct Genome {
  ChromSizes sizes;
  std::vector<std::string> seq;
};
Genome random_genome(Rng& rng, const std::vector<std::pair<std::string, int64_t>>& chroms) {
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
std::string fasta_text(const Genome& g, int width = 60) {
  std::string t;
  for (size_t c = 0; c < g.seq.size(); ++c) {
    t += ">" + g.sizes.names[c] + " description\n";
    for (size_t i = 0; i < g.seq[c].size(); i += width) t += g.seq[c].substr(i, width) + "\n";
  }
  return t;
}
void write_bgzf(const std::string& p, const std::string& s) {
  BGZF* f = bgzf_open(p.c_str(), "w");
  REQUIRE(f);
  REQUIRE(bgzf_write(f, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
  REQUIRE(bgzf_close(f) == 0);
}
// The same one-hot, written as the plain definition.
std::vector<float> ref_one_hot(const std::string& s, bool rc) {
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
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    FAIL("expected lowpass::Error containing '", *parts.begin(), "'");
  } catch (const Error& e) {
    std::string m = e.what();
    for (auto& p : parts) CHECK_MESSAGE(m.find(p) != std::string::npos, "message: ", m, " lacks: ", p);
  }
}
std::vector<std::vector<float>> random_track(Rng& rng, const ChromSizes& cs, double density) {
  std::vector<std::vector<float>> v;
  for (auto L : cs.lengths) {
    std::vector<float> a(L, 0.0f);
    for (auto& x : a)
      if (rng.uniform() < density) x = static_cast<float>(rng.randint(1, 6));
    v.push_back(a);
  }
  return v;
}
int64_t rss_kib() {
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
const std::string kYeast = "../shared/data/yeast_atac/";
}  // namespace

TEST_SUITE("genome") {
TEST_CASE("fasta: index beside the file, fetch, one-hot with lower case and N, bgzip") {
  TempDir d;
  Rng rng(3);
  Genome g = random_genome(rng, {{"chr1", 1000}, {"chr2", 61}, {"chrM", 1}, {"chr3", 777}});
  write_text(d / "g.fa", fasta_text(g));
  write_bgzf(d / "g.fa.gz", fasta_text(g, 50));
  for (std::string name : {"g.fa", "g.fa.gz"}) {
    Fasta fa(d / name);
    CHECK(fa.index_path() == d / (name + ".fai"));
    CHECK(fs::exists(d / (name + ".fai")));
    REQUIRE(fa.chrom_sizes().size() == 4);
    for (int c = 0; c < 4; ++c) {
      CHECK(fa.chrom_sizes().names[c] == g.sizes.names[c]);
      CHECK(fa.length(g.sizes.names[c]) == g.sizes.lengths[c]);
    }
    for (int k = 0; k < 200; ++k) {
      int64_t c = rng.randint(0, 4), L = g.sizes.lengths[c];
      int64_t s = rng.randint(0, L), e = rng.randint(s, L + 1);
      std::string got = fa.fetch(g.sizes.names[c], s, e);
      REQUIRE(got == g.seq[c].substr(s, e - s));
      std::vector<float> oh(4 * got.size());
      for (bool rc : {false, true}) {
        one_hot_encode(got, oh.data(), rc);
        CHECK(oh == ref_one_hot(got, rc));
      }
    }
  }
  // an N / lower-case check by hand: "aCgNt" -> columns A, C, G, 0, T
  std::vector<float> oh(20);
  one_hot_encode("aCgNt", oh.data());
  CHECK(oh == std::vector<float>{1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1});
}

TEST_CASE("fasta: read-only folder puts the index in the cache folder") {
  TempDir d;
  Rng rng(4);
  Genome g = random_genome(rng, {{"chrA", 500}});
  fs::create_directory(d / "ro");
  write_text(d / "ro/g.fa", fasta_text(g));
  fs::permissions(d / "ro", fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                 fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  Fasta fa(d / "ro/g.fa", d / "cache");
  CHECK(!fs::exists(d / "ro/g.fa.fai"));
  CHECK(fa.index_path().rfind(d / "cache/", 0) == 0);
  CHECK(fa.fetch("chrA", 10, 90) == g.seq[0].substr(10, 80));
  Fasta again(d / "ro/g.fa", d / "cache");  // reuses the cached index
  CHECK(again.index_path() == fa.index_path());
}

TEST_CASE("fasta: bad inputs name the file and line") {
  TempDir d;
  expect_error([&] { Fasta f(d / "missing.fa"); }, {"missing.fa", "not found"});
  expect_error([&] { Fasta f(d.path); }, {"directory"});
  write_text(d / "ragged.fa", ">a\nACGTACGT\nACG\nACGTACGT\n>b\nAC\n");
  expect_error([&] { Fasta f(d / "ragged.fa", d / "c"); }, {"ragged.fa:4", "faidx"});
  write_text(d / "long.fa", ">a\nACGT\nACGTACGT\n");
  expect_error([&] { Fasta f(d / "long.fa", d / "c"); }, {"long.fa:3", "longer"});
  write_text(d / "nohead.fa", "ACGT\n>a\nACGT\n");
  expect_error([&] { Fasta f(d / "nohead.fa", d / "c"); }, {"nohead.fa:1", "header"});
  write_text(d / "dup.fa", ">a\nACGT\n>a\nACGT\n");
  expect_error([&] { read_fasta_records(d / "dup.fa").size() > 0 ? throw Error(diagnose_fasta(d / "dup.fa")) : void(); },
               {"dup.fa:3", "duplicate"});
  {  // plain gzip cannot be indexed
    std::string cmd = "printf '>a\\nACGT\\n' | gzip -c > " + (d / "plain.fa.gz");
    REQUIRE(std::system(cmd.c_str()) == 0);
    expect_error([&] { Fasta f(d / "plain.fa.gz"); }, {"plain.fa.gz", "bgzip"});
  }
  write_text(d / "ok.fa", ">chr1\nACGTNNacgt\n");
  Fasta fa(d / "ok.fa");
  expect_error([&] { fa.fetch("1", 0, 2); }, {"'1'", "ok.fa", "did you mean 'chr1'"});
  expect_error([&] { fa.fetch("chr1", 5, 11, "peaks.bed:7"); }, {"peaks.bed:7", "outside", "length 10"});
  write_text(d / "recs.fa", ">p1 x\nACGT\nAC\n>p2\nA1GT\n");
  expect_error([&] { read_fasta_records(d / "recs.fa"); }, {"recs.fa:5", "unexpected character '1'"});
  write_text(d / "empty.fa", ">p1\n>p2\nACGT\n");
  expect_error([&] { read_fasta_records(d / "empty.fa"); }, {"empty.fa:1", "no sequence"});
}

TEST_CASE("bed: BED3+/narrowPeak parsing, summits, and each malformed line") {
  TempDir d;
  ChromSizes cs;
  cs.add("chr1", 1000);
  cs.add("chr2", 500);
  BedOptions o;
  o.sizes = &cs;
  write_text(d / "p.narrowPeak",
             "track type=narrowPeak name=\"x\"\n# comment\n\nchr1\t10\t30\tp1\t5\t.\t7.5\t0\t0\t4\n"
             "chr2\t100\t121\tp2\t5\t.\t2\t0\t0\t-1\nchr1 5 6 p3 0 . 1 0 0 0\n");
  auto ps = read_bed(d / "p.narrowPeak", o);
  REQUIRE(ps.size() == 3);
  CHECK(ps[0].summit == 14);
  CHECK(ps[0].signal == 7.5);
  CHECK(ps[0].line == 4);
  CHECK(ps[1].summit == 110);  // -1: centre
  CHECK(ps[1].chrom_index == 1);
  CHECK(ps[2].summit == 5);
  write_text(d / "b3.bed", "chr1\t0\t1000\nchr2\t0\t1\n");
  auto b3 = read_bed(d / "b3.bed", o);
  CHECK(b3[0].summit == 500);
  CHECK(!b3[0].has_signal);
  struct Bad { std::string text, what; };
  std::vector<Bad> bad = {
      {"chr1\t10\n", "at least 3 columns"},
      {"chr1\tx\t20\n", "column 2 (start) 'x' is not an integer"},
      {"chr1\t10\t2.5\n", "column 3 (end)"},
      {"chr1\t-5\t20\n", "negative"},
      {"chr1\t30\t30\n", "start 30 >= end 30"},
      {"chr1\t40\t30\n", "start 40 >= end 30"},
      {"1\t10\t30\n", "did you mean 'chr1'"},
      {"chrZ\t10\t30\n", "chromosome 'chrZ' is not in"},
      {"chr2\t10\t501\n", "past the end of chr2"},
      {"chr1\t10\t30\tp\t5\t.\tabc\t0\t0\t4\n", "column 7 (signalValue)"},
      {"chr1\t10\t30\tp\t5\t.\t1\t0\t0\t20\n", "summit offset 20 is outside the peak"},
      {"chr1\t10\t30\tp\t5\t.\t1\t0\t0\t-2\n", "summit offset -2"},
      {"chr1\t10\t30\tp\t5\t.\t1\t0\t0\tx\n", "column 10"},
  };
  for (auto& b : bad) {
    write_text(d / "bad.bed", "chr1\t1\t2\n" + b.text);
    expect_error([&] { read_bed(d / "bad.bed", o); }, {"bad.bed:2", b.what});
  }
  write_text(d / "unsorted.bed", "chr1\t10\t20\nchr1\t5\t8\n");
  CHECK(read_bed(d / "unsorted.bed", o).size() == 2);  // fine unless sortedness is required
  BedOptions so = o;
  so.require_sorted = true;
  expect_error([&] { read_bed(d / "unsorted.bed", so); }, {"unsorted.bed:2", "not sorted"});
  write_text(d / "unsorted2.bed", "chr1\t10\t20\nchr2\t5\t8\nchr1\t30\t40\n");
  expect_error([&] { read_bed(d / "unsorted2.bed", so); }, {"unsorted2.bed:3", "appears again"});
  write_text(d / "empty.bed", "track name=x\n");
  expect_error([&] { read_bed(d / "empty.bed", o); }, {"empty.bed", "no records"});
  expect_error([&] { read_bed(d / "nope.bed", o); }, {"nope.bed", "not found"});
}

TEST_CASE("interval set: overlap equals a per-base count") {
  Rng rng(5);
  IntervalSet s(2);
  std::vector<std::vector<int>> cov(2, std::vector<int>(300, 0));
  for (int k = 0; k < 40; ++k) {
    int64_t c = rng.randint(0, 2), a = rng.randint(0, 290), b = a + rng.randint(1, 10);
    s.add(c, a, b);
    for (int64_t i = a; i < b; ++i) cov[c][i] = 1;
  }
  s.finalize();
  for (int k = 0; k < 500; ++k) {
    int64_t c = rng.randint(0, 2), a = rng.randint(0, 300), b = rng.randint(a, 301), n = 0;
    for (int64_t i = a; i < b; ++i) n += cov[c][i];
    CHECK(s.overlap(c, a, b) == n);
  }
}

TEST_CASE("bigwig: window values equal the written arrays; strands flip with RC; name mismatches") {
  TempDir d;
  Rng rng(6);
  ChromSizes cs;
  cs.add("chr1", 5000);
  cs.add("chr2", 333);
  auto plus = random_track(rng, cs, 0.05), minus = random_track(rng, cs, 0.05);
  write_bigwig(d / "p.bw", cs, plus);
  write_bigwig(d / "m.bw", cs, minus);
  Track tr({d / "p.bw", d / "m.bw"});
  tr.check_against(cs, cs.names, true);
  for (int k = 0; k < 100; ++k) {
    int64_t c = rng.randint(0, 2), L = cs.lengths[c], s = rng.randint(0, L), e = rng.randint(s, L + 1), n = e - s;
    std::vector<float> w(2 * n), wr(2 * n);
    tr.window(cs.names[c], s, e, w.data());
    tr.window(cs.names[c], s, e, wr.data(), true);
    for (int64_t i = 0; i < n; ++i) {
      REQUIRE(w[i] == plus[c][s + i]);
      REQUIRE(w[n + i] == minus[c][s + i]);
      REQUIRE(wr[i] == minus[c][e - 1 - i]);  // strand axis and position axis flipped
      REQUIRE(wr[n + i] == plus[c][e - 1 - i]);
    }
  }
  ChromSizes other;
  other.add("1", 5000);
  other.add("2", 333);
  BigWig bw(d / "p.bw");
  expect_error([&] { bw.check_against(other, other.names); }, {"p.bw", "none of the needed", "did you mean 'chr1'"});
  ChromSizes longer;
  longer.add("chr1", 6000);
  expect_error([&] { bw.check_against(longer, longer.names); }, {"p.bw", "length 5000 but 6000"});
  std::vector<float> buf(10);
  expect_error([&] { bw.values("chr2", 330, 340, buf.data()); }, {"outside", "length 333"});
  expect_error([&] { bw.values("chrX", 0, 10, buf.data()); }, {"'chrX' is not in the file"});
  write_text(d / "x.bedgraph", "chr1\t0\t10\t1\n");
  expect_error([&] { BigWig b(d / "x.bedgraph"); }, {"x.bedgraph", "not a bigWig"});
  expect_error([&] { BigWig b(d / "none.bw"); }, {"none.bw", "not found"});
}

TEST_CASE("folds: JSON reader and errors") {
  TempDir d;
  ChromSizes cs;
  for (auto n : {"chr1", "chr2", "chr3", "chr4"}) cs.add(n, 100);
  write_text(d / "f.json", R"({"train": ["chr2", "chr3"], "valid": ["chr4"], "test": ["chr1"], "note": 1})");
  Folds f = read_folds(d / "f.json");
  check_folds(f, cs, d / "f.json");
  CHECK(f.split_of("chr1") == static_cast<int>(Split::Test));
  CHECK(f.split_of("chr4") == static_cast<int>(Split::Valid));
  CHECK(f.split_of("chrX") == -1);
  write_text(d / "bad.json", "{\"train\": [\"chr1\"");
  expect_error([&] { read_folds(d / "bad.json"); }, {"bad.json", "not valid JSON"});
  write_text(d / "nt.json", R"({"valid": [], "test": ["chr1"]})");
  expect_error([&] { read_folds(d / "nt.json"); }, {"nt.json", "missing key \"train\""});
  write_text(d / "dup.json", R"({"train": ["chr1"], "test": ["chr1"]})");
  expect_error([&] { read_folds(d / "dup.json"); }, {"dup.json", "'chr1' is in both \"train\" and \"test\""});
  write_text(d / "num.json", R"({"train": ["chr1", 2], "test": []})");
  expect_error([&] { read_folds(d / "num.json"); }, {"num.json", "\"train\"[1] is not a string"});
  write_text(d / "unk.json", R"({"train": ["1"], "test": []})");
  expect_error([&] { check_folds(read_folds(d / "unk.json"), cs, d / "unk.json"); },
               {"unk.json", "'1'", "did you mean 'chr1'"});
}

TEST_CASE("window cache: cached and preloaded reads equal direct reads; memory stays under budget") {
  TempDir d;
  Rng rng(7);
  Genome g = random_genome(rng, {{"chr1", 20000}, {"chr2", 7001}});
  write_text(d / "g.fa", fasta_text(g));
  auto sig = random_track(rng, g.sizes, 0.1);
  write_bigwig(d / "s.bw", g.sizes, sig);
  auto fa = std::make_shared<Fasta>(d / "g.fa");
  for (int64_t budget : {int64_t(1) << 12, int64_t(1) << 24}) {
    CacheOptions co;
    co.memory_budget = budget;
    co.chunk = 1000;
    GenomeWindows w(fa, {Track({d / "s.bw"})}, g.sizes.names, co);
    CHECK(w.preloaded() == (budget > 200000));
    for (int k = 0; k < 300; ++k) {
      int64_t c = rng.randint(0, 2), L = g.sizes.lengths[c], s = rng.randint(0, L), e = std::min(L, s + rng.randint(0, 2500));
      std::vector<uint8_t> codes(e - s);
      std::vector<float> v(e - s);
      w.codes(c, s, e, codes.data());
      w.track(0, c, s, e, v.data());
      for (int64_t i = 0; i < e - s; ++i) {
        REQUIRE(codes[i] == base_code(g.seq[c][s + i]));
        REQUIRE(v[i] == sig[c][s + i]);
      }
      CHECK(w.bytes_in_use() <= std::max<int64_t>(budget, 4000 + 1000));
    }
  }
  CacheOptions tiny;
  tiny.memory_budget = 100;
  expect_error([&] { GenomeWindows w(fa, {}, g.sizes.names, tiny); }, {"data.memory_budget", "smaller than one cache chunk"});
}

TEST_CASE("prefetcher: in order with several workers, errors rethrown, over-reads refused") {
  for (int workers : {0, 1, 3}) {
    Prefetcher pf(workers, 2);
    pf.start(7, [](int64_t i) {
      HostBatch b;
      b.status = {static_cast<int>(i)};
      return b;
    });
    for (int i = 0; i < 7; ++i) CHECK(pf.next().status[0] == i);
    expect_error([&] { pf.next(); }, {"start_epoch"});
    pf.start(3, [](int64_t i) -> HostBatch {
      if (i == 1) throw Error("bad window 1");
      return HostBatch{};
    });
    pf.next();
    expect_error([&] { pf.next(); }, {"bad window 1"});
  }
}

}  // TEST_SUITE

namespace {
std::string norm(const std::string& s) {  // what a one-hot column can say: ACGT or N
  std::string o(s);
  for (auto& ch : o) ch = "ACGTN"[base_code(ch)];
  return o;
}
std::string decode(const float* x, int64_t L) {
  std::string o(L, 'N');
  for (int64_t i = 0; i < L; ++i)
    for (int b = 0; b < 4; ++b)
      if (x[b * L + i] == 1.0f) o[i] = "ACGT"[b];
  return o;
}
void check_rc_rows(const Batch& b) {  // rows [B/2, B) are the reverse complements of rows [0, B/2)
  auto x = b.x.to_vector<float>();
  int64_t B = b.x.size(0) / 2, L = b.x.size(2);
  for (int64_t r = 0; r < B; ++r)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t i = 0; i < L; ++i) REQUIRE(x[((B + r) * 4 + c) * L + i] == x[(r * 4 + 3 - c) * L + L - 1 - i]);
}
std::string random_peaks(Rng& rng, const ChromSizes& cs, int n, int64_t maxw, std::vector<std::vector<int>>* cov) {
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
}  // namespace

TEST_SUITE("genome") {
TEST_CASE("binary genome: labels equal a brute-force overlap count; epochs are balanced and complete") {
  TempDir d;
  Rng rng(11);
  Genome g = random_genome(rng, {{"chr1", 6000}, {"chr2", 3333}, {"chrM", 900}});
  write_text(d / "g.fa", fasta_text(g));
  std::vector<std::vector<std::vector<int>>> cov(2), amb(2);
  for (int t = 0; t < 2; ++t) {
    cov[t].assign(3, {});
    amb[t].assign(3, {});
    for (int c = 0; c < 3; ++c) cov[t][c].assign(g.sizes.lengths[c], 0), amb[t][c].assign(g.sizes.lengths[c], 0);
    write_text(d / ("t" + std::to_string(t) + ".bed"), random_peaks(rng, g.sizes, 12, 400, &cov[t]));
  }
  // ambiguous peaks of task 0: those touching a task-0 peak are removed (as in the reference)
  std::string at;
  for (int k = 0; k < 10; ++k) {
    int64_t c = rng.randint(0, 2), a = rng.randint(0, g.sizes.lengths[c] - 300), b = a + rng.randint(1, 300);
    at += g.sizes.names[c] + "\t" + std::to_string(a) + "\t" + std::to_string(b) + "\n";
    bool touches = false;
    for (int64_t i = a; i < b; ++i) touches |= cov[0][c][i] == 1;
    if (!touches)
      for (int64_t i = a; i < b; ++i) amb[0][c][i] = 1;
  }
  write_text(d / "a0.bed", at);
  BinaryGenomeConfig cfg;
  cfg.genome = d / "g.fa";
  cfg.peaks = {d / "t0.bed", d / "t1.bed"};
  cfg.ambiguous = {d / "a0.bed", ""};
  cfg.batch_size = 10;
  cfg.cache.workers = 2;
  BinaryGenomeDataset ds(cfg);
  // brute force over every bin
  std::map<std::pair<int64_t, int64_t>, std::vector<int8_t>> expect;
  std::map<std::string, std::vector<int8_t>> by_window;
  std::set<std::pair<int64_t, int64_t>> all_zero;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t s = 0; s + 200 <= g.sizes.lengths[c]; s += 50) {
      std::vector<int8_t> lab(2, 0);
      for (int t = 0; t < 2; ++t) {
        int ov = 0, am = 0;
        for (int64_t i = s; i < s + 200; ++i) ov += cov[t][c][i], am += amb[t][c][i];
        lab[t] = ov >= 100 ? 1 : am > 0 ? -1 : 0;
      }
      CHECK(ds.labels_of(c, s) == lab);
      bool fits = s >= 400 && s + 600 <= g.sizes.lengths[c];
      std::string win = fits ? norm(g.seq[c].substr(s - 400, 1000)) : "";
      bool n_ok = fits && std::count(win.begin(), win.end(), 'N') <= 100;
      if (lab == std::vector<int8_t>{0, 0} && fits) all_zero.insert({c, s});
      if ((lab[0] == 1 || lab[1] == 1) && n_ok) expect[{c, s}] = lab, by_window[win] = lab;
    }
  REQUIRE(ds.positives().size() == expect.size());
  for (auto& p : ds.positives()) CHECK(expect.at({p.chrom, p.start}) == p.labels);
  CHECK(ds.batches_per_epoch() == (static_cast<int64_t>(expect.size()) + 4) / 5);
  auto g_ = ds.geometry();
  CHECK((g_.input_length == 1000 && g_.tasks == 2 && !g_.profile));
  Context ctx(1, 0);
  std::vector<std::vector<float>> first_x;
  for (int workers : {2, 0}) {
    BinaryGenomeConfig c2 = cfg;
    c2.cache.workers = workers;
    BinaryGenomeDataset dsw(c2);
    Rng er(99);
    dsw.start_epoch(0, er);
    std::map<std::string, int> seen;
    int64_t npos = 0, nneg = 0;
    for (int64_t i = 0; i < dsw.batches_per_epoch(); ++i) {
      Batch b = dsw.next(ctx);
      if (workers == 2) first_x.push_back(b.x.to_vector<float>());
      else CHECK(b.x.to_vector<float>() == first_x[i]);  // same RNG, same batches, any thread count
      check_rc_rows(b);
      auto x = b.x.to_vector<float>();
      auto y = b.y.to_vector<float>();
      int64_t B = b.x.size(0) / 2;
      int64_t p = 0;
      for (int64_t r = 0; r < B; ++r) {
        std::string w = decode(x.data() + r * 4000, 1000);
        if (b.status[r] == 1) {
          ++p;
          REQUIRE(by_window.count(w));
          for (int t = 0; t < 2; ++t) CHECK(y[r * 2 + t] == by_window[w][t]);
          ++seen[w];
        } else {
          CHECK((y[r * 2] == 0 && y[r * 2 + 1] == 0));
          bool found = false;
          for (int64_t c = 0; c < 3 && !found; ++c) {
            std::string ng = norm(g.seq[c]);
            for (size_t at2 = ng.find(w); at2 != std::string::npos && !found; at2 = ng.find(w, at2 + 1))
              found = all_zero.count({c, static_cast<int64_t>(at2) + 400}) > 0;
          }
          CHECK_MESSAGE(found, "negative row ", r, " of batch ", i, " is not an all-zero bin");
          ++nneg;
        }
        CHECK(b.status[B + r] == b.status[r]);
      }
      npos += p;
      CHECK(B - p == p);  // 1:1
    }
    CHECK(npos == static_cast<int64_t>(expect.size()));
    CHECK(seen.size() == expect.size());  // every positive exactly once
    expect_error([&] { dsw.next(ctx); }, {"start_epoch"});
  }
  // peak retention: positives only from bins covered >= 100 bp by the top half of a task's peaks
  BinaryGenomeConfig rc = cfg;
  rc.peak_retention = 0.5;
  int64_t want_kept = 0;
  std::vector<std::vector<std::vector<int>>> kcov(2, std::vector<std::vector<int>>(3));
  for (int t = 0; t < 2; ++t) {
    auto ps = read_bed(d / ("t" + std::to_string(t) + ".bed"));
    std::stable_sort(ps.begin(), ps.end(), [](const Peak& a, const Peak& b) { return a.signal > b.signal; });
    for (int c = 0; c < 3; ++c) kcov[t][c].assign(g.sizes.lengths[c], 0);
    for (size_t k = 0; k < 6; ++k)
      for (int64_t i = ps[k].start; i < ps[k].end; ++i) kcov[t][g.sizes.find(ps[k].chrom)][i] = 1;
  }
  for (auto& [cs_, lab] : expect) {
    bool kept = false;
    for (int t = 0; t < 2; ++t)
      kept |= lab[t] == 1 && std::accumulate(kcov[t][cs_.first].begin() + cs_.second,
                                             kcov[t][cs_.first].begin() + cs_.second + 200, 0) >= 100;
    want_kept += kept;
  }
  REQUIRE(want_kept > 0);
  BinaryGenomeDataset dr(rc);
  CHECK(dr.stats().peaks_retained == std::vector<int64_t>{6, 6});
  CHECK(static_cast<int64_t>(dr.positives().size()) == want_kept);
  CHECK(dr.positives().size() + dr.stats().unretained_bins == expect.size());
  // bad configuration and files
  BinaryGenomeConfig bad = cfg;
  bad.chroms = {"chrM"};
  expect_error([&] { BinaryGenomeDataset x(bad); }, {"no positive bins"});
  bad = cfg;
  bad.chroms = {"1"};
  expect_error([&] { BinaryGenomeDataset x(bad); }, {"data.chroms", "did you mean 'chr1'"});
  bad = cfg;
  bad.ambiguous = {""};
  expect_error([&] { BinaryGenomeDataset x(bad); }, {"data.ambiguous"});
  write_text(d / "badchr.bed", "chr1\t10\t20\nchr9\t1\t5\n");
  bad = cfg;
  bad.peaks = {d / "badchr.bed"};
  bad.ambiguous = {};
  expect_error([&] { BinaryGenomeDataset x(bad); }, {"badchr.bed:2", "'chr9'"});
}

TEST_CASE("profile genome: windows, profiles and controls equal direct reads; jitter, RC, negatives") {
  TempDir d;
  Rng rng(12);
  Genome g = random_genome(rng, {{"chr1", 9000}, {"chr2", 5001}, {"chr3", 700}});
  for (int64_t i = 0; i < 3000; ++i) g.seq[0][i] = rng.uniform() < 0.85 ? "GC"[rng.randint(0, 2)] : "AT"[rng.randint(0, 2)];
  write_text(d / "g.fa", fasta_text(g));
  std::vector<std::vector<std::vector<float>>> sig;
  for (int k = 0; k < 6; ++k) {
    sig.push_back(random_track(rng, g.sizes, 0.2));
    write_bigwig(d / ("s" + std::to_string(k) + ".bw"), g.sizes, sig.back());
  }
  // peaks in the GC-rich part of chr1, on chr2, near chromosome ends and on chr3 (other split)
  std::string pk = "track type=narrowPeak\n";
  std::vector<std::tuple<int64_t, int64_t, int64_t>> summits;  // chrom, start, summit
  std::vector<std::tuple<int64_t, int64_t, int64_t>> ivs = {{2, 300, 320}};  // chrom, start, end
  for (int k = 0; k < 30; ++k) {
    int64_t c = k % 3 == 2 ? 1 : 0, w = rng.randint(20, 200);
    int64_t a = c == 0 ? rng.randint(0, 3000 - w) : rng.randint(0, g.sizes.lengths[c] - w), off = rng.randint(0, w);
    pk += g.sizes.names[c] + "\t" + std::to_string(a) + "\t" + std::to_string(a + w) + "\tp\t0\t.\t1\t0\t0\t" +
          std::to_string(off) + "\n";
    summits.push_back({c, a, a + off});
    ivs.push_back({c, a, a + w});
  }
  pk += "chr3\t300\t320\tp\t0\t.\t1\t0\t0\t10\n";
  write_text(d / "p.narrowPeak", pk);
  ProfileGenomeConfig cfg;
  cfg.genome = d / "g.fa";
  cfg.peaks = {d / "p.narrowPeak"};
  cfg.signals = {{d / "s0.bw", d / "s1.bw"}, {d / "s2.bw", d / "s3.bw"}};
  cfg.controls = {{d / "s4.bw", d / "s5.bw"}};
  cfg.chroms = {"chr1", "chr2"};
  cfg.input_length = 301;
  cfg.output_length = 101;
  cfg.jitter = 20;
  cfg.batch_size = 8;
  cfg.exclude_peaks = true;
  cfg.max_n_fraction = 0.2;
  const int64_t I = 301, O = 101, J = 20;
  int64_t kept = 0, edge = 0, nfrac = 0;
  std::multiset<std::pair<int64_t, int64_t>> expect_pos;
  for (auto [c, a, s] : summits) {
    int64_t w0 = s - I / 2;
    if (w0 - J < 0 || w0 + J + I > g.sizes.lengths[c]) { ++edge; continue; }
    std::string win = norm(g.seq[c].substr(w0, I));
    if (std::count(win.begin(), win.end(), 'N') > 0.2 * I) { ++nfrac; continue; }
    ++kept;
    expect_pos.insert({c, s});
  }
  for (std::string neg : {"uniform", "gc_matched"}) {
    cfg.negatives = neg;
    ProfileGenomeDataset ds(cfg);
    CHECK(ds.stats().kept == kept);
    CHECK(ds.stats().dropped_edge == edge);
    CHECK(ds.stats().dropped_n == nfrac);
    CHECK(ds.stats().not_in_split == 1);
    Context ctx(1, 0);
    Rng er(5);
    ds.start_epoch(0, er);
    std::multiset<std::pair<int64_t, int64_t>> seen;
    double gc_pos = 0, gc_neg = 0;
    int64_t npos = 0, nneg = 0;
    for (int64_t i = 0; i < ds.batches_per_epoch(); ++i) {
      auto w = ds.batch_windows(i);
      Batch b = ds.next(ctx);
      int64_t B = static_cast<int64_t>(w.size());
      REQUIRE(b.x.shape() == Shape{2 * B, 4, I});
      REQUIRE(b.y.shape() == Shape{2 * B, 2, 2, O});
      REQUIRE(b.control.shape() == Shape{2 * B, 1, 2, O});
      check_rc_rows(b);
      auto x = b.x.to_vector<float>(), y = b.y.to_vector<float>(), ct = b.control.to_vector<float>();
      for (int64_t r = 0; r < B; ++r) {
        int64_t c = w[r].chrom, x0 = w[r].centre - I / 2, y0 = w[r].centre - O / 2;
        REQUIRE(std::vector<float>(x.begin() + r * 4 * I, x.begin() + (r + 1) * 4 * I) ==
                ref_one_hot(g.seq[c].substr(x0, I), false));
        for (int64_t rc = 0; rc < 2; ++rc)
          for (int64_t t = 0; t < 3; ++t)
            for (int64_t s = 0; s < 2; ++s)
              for (int64_t o = 0; o < O; ++o) {
                int64_t row = rc * B + r, ss = rc ? 1 - s : s, oo = rc ? O - 1 - o : o;
                float want = sig[2 * t + ss][c][y0 + oo];
                float got = t < 2 ? y[((row * 2 + t) * 2 + s) * O + o] : ct[(row * 2 + s) * O + o];
                REQUIRE(got == want);
              }
        std::string win = norm(g.seq[c].substr(x0, I));
        double gc = static_cast<double>(std::count(win.begin(), win.end(), 'G') + std::count(win.begin(), win.end(), 'C')) /
                    static_cast<double>(I - std::count(win.begin(), win.end(), 'N'));
        if (b.status[r] == 1) {
          bool match = false;
          for (auto [pc, ps] : expect_pos)
            if (pc == c && std::abs(w[r].centre - ps) <= J) match = true;
          CHECK(match);
          seen.insert({c, w[r].centre});
          gc_pos += gc, ++npos;
        } else {
          for (auto [pc, pa, pb] : ivs) CHECK_FALSE((pc == c && pa < x0 + I && pb > x0));  // exclude_peaks
          CHECK(std::count(win.begin(), win.end(), 'N') <= 0.2 * I);
          gc_neg += gc, ++nneg;
        }
      }
    }
    CHECK(npos == kept);
    CHECK(nneg == kept);
    gc_pos /= npos, gc_neg /= nneg;
    MESSAGE(neg, ": mean GC positives ", gc_pos, " negatives ", gc_neg);
    if (neg == "gc_matched") CHECK(std::abs(gc_pos - gc_neg) < 0.06);
    else CHECK(gc_pos - gc_neg > 0.15);  // uniform negatives do not follow the GC-rich peaks
    CHECK(ds.suggested_counts_weight() > 0);
  }
  // test split preset: summit-centred positives only, in file order, no RC
  Folds f;
  f.train = {"chr1"};
  f.test = {"chr2"};
  ProfileGenomeDataset te(profile_config_for_split(cfg, Split::Test, f));
  Rng er(1);
  te.start_epoch(0, er);
  for (int64_t i = 0; i < te.batches_per_epoch(); ++i)
    for (auto& w : te.batch_windows(i)) {
      CHECK(w.status == 1);
      CHECK(expect_pos.count({w.chrom, w.centre}) == 1);
    }
  // bad configurations
  ProfileGenomeConfig bad = cfg;
  bad.output_length = 100;
  expect_error([&] { ProfileGenomeDataset x(bad); }, {"data.input_length/output_length", "even"});
  bad = cfg;
  bad.signals = {{d / "s0.bw", d / "s1.bw"}, {d / "s2.bw"}};
  expect_error([&] { ProfileGenomeDataset x(bad); }, {"data.signals[1]"});
  bad = cfg;
  bad.controls = {{d / "s4.bw", d / "s5.bw"}, {d / "s4.bw", d / "s5.bw"}, {d / "s4.bw", d / "s5.bw"}};
  expect_error([&] { ProfileGenomeDataset x(bad); }, {"data.controls"});
  bad = cfg;
  bad.negatives = "gc";
  expect_error([&] { ProfileGenomeDataset x(bad); }, {"data.negatives", "gc_matched"});
  bad = cfg;
  bad.jitter = 5000;
  expect_error([&] { ProfileGenomeDataset x(bad); }, {"no peaks left", "dropped_edge"});
  ChromSizes renamed;
  for (int c = 0; c < 3; ++c) renamed.add(g.sizes.names[c].substr(3), g.sizes.lengths[c]);
  write_bigwig(d / "renamed.bw", renamed, sig[0]);
  bad = cfg;
  bad.signals = {{d / "renamed.bw", d / "s1.bw"}, {d / "s2.bw", d / "s3.bw"}};
  expect_error([&] { ProfileGenomeDataset x(bad); }, {"renamed.bw", "did you mean"});
}

TEST_CASE("real data: yeast genome (read-only folder), narrowPeak with track line, bigWig profiles, bounded memory") {
  if (!fs::exists(kYeast + "sacCer3.fa")) {
    MESSAGE("skipped: ", kYeast, " is absent");
    return;
  }
  TempDir d;
  Fasta fa(kYeast + "sacCer3.fa", d / "cache");
  CHECK(!fs::exists(kYeast + "sacCer3.fa.fai"));  // never written into the shared folder
  REQUIRE(fa.chrom_sizes().size() == 17);
  std::ifstream sizes(kYeast + "sacCer3.chrom.sizes");
  std::string name;
  int64_t len;
  while (sizes >> name >> len) CHECK(fa.length(name) == len);
  BedOptions bo;
  bo.sizes = &fa.chrom_sizes();
  auto peaks = read_bed(kYeast + "hmmratac_yeast500k_accessible_regions.narrowPeak", bo);
  CHECK(peaks.size() >= 1559);
  CHECK(peaks[0].line == 2);  // line 1 is the track header
  CHECK(peaks[0].summit == 20 + 218);
  ProfileGenomeConfig cfg;
  cfg.genome = kYeast + "sacCer3.fa";
  cfg.cache_dir = d / "cache";
  cfg.peaks = {kYeast + "hmmratac_yeast500k_accessible_regions.narrowPeak"};
  cfg.signals = {{kYeast + "yeast_atac_tn5cuts_shifted.bw"}};
  cfg.input_length = 1346;
  cfg.output_length = 1000;
  cfg.batch_size = 32;
  Folds f;
  f.test = {"chrIV"};
  f.valid = {"chrXV"};
  for (auto& c : fa.chrom_sizes().names)
    if (c != "chrIV" && c != "chrXV" && c != "chrM") f.train.push_back(c);
  ProfileGenomeDataset tr(profile_config_for_split(cfg, Split::Train, f));
  MESSAGE(tr.describe(), " ", tr.stats().to_json(), " suggested counts weight ", tr.suggested_counts_weight());
  CHECK(tr.windows().preloaded());
  CHECK(tr.stats().kept > 1000);
  BigWig bw(kYeast + "yeast_atac_tn5cuts_shifted.bw");
  Context ctx(1, 0);
  Rng er(3);
  tr.start_epoch(0, er);
  double pos_counts = 0, neg_counts = 0;
  for (int64_t i = 0; i < 3; ++i) {
    auto w = tr.batch_windows(i);
    Batch b = tr.next(ctx);
    auto y = b.y.to_vector<float>();
    std::vector<float> direct(1000);
    for (size_t r = 0; r < w.size(); ++r) {
      const std::string& c = fa.chrom_sizes().names[w[r].chrom];
      bw.values(c, w[r].centre - 500, w[r].centre + 500, direct.data());
      REQUIRE(std::equal(direct.begin(), direct.end(), y.begin() + r * 1000));
      double tot = std::accumulate(direct.begin(), direct.end(), 0.0);
      (w[r].status ? pos_counts : neg_counts) += tot;
      CHECK(decode(b.x.to_vector<float>().data() + r * 4 * 1346, 1346) ==
            norm(fa.fetch(c, w[r].centre - 673, w[r].centre + 673)));
    }
  }
  CHECK(pos_counts > 5 * neg_counts);  // peaks are accessible, random windows mostly not
  // the same split under a 4 MB budget: chunk cache, bytes stay under budget for a whole epoch
  int64_t rss0 = rss_kib();
  ProfileGenomeConfig small = profile_config_for_split(cfg, Split::Train, f);
  small.cache.memory_budget = 4 << 20;
  small.cache.chunk = 1 << 14;
  ProfileGenomeDataset sm(small);
  CHECK(!sm.windows().preloaded());
  Rng er2(4);
  sm.start_epoch(0, er2);
  for (int64_t i = 0; i < sm.batches_per_epoch(); ++i) {
    Batch b = sm.next(ctx);
    CHECK(sm.windows().bytes_in_use() <= (4 << 20));
  }
  int64_t grew = rss_kib() - rss0;
  MESSAGE("4 MB budget: cache ", sm.windows().bytes_in_use(), " bytes, RSS grew ", grew, " KiB over an epoch, prefetch waited ",
          sm.prefetch_wait_seconds(), " s");
  CHECK(grew < 64 * 1024);
  // binary bins on chrI against a brute-force overlap count (peaks of >= 100 bp give positives)
  BinaryGenomeConfig bc;
  bc.genome = cfg.genome;
  bc.cache_dir = cfg.cache_dir;
  bc.peaks = cfg.peaks;
  bc.chroms = {"chrI"};
  BinaryGenomeDataset bd(bc);
  int64_t L = fa.length("chrI"), want = 0;
  std::vector<int> cov(L, 0);
  for (auto& p : peaks)
    if (p.chrom == "chrI")
      for (int64_t i = p.start; i < p.end; ++i) cov[i] = 1;
  std::string seq = norm(fa.fetch("chrI", 0, L));
  for (int64_t s = 400; s + 600 <= L; s += 50) {
    int ov = std::accumulate(cov.begin() + s, cov.begin() + s + 200, 0);
    want += ov >= 100 && std::count(seq.begin() + s - 400, seq.begin() + s + 600, 'N') <= 100;
  }
  CHECK(static_cast<int64_t>(bd.positives().size()) == want);
  CHECK(want > 20);
}

TEST_CASE("real data: NFE2 positives/negatives FASTA as a binary dataset") {
  const std::string dir = "../shared/data/nfe2_gm12878/";
  if (!fs::exists(dir + "nfe2.tr.fa")) {
    MESSAGE("skipped: ", dir, " is absent");
    return;
  }
  FastaBinaryConfig c;
  c.positives = dir + "nfe2.tr.fa";
  c.negatives = dir + "nfe2.neg.tr.fa";
  c.input_length = 235;
  FastaBinaryDataset ds(c);
  CHECK(ds.size() == 1288);
  CHECK(std::count(ds.labels().begin(), ds.labels().end(), 1) == 644);
  Context ctx(1, 0);
  Rng r(1);
  ds.start_epoch(0, r);
  int64_t rows = 0, pos = 0;
  for (int64_t i = 0; i < ds.batches_per_epoch(); ++i) {
    Batch b = ds.next(ctx);
    check_rc_rows(b);
    rows += b.size();
    auto y = b.y.to_vector<float>();
    for (int64_t k = 0; k < b.size(); ++k) {
      CHECK(b.status[k] == static_cast<int>(y[k]));
      pos += y[k] == 1;
    }
  }
  CHECK(rows == 2 * 1288);
  CHECK(pos == 2 * 644);
  CHECK(centre_codes("ACGTA", 3) == std::vector<uint8_t>{1, 2, 3});
  CHECK(centre_codes("AC", 5) == std::vector<uint8_t>{4, 0, 1, 4, 4});
}
}  // TEST_SUITE
