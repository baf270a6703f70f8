// Genome regions for `lowpass attribute/predict --regions`: summit-centred windows vs the FASTA, edge drops,
// one-hot rows vs a plain encoding, and mean-of-overlaps bigWig tracks read back against a brute-force sum.
// Run: build-gtrain/tests/lowpass_tests -ts=attr_genome
#include "models/attr/genome_regions.h"
#include "tests/genome_fixtures.h"

TEST_SUITE("attr_genome") {
TEST_CASE("regions: windows centred on summits (narrowPeak) or centres (BED3), edge regions dropped and counted") {
  TempDir d;
  Rng rng(7);
  Genome g = random_genome(rng, {{"chr1", 3000}, {"chr2", 1001}});
  write_text(d / "g.fa", fasta_text(g));
  write_text(d / "r.bed",
             "track name=x\n"
             "chr1\t100\t300\tp\t0\t.\t1\t0\t0\t50\n"   // summit 150: window [49, 250) for L = 201
             "chr2\t0\t40\tp\t0\t.\t1\t0\t0\t5\n"       // summit 5: off the start -> dropped
             "chr2\t500\t601\n"                          // BED3: centre 550 -> [450, 651)
             "chr2\t900\t1001\tp\t0\t.\t1\t0\t0\t-1\n"); // centre 950: runs off the end -> dropped
  attr::RegionWindows r = attr::read_region_windows(d / "r.bed", d / "g.fa", 201, d / "cache");
  REQUIRE(r.size() == 2);
  CHECK(r.dropped_edge == 2);
  CHECK(r.dropped_lines == std::vector<int64_t>{3, 5});  // named in the command's message
  CHECK((r.chrom[0] == 0 && r.start[0] == 150 - 100));
  CHECK((r.chrom[1] == 1 && r.start[1] == 550 - 100));
  CHECK((r.line[0] == 2 && r.line[1] == 4));
  Context ctx(1, 0);
  Tensor x = attr::region_rows(ctx, r, 0, 2, DType::F64);
  CHECK(x.shape() == Shape{2, 4, 201});
  auto v = x.to_vector<float>();
  CHECK(decode(v.data(), 201) == norm(g.seq[0].substr(50, 201)));
  CHECK(decode(v.data() + 4 * 201, 201) == norm(g.seq[1].substr(450, 201)));
  for (int64_t i = 0; i < 201; ++i) {  // N and IUPAC codes are all-zero columns
    float col = 0;
    for (int b = 0; b < 4; ++b) col += v[(4 + b) * 201 + i];
    CHECK(col == (norm(g.seq[1].substr(450 + i, 1)) == "N" ? 0.0f : 1.0f));
  }
  attr::write_region_bed(r, d / "kept.bed");
  std::ifstream f(d / "kept.bed");
  std::string c0, n0;
  int64_t s0, e0;
  f >> c0 >> s0 >> e0 >> n0;
  CHECK((c0 == "chr1" && s0 == 50 && e0 == 251));

  write_text(d / "none.bed", "chr2\t0\t10\n");
  expect_error([&] { attr::read_region_windows(d / "none.bed", d / "g.fa", 201, d / "cache"); },
               {"none.bed", "no region has a 201-bp window", "1 dropped"});
  write_text(d / "bad.bed", "1\t0\t10\n");
  expect_error([&] { attr::read_region_windows(d / "bad.bed", d / "g.fa", 201, d / "cache"); }, {"bad.bed:1", "'1'"});
}

TEST_CASE("regions: bigWig track = mean of the overlapping windows' values, other chromosomes left out") {
  TempDir d;
  ChromSizes cs;
  cs.add("chrA", 500);
  cs.add("chrB", 300);
  cs.add("chrC", 100);
  Rng rng(3);
  std::vector<double> sum(300, 0), cnt(300, 0);
  attr::TrackAccumulator acc(cs);
  for (int k = 0; k < 20; ++k) {
    int64_t s = rng.randint(-20, 280), n = rng.randint(1, 60);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(rng.uniform(-2, 2));
    acc.add(1, s, v.data(), n);
    for (int64_t i = 0; i < n; ++i)
      if (s + i >= 0 && s + i < 300) sum[s + i] += v[i], cnt[s + i] += 1;
  }
  acc.write(d / "t.bw");
  BigWig bw(d / "t.bw");
  CHECK(bw.chrom_sizes().size() == 1);  // only the touched chromosome
  std::vector<float> got(300);
  bw.values("chrB", 0, 300, got.data());
  for (int64_t i = 0; i < 300; ++i) CHECK(got[i] == doctest::Approx(cnt[i] ? sum[i] / cnt[i] : 0.0).epsilon(1e-5));
}
}
