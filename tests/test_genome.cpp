// Genome-file readers: FASTA/BED/bigWig/folds, window cache and prefetch; every bad input's message.
// Checks extracted sequence/values against the written fixtures; bad inputs give named errors.
// Run: build/tests/lowpass_tests -ts=genome
#include "tests/genome_fixtures.h"
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

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

TEST_CASE("bgzip BED and FASTA cut at a block boundary are refused; a .2bit genome is named") {
  // htslib reads a bgzip file cut between blocks as a shorter file, with a warning only: peaks lost, a genome whose
  // last chromosome is shorter and the later ones absent. The missing end-of-file block tells.
  TempDir d;
  Rng rng(12);
  const auto cut_before_last_data_block = [](const std::string& from, const std::string& to) {
    std::ifstream in(from, std::ios::binary);
    const std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<size_t> starts;  // each block: 18-byte header with BSIZE - 1 at bytes 16-17
    for (size_t o = 0; o + 18 <= b.size();) {
      starts.push_back(o);
      o += (static_cast<unsigned char>(b[o + 16]) | static_cast<unsigned char>(b[o + 17]) << 8) + 1;
    }
    REQUIRE(starts.size() >= 3);  // data blocks, then the 28-byte end-of-file block
    write_text(to, b.substr(0, starts[starts.size() - 2]));
  };
  std::string bed;
  for (int i = 0; i < 6000; ++i)
    bed += "chr1\t" + std::to_string(i) + "\t" + std::to_string(i + 50) + "\tpeak_" + std::to_string(i) + "\n";
  write_bgzf(d / "p.bed.gz", bed);
  CHECK(read_bed(d / "p.bed.gz").size() == 6000);
  cut_before_last_data_block(d / "p.bed.gz", d / "cut.bed.gz");
  expect_error([&] { read_bed(d / "cut.bed.gz"); }, {"BED '", "cut.bed.gz", "end-of-file block is missing"});
  Genome g = random_genome(rng, {{"chr1", 90000}, {"chr2", 50000}});
  write_bgzf(d / "g.fa.gz", fasta_text(g));
  CHECK(Fasta(d / "g.fa.gz").length("chr2") == 50000);
  cut_before_last_data_block(d / "g.fa.gz", d / "cut.fa.gz");
  expect_error([&] { Fasta f(d / "cut.fa.gz"); }, {"FASTA '", "cut.fa.gz", "end-of-file block is missing"});
  CHECK(read_fasta_records(d / "g.fa.gz").size() == 2);  // the sequences reader (predict --fasta, data.sequences)
  expect_error([&] { read_fasta_records(d / "cut.fa.gz"); }, {"FASTA '", "cut.fa.gz", "end-of-file block is missing"});
  write_text(d / "g.2bit", std::string("\x43\x27\x41\x1a\0\0\0\0\x01\0\0\0\0\0\0\0", 16) + "\x04" + "chr1");
  expect_error([&] { Fasta f(d / "g.2bit"); }, {"FASTA '", "g.2bit", ".2bit file", "twoBitToFa"});
}

TEST_CASE("fasta: bad inputs name the file and line") {
  TempDir d;
  expect_error([&] { Fasta f(d / "missing.fa"); }, {"missing.fa", "not found"});
  expect_error([&] { Fasta f(d.path); }, {"directory"});
  // Each genome FASTA below is refused when its Fasta is opened, naming the line. The last five htslib would index
  // without complaint, so they are refused before the index is built: a duplicate name (htslib keeps the first
  // record), an empty name, a space inside a line (it shifts every later base of the record), records without
  // bases (dropped in the middle of a file, an index failure at its end).
  struct BadFasta {
    std::string name, text;
    std::vector<std::string> want;
  };
  const std::vector<BadFasta> bad = {
      {"ragged.fa", ">a\nACGTACGT\nACG\nACGTACGT\n>b\nAC\n", {"ragged.fa:4", "faidx"}},
      {"long.fa", ">a\nACGT\nACGTACGT\n", {"long.fa:3", "longer"}},
      {"nohead.fa", "ACGT\n>a\nACGT\n", {"nohead.fa:1", "header"}},
      {"dup.fa", ">a\nACGT\n>a\nACGT\n", {"dup.fa:3", "duplicate sequence name 'a'"}},
      {"noname.fa", ">a\nACGT\n>\nACGT\n", {"noname.fa:3", "empty sequence name"}},
      {"space.fa", ">a\nACGTACGT\nACG TACGT\nACGT\n", {"space.fa:3", "byte 0x20"}},
      {"midempty.fa", ">a\nACGT\n>b\n>c\nACGT\n", {"midempty.fa:3", "'b' has no bases"}},
      {"tailempty.fa", ">a\nACGT\n>b\n", {"tailempty.fa:3", "'b' has no bases"}},
  };
  for (const BadFasta& b : bad) {
    INFO(b.name);
    write_text(d / b.name, b.text);
    expect_error([&] { Fasta f(d / b.name, d / "c"); }, b.want);
    CHECK(!fs::exists(d / (b.name + ".fai")));
  }
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
  {  // the other naming clashes: mitochondrion chrM / MT / chrMT, and case
    ChromSizes ucsc, ens;
    ucsc.add("chr1", 10), ucsc.add("chrX", 10), ucsc.add("chrM", 10);
    ens.add("1", 10), ens.add("MT", 10);
    CHECK(ucsc.suggest("chrMT").find("did you mean 'chrM'?") == 0);
    CHECK(ucsc.suggest("MT").find("did you mean 'chrM'?") == 0);
    CHECK(ucsc.suggest("M").find("did you mean 'chrM'?") == 0);
    CHECK(ens.suggest("chrM").find("did you mean 'MT'?") == 0);
    CHECK(ens.suggest("chrMT").find("did you mean 'MT'?") == 0);
    CHECK(ucsc.suggest("chrx").find("did you mean 'chrX'?") == 0);
    CHECK(ucsc.suggest("X").find("did you mean 'chrX'?") == 0);
    CHECK(ucsc.suggest("x").find("did you mean 'chrX'?") == 0);
    CHECK(ucsc.suggest("chrY").find("known: chr1, chrX, chrM") == 0);
  }
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
  // 11 columns: a narrowPeak by its name (summit and signalValue read), a BED by any other name.
  const std::string eleven = "chr1\t10\t30\tp1\t5\t.\t7.5\t0\t0\t4\textra\n";
  write_text(d / "q.narrowPeak", eleven);
  write_text(d / "q.bed", eleven);
  CHECK(read_bed(d / "q.narrowPeak", o)[0].summit == 14);
  CHECK(read_bed(d / "q.narrowPeak", o)[0].signal == 7.5);
  CHECK(read_bed(d / "q.bed", o)[0].summit == 20);
  CHECK(read_bed(d / "q.bed", o)[0].signal == 5);
  // Tab-separated lines split at tabs only: an empty name column keeps the summit in column 10, a name with a space
  // stays one field (both were read as BEDs with centred summits when spaces split fields too); trailing tabs and
  // spaces are no column; an empty score is no score. A line without a tab splits at spaces.
  write_text(d / "tabs.txt",
             "chr1\t10\t30\t\t5\t.\t7.5\t0\t0\t4\nchr1\t10\t30\tpeak 2\t5\t.\t7.5\t0\t0\t3\r\n"
             "chr2\t100\t121\t\t\n chr2 100  121 \t\nchr2\t100\t121\tx\t\t+\n");
  const auto tabs = read_bed(d / "tabs.txt", o);
  REQUIRE(tabs.size() == 5);
  CHECK(tabs[0].summit == 14);
  CHECK(tabs[0].signal == 7.5);
  CHECK(tabs[1].summit == 13);
  CHECK(tabs[2].summit == 110);
  CHECK(!tabs[2].has_signal);
  CHECK(tabs[3].chrom_index == 1);
  CHECK(tabs[3].end == 121);
  CHECK(!tabs[4].has_signal);
  write_text(d / "bom.bed", "\xEF\xBB\xBF" "chr2\t100\t121\r\n");  // a UTF-8 byte-order mark (Excel, Notepad)
  CHECK(read_bed(d / "bom.bed", o).at(0).chrom == "chr2");
  write_text(d / "bomtrack.bed", "\xEF\xBB\xBF" "track name=x\nchr2\t100\t121\n");
  CHECK(read_bed(d / "bomtrack.bed", o).size() == 1);
  write_text(d / "tabtrack.bed", "track type=narrowPeak\tname=x\nbrowser position chr1:1-100\t\nchr2\t100\t121\n");
  CHECK(read_bed(d / "tabtrack.bed", o).size() == 1);  // a header line with a tab is still a header line
  write_text(d / "mixed.bed", "chr1 10 30\tp1\n");
  const auto mixed = read_bed(d / "mixed.bed", o);  // fewer than 3 tab-separated fields: blanks separate
  CHECK((mixed.at(0).chrom == "chr1" && mixed[0].start == 10 && mixed[0].end == 30));
  write_text(d / "b3.bed", "chr1\t0\t1000\nchr2\t0\t1\n");
  auto b3 = read_bed(d / "b3.bed", o);
  CHECK(b3[0].summit == 500);
  CHECK(!b3[0].has_signal);
  struct Bad { std::string text, what; };
  std::vector<Bad> bad = {
      {"chr1\t10\n", "at least 3 columns"},
      {"chr1\tx\t20\n", "column 2 (start) 'x' is not an integer"},
      {"chr1\t\t20\n", "column 2 (start) '' is not an integer"},
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
  // A column-name line gets a hint; the same words below a record do not (they are then a bad record).
  write_text(d / "named.bed", "# from a spreadsheet\nchrom\tstart\tend\nchr1\t10\t20\n");
  expect_error([&] { read_bed(d / "named.bed", o); },
               {"named.bed:2", "column 2 (start) 'start' is not an integer (a header line? BED has none"});
  write_text(d / "named2.bed", "chr1\t10\t20\nchrom\tstart\tend\n");
  try {
    read_bed(d / "named2.bed", o);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("named2.bed:2: column 2 (start) 'start' is not an integer") != std::string::npos);
    CHECK(std::string(e.what()).find("header") == std::string::npos);
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
  ChromSizes renamed;  // one chromosome named differently: an error, where an absent one reads as zeros
  renamed.add("chr1", 5000);
  renamed.add("2", 333);
  expect_error([&] { bw.check_against(renamed, renamed.names); },
               {"p.bw", "chromosome '2' is not in the file; did you mean 'chr2'?", "rename"});
  ChromSizes extra;
  extra.add("chr1", 5000);
  extra.add("chr3", 10);
  BigWig sparse(d / "p.bw");
  sparse.check_against(extra, extra.names);
  std::vector<float> zeros(4, 1.0f);
  sparse.values("chr3", 0, 4, zeros.data());
  CHECK(zeros == std::vector<float>(4, 0.0f));
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

TEST_CASE("bigwig: a track with no nonzero value (no data index) opens and reads zeros") {
  // A strand without reads, or an attribution track of zeros: libBigWig writes no index and could not read it back.
  TempDir d;
  ChromSizes cs;
  cs.add("chr1", 700);
  cs.add("chr2", 90);
  write_bigwig(d / "zero.bw", cs, {std::vector<float>(700, 0.0f), std::vector<float>(90, 0.0f)});
  BigWig bw(d / "zero.bw");
  CHECK(bw.chrom_sizes().length("chr1") == 700);
  CHECK(bw.chrom_sizes().length("chr2") == 90);
  std::vector<float> v(300, -1.0f);
  bw.values("chr1", 100, 400, v.data());
  for (float x : v) CHECK(x == 0.0f);
  expect_error([&] { bw.values("chr2", 80, 100, v.data()); }, {"outside", "length 90"});
}

TEST_CASE("bigwig: written through a temporary; pieces with gaps equal the whole arrays; an abandoned write") {
  TempDir d;
  ChromSizes cs;
  cs.add("c1", 3000);
  cs.add("c2", 500);
  Rng rng(5);
  std::vector<std::vector<float>> full{std::vector<float>(3000, 0.0f), std::vector<float>(500, 0.0f)};
  for (auto& c : full)
    for (size_t i = 0; i < c.size(); ++i) c[i] = (i / 37) % 3 == 0 ? 0.0f : static_cast<float>((i / 11) % 4);
  write_bigwig(d / "whole.bw", cs, full);
  {
    BigWigWriter w(d / "pieces.bw", cs);
    for (int64_t s = 0; s < 3000;) {  // pieces of random length, some bases never given (read as zeros)
      const int64_t n = std::min<int64_t>(rng.randint(1, 200), 3000 - s);
      std::vector<float> piece(full[0].begin() + s, full[0].begin() + s + n);
      bool zeros = true;
      for (float x : piece) zeros = zeros && x == 0.0f;
      if (!zeros) w.add(0, s, piece.data(), n);
      s += n;
    }
    w.add(1, 0, full[1].data(), 250);
    w.add(1, 250, full[1].data() + 250, 250);
    CHECK_THROWS_WITH_AS(w.add(1, 100, full[1].data(), 1), doctest::Contains("out of order"), Error);
    CHECK_THROWS_AS(w.add(0, 2999, full[0].data(), 1), Error);
    std::vector<std::string> tmp;
    for (const auto& e : std::filesystem::directory_iterator(d.path))
      if (e.path().filename().string().rfind("pieces.bw.tmp.", 0) == 0) tmp.push_back(e.path().string());
    CHECK(tmp.size() == 1);  // NAME.tmp.<pid>.<n>, what remove_stale_temporaries reaps
    CHECK(!std::filesystem::exists(d / "pieces.bw"));
    w.commit();
  }
  BigWig a(d / "whole.bw"), b(d / "pieces.bw");
  for (int64_t c = 0; c < 2; ++c) {
    std::vector<float> x(full[c].size()), y(full[c].size());
    a.values(cs.names[c], 0, cs.lengths[c], x.data());
    b.values(cs.names[c], 0, cs.lengths[c], y.data());
    CHECK(x == full[c]);
    CHECK(y == full[c]);
  }
  // Per-base values that all differ (fixed-step blocks) mixed with runs, zeros and lone values, across the
  // writer's 65,536-interval buffer: read back exactly.
  {
    ChromSizes big;
    big.add("d1", 200'000);
    big.add("d2", 40);
    std::vector<std::vector<float>> dv{std::vector<float>(200'000), std::vector<float>(40)};
    for (auto& c : dv)
      for (size_t i = 0; i < c.size(); ++i) {
        const size_t k = i % 1000;
        c[i] = k < 300 ? static_cast<float>(rng.uniform(-1, 1)) : k < 340 ? 0.0f : k < 400 ? 2.5f
               : k < 420 ? static_cast<float>(k) : k % 3 ? 0.0f : static_cast<float>(rng.uniform(0, 1));
      }
    write_bigwig(d / "dense.bw", big, dv);
    BigWig r(d / "dense.bw");
    for (int64_t c = 0; c < 2; ++c) {
      std::vector<float> y(dv[c].size());
      r.values(big.names[c], 0, big.lengths[c], y.data());
      CHECK(y == dv[c]);
    }
    std::filesystem::remove(d / "dense.bw");
  }
  // Destroyed without commit (an error or a stop): the earlier file stays and no temporary is left.
  const auto before = std::filesystem::file_size(d / "whole.bw");
  {
    BigWigWriter w(d / "whole.bw", cs);
    std::vector<float> ones(100, 1.0f);
    w.add(0, 0, ones.data(), 100);
  }
  CHECK(std::filesystem::file_size(d / "whole.bw") == before);
  int64_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.path)) files += e.is_regular_file();
  CHECK(files == 2);
}

// A full disk (here RLIMIT_FSIZE, so that writes past a size fail with EFBIG) while libBigWig writes: anywhere it
// stops, the writer must throw and leave the destination as it was. libBigWig ignores write errors when it closes (the indexes and zoom levels come last), so a cut there is
// caught by reading the closed file back.
TEST_CASE("bigwig: a write cut short at any size throws and keeps the earlier file") {
  TempDir d;
  ChromSizes cs;
  cs.add("c1", 120'000);
  cs.add("c2", 30'000);
  Rng rng(11);
  std::vector<std::vector<float>> v{std::vector<float>(120'000), std::vector<float>(30'000)};
  for (auto& c : v)
    for (size_t i = 0; i < c.size(); ++i)
      c[i] = i % 700 < 400 ? static_cast<float>(rng.uniform(0, 3)) : i % 700 < 500 ? 0.0f : 1.5f;
  write_bigwig(d / "full.bw", cs, v);
  const auto full = static_cast<int64_t>(std::filesystem::file_size(d / "full.bw"));
  write_text(d / "out.bw", "the earlier file");
  const std::string out = d / "out.bw";
  std::vector<int64_t> limits = {4096, full - 1, full - 200, full - 5000};
  for (int k = 1; k < 20; ++k) limits.push_back(full * k / 20);
  for (int64_t lim : limits) {
    CAPTURE(lim);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // the child writes under the limit and reports 'T' + the message (threw) or 'C' (committed)
      close(fds[0]);
      (void)!std::freopen("/dev/null", "w", stderr);  // libBigWig's own warning
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit rl{static_cast<rlim_t>(lim), static_cast<rlim_t>(lim)};
      setrlimit(RLIMIT_FSIZE, &rl);
      std::string msg;
      try {
        write_bigwig(out, cs, v);
        msg = "C";
      } catch (const Error& e) {
        msg = std::string("T") + e.what();
      } catch (...) {
        msg = "X";
      }
      (void)!write(fds[1], msg.data(), msg.size());
      _exit(0);
    }
    close(fds[1]);
    std::string msg;
    char buf[512];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    REQUIRE(WIFEXITED(st));
    REQUIRE(!msg.empty());
    CHECK(msg[0] != 'X');
    // Every limit is below the file's size, so the write must fail: with the file named, the earlier file kept.
    CHECK(msg[0] == 'T');
    CHECK(msg.find("out.bw") != std::string::npos);
    std::ifstream in(out, std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()) == "the earlier file");
    int64_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(d.path)) files += e.is_regular_file();
    CHECK(files == 2);  // full.bw and out.bw: no temporary left
  }
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
  expect_error([&] { read_folds(d.path); }, {"is a directory"});
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
