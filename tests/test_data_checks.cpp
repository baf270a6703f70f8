// Checks on user files that would otherwise give silently wrong data: a FASTA index that belongs to another copy
// of the file, the index cache folder, count bigWigs with values no count can have, repeated keys in JSON files.
// Run: build/tests/lowpass_tests -ts=genome -tc='fasta index*,bigWig counts*,json file*'
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>

#include "models/attr/model_dir.h"
#include "models/data/json_file.h"
#include "tests/genome_fixtures.h"

using namespace genome_test;

namespace {
using Clock = fs::file_time_type::clock;

void set_age(const std::string& p, int hours) { fs::last_write_time(p, Clock::now() - std::chrono::hours(hours)); }

// Every chromosome of `g` reads back whole, and nothing else is in the index.
void check_reads(const Fasta& fa, const Genome& g) {
  REQUIRE(fa.chrom_sizes().names == g.sizes.names);
  CHECK(fa.chrom_sizes().lengths == g.sizes.lengths);
  for (size_t c = 0; c < g.seq.size(); ++c) CHECK(fa.fetch(g.sizes.names[c], 0, g.sizes.lengths[c]) == g.seq[c]);
}

// The FASTA changes the ways a copy or a re-download can differ, while its old index stays newer than it.
std::vector<std::pair<std::string, Genome>> changed_copies(const Genome& g) {
  std::vector<std::pair<std::string, Genome>> out;
  Genome a = g;  // bases deleted inside the first record: later offsets move by a part of a line
  a.seq[0].erase(10, 37);
  a.sizes.lengths[0] -= 37;
  out.push_back({"37 bases deleted", a});
  Genome b = g;  // exactly one 60-base line deleted: later records start at line starts again
  b.seq[0].erase(120, 60);
  b.sizes.lengths[0] -= 60;
  out.push_back({"one line deleted", b});
  Genome c = g;  // a record renamed, same length: every offset is the same
  c.sizes = ChromSizes();
  for (size_t i = 0; i < g.seq.size(); ++i) c.sizes.add(i == 1 ? "chrX" : g.sizes.names[i], g.sizes.lengths[i]);
  out.push_back({"record renamed", c});
  Genome e = g;  // a record appended
  e.sizes.add("chr9", 90);
  e.seq.push_back(std::string(90, 'G'));
  out.push_back({"record appended", e});
  Genome f = g;  // the last record cut short
  f.seq.back().resize(f.seq.back().size() - 25);
  f.sizes.lengths.back() -= 25;
  out.push_back({"last record shorter", f});
  return out;
}
}  // namespace

TEST_SUITE("genome") {
TEST_CASE("fasta index: an index that does not fit its FASTA is rebuilt, even when newer (cp -p, rsync -a)") {
  Rng rng(21);
  const Genome g = random_genome(rng, {{"chr1", 1000}, {"chr2", 500}, {"chr3", 301}});
  for (const auto& change : changed_copies(g)) {
    const std::string& what = change.first;  // named, not a structured binding: CAPTURE's lambda (clang 14)
    const Genome& g2 = change.second;
    for (std::string name : {"g.fa", "g.fa.gz"}) {
      CAPTURE(what);
      CAPTURE(name);
      TempDir d;
      const bool gz = name == "g.fa.gz";
      auto write = [&](const Genome& x) {
        gz ? write_bgzf(d / name, fasta_text(x)) : write_text(d / name, fasta_text(x));
      };
      write(g);
      { Fasta first(d / name); }  // the index of the old copy, beside it
      write(g2);
      set_age(d / name, 2);  // older than its index, as cp -p leaves it
      Fasta fa(d / name);
      CHECK(fa.index_path() == d / (name + ".fai"));
      check_reads(fa, g2);
    }
  }
}

TEST_CASE("fasta index: a read-only folder's stale index, and a stale cached one, are replaced in the cache") {
  Rng rng(22);
  const Genome g = random_genome(rng, {{"chr1", 700}, {"chr2", 400}});
  Genome g2 = g;
  g2.seq[0].erase(5, 11);
  g2.sizes.lengths[0] -= 11;
  TempDir d;
  fs::create_directory(d / "ro");
  write_text(d / "ro/g.fa", fasta_text(g));
  { Fasta first(d / "ro/g.fa"); }  // e.g. samtools faidx run by the folder's owner before it was made read-only
  write_text(d / "ro/g.fa", fasta_text(g2));
  set_age(d / "ro/g.fa", 2);
  fs::permissions(d / "ro", fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                  fs::perm_options::remove);
  std::string cached;
  {
    Fasta fa(d / "ro/g.fa", d / "cache");
    cached = fa.index_path();
    CHECK(cached.rfind(d / "cache/", 0) == 0);
    check_reads(fa, g2);
  }
  // A cached index that does not fit either (another user's plant, or a copy made within the same second) is rebuilt.
  fs::copy_file(d / "ro/g.fa.fai", cached, fs::copy_options::overwrite_existing);
  Fasta again(d / "ro/g.fa", d / "cache");
  CHECK(again.index_path() == cached);
  check_reads(again, g2);
}

TEST_CASE("fasta index: an index that fits is kept (CRLF, no final newline, blank lines, full last lines, bgzip)") {
  Rng rng(23);
  const Genome g = random_genome(rng, {{"chr1", 600}, {"chr2", 77}, {"chrM", 1}, {"chr3", 120}});
  const std::string lf = fasta_text(g);
  std::string crlf;
  for (char c : lf) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  std::string blank;  // a blank line after every record and two at the end
  for (size_t c = 0; c < g.seq.size(); ++c) {
    Genome one;
    one.sizes.add(g.sizes.names[c], g.sizes.lengths[c]);
    one.seq.push_back(g.seq[c]);
    blank += fasta_text(one) + "\n";
  }
  blank += "\n";
  const std::vector<std::pair<std::string, std::string>> texts = {
      {"lf", lf}, {"crlf", crlf}, {"no final newline", lf.substr(0, lf.size() - 1)},
      {"crlf, no final newline", crlf.substr(0, crlf.size() - 2)}, {"blank lines", blank},
      {"lines of 20 (chr1 and chr3 end on a full line)", fasta_text(g, 20)}};
  for (const auto& wt : texts) {
    const std::string &what = wt.first, &text = wt.second;  // not a structured binding: CAPTURE (clang 14)
    for (bool gz : {false, true}) {
      CAPTURE(what);
      CAPTURE(gz);
      TempDir d;
      const std::string p = d / (gz ? "g.fa.gz" : "g.fa");
      gz ? write_bgzf(p, text) : write_text(p, text);
      { Fasta first(p); }
      set_age(p, 3);
      set_age(p + ".fai", 2);
      const auto stamp = fs::last_write_time(p + ".fai");
      Fasta fa(p);
      CHECK(fs::last_write_time(p + ".fai") == stamp);  // used as it was, not rebuilt
      check_reads(fa, g);
    }
  }
}

TEST_CASE("fasta index: a samtools index of headers with a space after '>' and lines with trailing spaces is kept") {
  // htslib names "> chrA first" chrA and counts trailing spaces in line_bytes; both read correctly through the index.
  TempDir d;
  const std::string p = d / "ws.fa";
  const std::string a = ">  chrA first\n", b = ">\tchrB\n";
  write_text(p, a + "ACGTACGTAC  \nACGT\n" + b + "GGGG\n");
  const size_t off_b = a.size() + 13 + 5 + b.size();
  write_text(p + ".fai", "chrA\t14\t" + std::to_string(a.size()) + "\t10\t13\nchrB\t4\t" + std::to_string(off_b) +
                             "\t4\t5\n");
  set_age(p, 3);
  set_age(p + ".fai", 2);
  const auto stamp = fs::last_write_time(p + ".fai");
  Fasta fa(p);
  CHECK(fs::last_write_time(p + ".fai") == stamp);  // used as it was, not rebuilt
  CHECK(fa.fetch("chrA", 0, 14) == "ACGTACGTACACGT");
  CHECK(fa.fetch("chrB", 0, 4) == "GGGG");
}

TEST_CASE("fasta index: a corrupt index whose numbers overflow is rebuilt, not taken for a fit (fuzz_fasta)") {
  // chr1: 17 bases in lines of 14 at offset 6, its last base at byte 23. A .fai claiming 8330787646191410417 bases in
  // lines of 14 bases and 31 bytes puts the end at 6 + 595056260442243601 * 31 + 3, which wraps round in int64 to 24:
  // read unchecked (UB), the index passed for a fit and chr1 had 8e18 bases. Lines of 2^62 bytes overflow outright.
  const std::string text = ">chr1\nACGTACGTNNacgt\nACG\n>chr2 desc\nTTTT\n";
  for (const std::string fai : {"chr1\t8330787646191410417\t6\t14\t31\nchr2\t4\t36\t4\t5\n",
                                "chr1\t29\t6\t14\t4611686018427387904\nchr2\t4\t36\t4\t5\n",
                                "chr1\t17\t9223372036854775800\t14\t15\nchr2\t4\t36\t4\t5\n"}) {
    CAPTURE(fai);
    TempDir d;
    const std::string p = d / "g.fa";
    write_text(p, text);
    write_text(p + ".fai", fai);
    set_age(p, 3);
    set_age(p + ".fai", 2);
    Fasta fa(p);
    CHECK(fa.chrom_sizes().lengths == std::vector<int64_t>{17, 4});
    CHECK(fa.fetch("chr1", 0, 17) == "ACGTACGTNNacgtACG");
    std::ifstream in(p + ".fai");
    std::string first;
    std::getline(in, first);
    CHECK(first == "chr1\t17\t6\t14\t15");  // rebuilt beside the FASTA
  }
}

TEST_CASE("fasta index: an index beside the FASTA that htslib cannot read is named, and htslib prints nothing") {
  TempDir d;
  const std::string p = d / "g.fa";
  write_text(p, ">chr1\nACGT\n");
  write_text(p + ".fai", "chr1\tfour\t6\t4\t5\n");  // newer than the FASTA: taken as its index
  // stderr into a file while the FASTA opens (htslib wrote "[E::fai_read] Could not understand FASTA index ...")
  std::fflush(stderr);
  const int saved = dup(2);
  const std::string log = d / "stderr.txt";
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE((saved >= 0 && fd >= 0));
  dup2(fd, 2);
  close(fd);
  std::string err;
  try {
    Fasta fa(p);
  } catch (const Error& e) {
    err = e.what();
  }
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  CHECK(err.find("cannot load the index '" + p + ".fai'") != std::string::npos);
  CHECK(err.find("delete it to rebuild it") != std::string::npos);
  std::ifstream in(log);
  const std::string printed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(printed == "");
}

TEST_CASE("fasta index cache: an unusable cache folder is named; the default /tmp one is per user and private") {
  Rng rng(24);
  const Genome g = random_genome(rng, {{"chrA", 200}});
  TempDir d;
  fs::create_directory(d / "ro");
  write_text(d / "ro/g.fa", fasta_text(g));
  fs::permissions(d / "ro", fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                  fs::perm_options::remove);
  write_text(d / "file", "not a folder\n");
  expect_error([&] { Fasta f(d / "ro/g.fa", d / "file/x"); }, {"FASTA '" + d / "ro/g.fa", "'" + d / "file/x'",
                                                                "--cache-dir"});

  // Without LOWPASS_CACHE, XDG_CACHE_HOME and HOME the index goes to /tmp/lowpass-cache-<uid>, made private.
  std::map<std::string, std::optional<std::string>> saved;
  for (const char* k : {"LOWPASS_CACHE", "XDG_CACHE_HOME", "HOME"}) {
    const char* v = std::getenv(k);
    saved[k] = v ? std::optional<std::string>(v) : std::nullopt;
    unsetenv(k);
  }
  const std::string tmp = "/tmp/lowpass-cache-" + std::to_string(geteuid());
  std::error_code ec;
  if (fs::is_directory(tmp)) fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                                      fs::perms::others_read | fs::perms::others_exec, ec);
  std::string where;
  try {
    Fasta fa(d / "ro/g.fa");
    where = fa.index_path();
    check_reads(fa, g);
  } catch (...) {
    for (auto& [k, v] : saved)
      if (v) setenv(k.c_str(), v->c_str(), 1);
    throw;
  }
  for (auto& [k, v] : saved)
    if (v) setenv(k.c_str(), v->c_str(), 1);
  CHECK(where.rfind(tmp + "/", 0) == 0);
  struct stat st;
  REQUIRE(stat(tmp.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  CHECK(st.st_uid == geteuid());
  fs::remove(where, ec);
}

TEST_CASE("bigWig counts: negative, NaN, infinite or huge values are refused with the file and position") {
  TempDir d;
  ChromSizes cs;
  cs.add("chr1", 100);
  cs.add("chr2", 50);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<std::tuple<std::string, float, std::string>> bad = {
      {"neg", -5.0f, "is negative"}, {"nan", nan, "is NaN"}, {"inf", inf, "is infinite"},
      {"minf", -inf, "is infinite"}, {"huge", 3e38f, "is above"}};
  for (const auto& b : bad) {
    const std::string& name = std::get<0>(b);  // not a structured binding: CAPTURE (clang 14)
    const float v = std::get<1>(b);
    const std::string& why = std::get<2>(b);
    CAPTURE(name);
    std::vector<std::vector<float>> vals = {std::vector<float>(100, 1.0f), std::vector<float>(50, 2.0f)};
    vals[1][9] = v;
    write_bigwig(d / (name + ".bw"), cs, vals);
    Track t({d / (name + ".bw")});
    std::vector<float> out(100);
    t.window("chr1", 0, 100, out.data());  // the other chromosome is fine
    expect_error([&] { t.window("chr2", 0, 50, out.data()); },
                 {"bigWig '" + d / (name + ".bw") + "'", "chr2:10 ", why, "counts"});
    if (name == "neg") {
      BigWig plain(d / "neg.bw");  // not a count track (an attribution track): signed values are data
      plain.values("chr2", 0, 50, out.data());
      CHECK(out[9] == -5.0f);
    }
  }

  // A profile dataset reads its signals and controls into memory when it is built: the error comes there.
  Rng rng(25);
  Genome g = random_genome(rng, {{"chr1", 100}, {"chr2", 50}});
  write_text(d / "g.fa", fasta_text(g));
  write_text(d / "p.bed", "chr1\t40\t60\n");
  write_bigwig(d / "ok.bw", cs, {std::vector<float>(100, 1.0f), std::vector<float>(50, 1.0f)});
  ProfileGenomeConfig cfg;
  cfg.genome = d / "g.fa";
  cfg.peaks = {d / "p.bed"};
  cfg.input_length = 41;
  cfg.output_length = 21;
  cfg.jitter = 0;
  cfg.max_n_fraction = 1;  // the random genome's N runs do not matter here
  cfg.signals = {{d / "ok.bw"}};
  { ProfileGenomeDataset ok(cfg); }
  cfg.signals = {{d / "neg.bw"}};
  expect_error([&] { ProfileGenomeDataset x(cfg); }, {"neg.bw", "chr2:10", "negative"});
  cfg.signals = {{d / "ok.bw"}};
  cfg.controls = {{d / "nan.bw"}};
  expect_error([&] { ProfileGenomeDataset x(cfg); }, {"nan.bw", "chr2:10", "NaN"});
}

TEST_CASE("json file: a repeated key is an error at any depth, naming its path") {
  expect_error([] { parse_json_text(R"({"train": {"lr": 1}, "data": {}, "train": {"lr": 2}})", "c.json"); },
               {"c.json: key 'train' appears twice"});
  expect_error([] { parse_json_text(R"({"model": {"type": "profile", "type": "binary"}})", "c.json"); },
               {"c.json: key 'model.type' appears twice"});
  expect_error([] { parse_json_text(R"({"a": [1, {"x": [0, {"k": 1}]}, {"y": 1, "y": 2}]})", "c.json"); },
               {"c.json: key 'a[2].y' appears twice"});
  expect_error([] { parse_json_text(R"({"a": [[], {"x": 1}], "b": {"c": {"d": 1, "d": 1}}})", "c.json"); },
               {"key 'b.c.d' appears twice"});
  expect_error([] { parse_json_text("{\"a\": 1,", "c.json"); }, {"c.json: not valid JSON"});
  expect_error([] { parse_json_text("[1e999]", "c.json"); }, {"c.json: not valid JSON"});
  // The same key in sibling objects, and objects in a list, are not repeats.
  const nlohmann::json j = parse_json_text(R"({"a": {"k": 1}, "b": {"k": 2}, "l": [{"k": 1}, {"k": 2}], "k": 3})", "c");
  CHECK(j["b"]["k"] == 2);
  CHECK(j["l"][1]["k"] == 2);
  CHECK(j["k"] == 3);

  TempDir d;
  write_text(d / "folds.json", R"({"train": ["chr1"], "valid": ["chr2"], "test": ["chr3"], "train": ["chr2"]})");
  expect_error([&] { read_folds(d / "folds.json"); }, {"folds '" + d / "folds.json" + "': key 'train' appears twice"});
  fs::create_directory(d / "run");
  write_text(d / "run/config.json", R"({"model": {"type": "binary", "input_length": 100, "type": "profile"}})");
  Context ctx(1, 1);
  expect_error([&] { attr::load_model_dir(d / "run", ctx); },
               {d / "run/config.json", "key 'model.type' appears twice"});
}
}
