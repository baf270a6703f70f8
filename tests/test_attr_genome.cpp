// Genome regions for `lowpass attribute/predict --regions`: summit-centred windows vs the FASTA, edge drops,
// one-hot rows vs a plain encoding, mean-of-overlaps bigWig tracks read back against a brute-force sum, and a
// profile model's control tracks (--controls or the training run's config.json) read against the bigWig values.
// Run: build/tests/lowpass_tests -ts=attr_genome
#include <sstream>

#include <nlohmann/json.hpp>

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

TEST_CASE("regions: predicted tracks hold the expected counts softmax(profile) · (exp(log counts) − 1)") {
  const double logits[4] = {0.5, -1.0, 2.0, 0.0};
  float out[4];
  attr::expected_counts(logits, std::log1p(9.0), 4, out);  // the counts head predicts log(1 + n): n = 9
  double z = 0, total = 0;
  for (double l : logits) z += std::exp(l);
  for (int q = 0; q < 4; ++q) {
    CHECK(out[q] == doctest::Approx(std::exp(logits[q]) / z * 9.0).epsilon(1e-6));
    total += out[q];
  }
  CHECK(total == doctest::Approx(9.0).epsilon(1e-6));
  attr::expected_counts(logits, -0.5, 4, out);  // a predicted n below 0 is 0, not negative
  for (float v : out) CHECK(v == 0.0f);
  const double big[2] = {1000.0, 999.0};  // no overflow in the softmax
  attr::expected_counts(big, std::log(3.0), 2, out);
  CHECK(out[0] + out[1] == doctest::Approx(2.0).epsilon(1e-6));
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
  acc.write(d / "t.bw")->commit();
  BigWig bw(d / "t.bw");
  CHECK(bw.chrom_sizes().size() == 1);  // only the touched chromosome
  std::vector<float> got(300);
  bw.values("chrB", 0, 300, got.data());
  for (int64_t i = 0; i < 300; ++i) CHECK(got[i] == doctest::Approx(cnt[i] ? sum[i] / cnt[i] : 0.0).epsilon(1e-5));
}

TEST_CASE("regions: track memory follows the covered bases; blocks, chromosome edges and gaps read back") {
  TempDir d;
  ChromSizes cs;
  cs.add("small", 5000);
  cs.add("huge", 250'000'000);  // a whole-chromosome allocation would be 2 GB
  cs.add("untouched", 100);
  const int64_t B = attr::TrackAccumulator::kBlock;
  attr::TrackAccumulator acc(cs);
  std::vector<float> v(300);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 7) - 2.0f;  // zeros and runs
  acc.add(1, 3 * B - 100, v.data(), 300);       // across a block boundary
  acc.add(1, 200'000'000, v.data(), 300);       // far away on the same chromosome
  acc.add(1, 250'000'000 - 50, v.data(), 300);  // off the chromosome's end: the rest ignored
  acc.add(0, -100, v.data(), 300);              // off its start
  CHECK(acc.blocks() == 5);                      // 2 + 1 + 1 on "huge", 1 on "small"
  auto w = acc.write(d / "t.bw");
  CHECK(acc.blocks() == 0);  // freed while written
  CHECK(!std::filesystem::exists(d / "t.bw"));  // a temporary until committed
  w->commit();
  BigWig bw(d / "t.bw");
  REQUIRE(bw.chrom_sizes().size() == 2);  // only the touched chromosomes, in FASTA order
  CHECK(bw.chrom_sizes().names[0] == "small");
  std::vector<float> got(400);
  bw.values("huge", 3 * B - 150, 3 * B + 250, got.data());
  for (int64_t i = 0; i < 400; ++i) CHECK(got[i] == (i >= 50 && i < 350 ? v[i - 50] : 0.0f));
  bw.values("huge", 200'000'000, 200'000'300, got.data());
  for (int64_t i = 0; i < 300; ++i) CHECK(got[i] == v[i]);
  bw.values("huge", 250'000'000 - 50, 250'000'000, got.data());
  for (int64_t i = 0; i < 50; ++i) CHECK(got[i] == v[i]);
  bw.values("small", 0, 200, got.data());
  for (int64_t i = 0; i < 200; ++i) CHECK(got[i] == v[i + 100]);
}

TEST_CASE("regions: a track streamed as windows in genome order pass equals the held one; memory stays bounded") {
  // Windows in genome order (chromosomes in a non-FASTA order, starts ascending, overlapping, some off the ends),
  // released after each one as predict/attribute do: the file reads back as the held accumulator's, blocks are
  // freed as the windows pass, and a chromosome no window touches is still listed.
  TempDir d;
  ChromSizes cs;
  cs.add("chrA", 60'000);
  cs.add("chrB", 90'000);
  cs.add("chrC", 7'000);
  const int64_t B = attr::TrackAccumulator::kBlock;
  Rng rng(8);
  struct Win {
    int64_t c, s;
    std::vector<float> v;
  };
  std::vector<Win> wins;
  for (int64_t c : {1, 0}) {  // chrB, then chrA
    for (int64_t s = -300; s < cs.lengths[c];) {
      Win w{c, s, std::vector<float>(static_cast<size_t>(rng.randint(200, 1500)))};
      for (auto& x : w.v) x = rng.uniform() < 0.2 ? 0.0f : static_cast<float>(rng.uniform(-2, 2));
      wins.push_back(std::move(w));
      s += rng.randint(0, 900);  // overlaps, equal starts, gaps
    }
  }
  attr::TrackAccumulator held(cs), streamed(cs);
  streamed.stream(d / "s.bw", {1, 0, 2});
  int64_t most = 0;
  for (size_t i = 0; i < wins.size(); ++i) {
    const Win& w = wins[i];
    held.add(w.c, w.s, w.v.data(), static_cast<int64_t>(w.v.size()));
    streamed.add(w.c, w.s, w.v.data(), static_cast<int64_t>(w.v.size()));
    if (i + 1 < wins.size()) streamed.release(wins[i + 1].c, wins[i + 1].s);
    most = std::max(most, streamed.blocks());
  }
  CHECK(held.blocks() == (60'000 + B - 1) / B + (90'000 + B - 1) / B);
  CHECK(most <= 2);  // a window of at most 1,500 bases touches two blocks
  CHECK(!std::filesystem::exists(d / "s.bw"));
  streamed.write(d / "s.bw")->commit();
  held.write(d / "h.bw")->commit();
  BigWig hb(d / "h.bw"), sb(d / "s.bw");
  REQUIRE(sb.chrom_sizes().size() == 3);
  CHECK(sb.chrom_sizes().names[0] == "chrB");
  CHECK(hb.chrom_sizes().size() == 2);
  for (int64_t c = 0; c < 2; ++c) {
    std::vector<float> x(static_cast<size_t>(cs.lengths[c])), y(x.size());
    hb.values(cs.names[c], 0, cs.lengths[c], x.data());
    sb.values(cs.names[c], 0, cs.lengths[c], y.data());
    CHECK(x == y);
    CHECK(std::count(x.begin(), x.end(), 0.0f) < static_cast<std::ptrdiff_t>(x.size()) / 2);
  }
  std::vector<float> z(7000, 1.0f);
  sb.values("chrC", 0, 7000, z.data());
  CHECK(std::count(z.begin(), z.end(), 0.0f) == 7000);
}

TEST_CASE("regions: windows_in_order wants each chromosome's windows together with ascending starts") {
  TempDir d;
  Rng rng(2);
  Genome g = random_genome(rng, {{"c1", 500}, {"c2", 500}, {"c3", 500}});
  write_text(d / "g.fa", fasta_text(g));
  const auto check = [&](const std::string& bed, bool expect, std::vector<int64_t> want) {
    CAPTURE(bed);
    write_text(d / "r.bed", bed);
    const auto rw = attr::read_region_windows(d / "r.bed", d / "g.fa", 20, d / "cache");
    std::vector<int64_t> order;
    CHECK(attr::windows_in_order(rw, order) == expect);
    if (expect) CHECK(order == want);
  };
  check("c2\t100\t120\nc2\t100\t130\nc2\t300\t301\nc1\t50\t60\nc3\t10\t40\n", true, {1, 0, 2});
  check("c1\t100\t120\n", true, {0});
  check("c1\t300\t320\nc1\t100\t120\n", false, {});
  check("c1\t100\t120\nc2\t100\t120\nc1\t300\t320\n", false, {});
  // windows_in_order_or_note: the note (predict's and attribute's) only for windows out of order, from note_from on.
  const auto note = [&](const std::string& bed, int64_t from) {
    write_text(d / "r.bed", bed);
    const auto rw = attr::read_region_windows(d / "r.bed", d / "g.fa", 20, d / "cache");
    std::vector<int64_t> order;
    std::ostringstream log;
    const bool in_order = attr::windows_in_order_or_note(rw, order, "predict", "the tracks are held", log, from);
    std::vector<int64_t> plain;
    CHECK(in_order == attr::windows_in_order(rw, plain));
    CHECK(order == plain);
    return log.str();
  };
  const std::string shuffled = "c1\t300\t320\nc1\t100\t120\nc2\t100\t120\n", sorted = "c1\t100\t120\nc1\t300\t320\n";
  CHECK(note(shuffled, 4).empty());  // 3 windows, below note_from
  const std::string n = note(shuffled, 3);
  CHECK(n.find("lowpass predict: the regions are not in genome order") == 0);
  CHECK(n.find("so the tracks are held; a BED sorted with `sort -k1,1 -k2,2n` is written as it goes\n") != std::string::npos);
  CHECK(note(sorted, 1).empty());
}

TEST_CASE("regions: more than 65,535 windows on one base still give their mean") {
  // The count was a uint16 that stopped at 65,535 while the sum kept growing: 70,000 windows of 2.0 read 2.136.
  TempDir d;
  ChromSizes cs;
  cs.add("chr1", 50);
  attr::TrackAccumulator acc(cs);
  const float one[3] = {2.0f, 0.5f, 2.0f};
  for (int k = 0; k < 70'000; ++k) acc.add(0, 10, one, 3);
  acc.write(d / "dup.bw")->commit();
  BigWig bw(d / "dup.bw");
  std::vector<float> got(3);
  bw.values("chr1", 10, 13, got.data());
  CHECK(got[0] == 2.0f);
  CHECK(got[1] == 0.5f);
  CHECK(got[2] == 2.0f);
}

TEST_CASE("fasta inputs: codes per base, one-hot per batch, equal to the whole one-hot array; names and lengths") {
  // Records longer (cropped), shorter (N-padded), as long as L, with lower case and N: fasta_rows of any batch equals
  // the one-hot array open_inputs builds without FastaInputs.
  TempDir d;
  write_text(d / "s.fa", ">a\nACGTACGTACGTACGTACGTAAAC\n>b long\nacgtnNACGGGGTTTTCCCCAAAAGGGGTTTTCCAT\n>c\nGGC\n"
                         ">d\nTTTTACGTNCGTACGTACGTA\n");
  Context ctx(1, 0);
  auto m = make_model({{"type", "binary"}, {"input_length", 21}, {"num_tasks", 1}, {"conv_depths", {3}},
                       {"conv_filter_sizes", {5}}, {"max_pool_size", 4}, {"fc_sizes", {4}}},
                      ctx);
  attr::InputFiles in;
  in.fasta = d / "s.fa";
  attr::RegionWindows rw;
  attr::FastaInputs fi;
  const auto with = attr::open_inputs("predict", *m, in, rw, &fi);
  const auto whole = attr::open_inputs("predict", *m, in, rw);
  REQUIRE(with.at("x").shape == Shape{4, 4, 21});
  CHECK(with.at("x").bytes.empty());  // shape only: the codes hold the bases
  CHECK(fi.codes.size() == 4u * 21u);
  CHECK(fi.names == std::vector<std::string>{"a", "b", "c", "d"});  // the name ends at the first space
  CHECK(fi.lengths == std::vector<int64_t>{24, 36, 3, 21});
  const std::vector<double> ref = whole.at("x").to_tensor(ctx, DType::F64).to_vector<double>();
  for (const auto& [s, n] : {std::pair<int64_t, int64_t>{0, 4}, {1, 2}, {3, 1}}) {
    const std::vector<double> got = attr::fasta_rows(ctx, fi, s, n, DType::F64).to_vector<double>();
    REQUIRE(got.size() == static_cast<size_t>(n * 4 * 21));
    CHECK(std::equal(got.begin(), got.end(), ref.begin() + s * 4 * 21));
  }
  double ones = 0;
  for (double v : ref) ones += v;
  CHECK(ones > 40);  // mostly bases, some N columns (zeros)
  CHECK(ones < 4 * 21);
  CHECK_THROWS_AS(attr::fasta_rows(ctx, fi, 3, 2, DType::F32), Error);
}

TEST_CASE("regions: a profile model's control tracks from --controls or the training run's config.json") {
  TempDir d;
  Rng rng(11);
  Genome g = random_genome(rng, {{"chr1", 400}, {"chr2", 300}});
  write_text(d / "g.fa", fasta_text(g));
  ChromSizes only1;
  only1.add("chr1", 400);
  std::vector<std::vector<std::vector<float>>> vals;  // [task * 2 + strand][chrom][base]
  std::vector<std::string> bw;
  for (int k = 0; k < 4; ++k) {
    vals.push_back(random_track(rng, g.sizes, 0.7));
    bw.push_back(d / ("c" + std::to_string(k) + ".bw"));
    if (k == 3) {  // lacks chr2: reads as zeros there, as in training
      write_bigwig(bw[k], only1, {vals[k][0]});
      vals[k][1].assign(300, 0.0f);
    } else {
      write_bigwig(bw[k], g.sizes, vals[k]);
    }
  }
  write_text(d / "r.bed", "chr1\t100\t160\nchr2\t150\t151\nchr1\t300\t320\n");
  Context ctx(1, 0);
  nlohmann::json cfg{{"type", "profile"}, {"controls", "matched"}, {"input_length", 23}, {"num_tasks", 2},
                     {"num_strands", 2}, {"dil_conv_filter_sizes", {3, 3, 3}}, {"dil_conv_dilations", {1, 2, 3}},
                     {"dil_conv_depths", {3, 3, 2}}, {"prof_conv_kernel_size", 5}};
  auto m = make_model(cfg, ctx);
  const int64_t O = m->output_length(), off = (23 - O) / 2;
  REQUIRE(O == 7);
  attr::InputFiles in;
  in.regions = d / "r.bed", in.genome = d / "g.fa", in.cache_dir = d / "cache";
  in.controls = {{bw[0], bw[1]}, {bw[2], bw[3]}};
  attr::RegionWindows rw;
  attr::open_inputs("predict", *m, in, rw);
  REQUIRE(rw.size() == 3);
  REQUIRE(rw.controls.size() == 2);
  Tensor c = attr::region_control_rows(ctx, rw, 1, 2, DType::F64);
  REQUIRE(c.shape() == Shape{2, 2, 2, O});
  auto cv = c.to_vector<double>();
  int64_t nonzero = 0;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t s = 0; s < 2; ++s)
        for (int64_t q = 0; q < O; ++q) {
          const float want = vals[t * 2 + s][rw.chrom[1 + i]][rw.start[1 + i] + off + q];
          CHECK(cv[((i * 2 + t) * 2 + s) * O + q] == want);
          nonzero += want != 0;
        }
  CHECK(nonzero > 20);
  CHECK((rw.chrom[1] == 1 && rw.start[1] + off + O / 2 == 150));  // the control window shares the region's centre
  ModelOutput out = m->forward(attr::region_rows(ctx, rw, 0, 3, DType::F32),
                               attr::region_control_rows(ctx, rw, 0, 3, DType::F32), false);
  CHECK(out.profile_logits.shape() == Shape{3, 2, 2, O});

  // Without --controls: the training run's data.genome.controls (the resolved config.json), the same values.
  fs::create_directories(d / "run");
  auto run_config = [&](const std::vector<std::vector<std::string>>& controls) {
    nlohmann::json j;
    j["data"]["genome"]["controls"] = controls;
    write_text(d / "run/config.json", j.dump());
  };
  run_config({{bw[0], bw[1]}, {bw[2], bw[3]}});
  attr::InputFiles from_run = in;
  from_run.controls.clear();
  from_run.model_dir = d / "run";
  attr::RegionWindows rw2;
  attr::open_inputs("predict", *m, from_run, rw2);
  CHECK(attr::region_control_rows(ctx, rw2, 0, 3, DType::F64).to_vector<double>() ==
        attr::region_control_rows(ctx, rw, 0, 3, DType::F64).to_vector<double>());

  attr::InputFiles bad = in;
  bad.controls = {{bw[0], bw[1]}};
  expect_error([&] { attr::open_inputs("predict", *m, bad, rw2); },
               {"--controls", "1 control track(s)", "2 control tracks (one per task)", "\"matched\""});
  bad.controls = {{bw[0]}, {bw[2]}};
  expect_error([&] { attr::open_inputs("predict", *m, bad, rw2); }, {"--controls track 0", "1 bigWig", "2 strand"});
  bad.controls = {{d / "nope.bw", bw[1]}, {bw[2], bw[3]}};
  expect_error([&] { attr::open_inputs("predict", *m, bad, rw2); }, {"nope.bw", "not found"});
  bad = from_run;
  bad.model_dir = d / "elsewhere";
  expect_error([&] { attr::open_inputs("predict", *m, bad, rw2); },
               {"r.bed", "give them with --controls", "config.json names none"});
  run_config({{d / "gone.bw", bw[1]}, {bw[2], bw[3]}});
  expect_error([&] { attr::open_inputs("predict", *m, from_run, rw2); },
               {"config.json: data.genome.controls", "gone.bw", "give the controls with --controls"});
  bad = in;
  bad.regions.clear();
  bad.fasta = d / "g.fa";
  bad.controls.clear();
  expect_error([&] { attr::open_inputs("predict", *m, bad, rw2); }, {"--fasta cannot give", "--regions"});
  bad.controls = in.controls;
  expect_error([&] { attr::open_inputs("predict", *m, bad, rw2); }, {"--controls goes with --regions"});
  cfg["controls"] = "none";
  auto plain = make_model(cfg, ctx);
  expect_error([&] { attr::open_inputs("predict", *plain, in, rw2); }, {"--controls", "no control tracks"});
}
}
