// Genome datasets: binary bins vs brute-force labels, profile windows vs direct reads, real yeast/NFE2 data.
// Every batch row is checked against the genome and tracks it came from; epochs are complete and balanced.
// Run: build/tests/lowpass_tests -ts=genome   (real-data cases skip when ../shared/data is absent)
#include "tests/genome_fixtures.h"

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

TEST_CASE("peak retention: top fraction by signal in file order; equal signals and missing columns are named") {
  auto peak = [](int64_t line, double signal, bool has = true) {
    Peak p;
    p.line = line, p.signal = signal, p.has_signal = has;
    return p;
  };
  auto lines = [](const std::vector<Peak>& ps) {
    std::vector<int64_t> l;
    for (const Peak& p : ps) l.push_back(p.line);
    return l;
  };
  const std::vector<Peak> ps = {peak(1, 3), peak(2, 9), peak(3, 5), peak(4, 9), peak(5, 1)};
  CHECK(lines(top_peaks_by_signal(ps, 0.4, "p.bed")) == std::vector<int64_t>{2, 4});     // ceil(2.0) = 2
  CHECK(lines(top_peaks_by_signal(ps, 0.5, "p.bed")) == std::vector<int64_t>{2, 3, 4});  // ceil(2.5) = 3
  CHECK(lines(top_peaks_by_signal(ps, 1.0, "p.bed")) == std::vector<int64_t>{1, 2, 3, 4, 5});
  CHECK(lines(top_peaks_by_signal({peak(1, 2), peak(2, 7), peak(3, 7)}, 0.3, "p.bed")) == std::vector<int64_t>{2});
  // Every signal equal (a narrowPeak whose signalValue column is all 0): the ranking would be file order.
  const std::vector<Peak> flat = {peak(1, 0), peak(2, 0), peak(3, 0), peak(4, 0)};
  genome_test::expect_error([&] { top_peaks_by_signal(flat, 0.5, "y.narrowPeak"); },
                            {"y.narrowPeak", "all 4 peaks have the same signal (0)", "first in file order"});
  CHECK(top_peaks_by_signal(flat, 1.0, "y.narrowPeak").size() == 4);  // nothing dropped: nothing to rank
  genome_test::expect_error([&] { top_peaks_by_signal({peak(1, 1), peak(7, 0, false)}, 0.5, "p.bed"); },
                            {"p.bed:7", "no signal column"});
}

TEST_CASE("FASTA positives/negatives: training batches follow negative_ratio; evaluation reads every record in order") {
  genome_test::TempDir d;
  // 10 positives "P<i>" (all A) and 40 negatives (all C); the record index is written as the sequence length.
  std::string pos, neg;
  for (int i = 0; i < 10; ++i) pos += ">p" + std::to_string(i) + "\n" + std::string(static_cast<size_t>(5 + i), 'A') + "\n";
  for (int i = 0; i < 40; ++i) neg += ">n" + std::to_string(i) + "\n" + std::string(static_cast<size_t>(5 + i % 20), 'C') + "\n";
  write_text(d.path + "/p.fa", pos);
  write_text(d.path + "/n.fa", neg);
  FastaBinaryConfig c;
  c.positives = d.path + "/p.fa";
  c.negatives = d.path + "/n.fa";
  c.input_length = 30;
  c.batch_size = 8;
  c.revcomp = false;
  Context ctx(1, 0);
  struct Want { double ratio; int64_t batches, pos_per_batch, neg_per_batch; };
  for (const Want w : {Want{1.0, 3, 4, 4}, Want{3.0, 5, 2, 6}, Want{0.0, 2, 8, 0}}) {
    CAPTURE(w.ratio);
    c.negative_ratio = w.ratio;
    FastaBinaryDataset ds(c);
    CHECK(ds.batches_per_epoch() == w.batches);
    for (int epoch = 0; epoch < 2; ++epoch) {
      Rng r(static_cast<uint64_t>(7 + epoch));
      ds.start_epoch(epoch, r);
      int64_t npos = 0, nneg = 0;
      for (int64_t i = 0; i < ds.batches_per_epoch(); ++i) {
        Batch b = ds.next(ctx);
        auto y = b.y.to_vector<float>();
        int64_t p = 0, n = 0;
        for (float v : y) (v == 1 ? p : n) += 1;
        for (int64_t k = 0; k < p; ++k) CHECK(y[static_cast<size_t>(k)] == 1);  // positives first
        if (i + 1 < ds.batches_per_epoch()) {
          CHECK(p == w.pos_per_batch);
          CHECK(n == w.neg_per_batch);
        }
        npos += p, nneg += n;
      }
      CHECK(npos == 10);  // every positive once per epoch
      if (w.ratio == 0) CHECK(nneg == 0);
      else CHECK(nneg == llround(10 * w.ratio));
    }
  }
  // What centring did is said where the dataset is described (train header, data-stats).
  {
    write_text(d.path + "/odd.fa", ">a\nACGTRYACGT\n>b\n" + std::string(40, 'A') + "\n>c\nNNNN\n");
    FastaBinaryConfig o = c;
    o.positives = d.path + "/odd.fa";
    o.input_length = 30;
    const std::string s = FastaBinaryDataset(o).describe();
    CHECK(s.find("42 records shorter than 30 bp (centred, N-padded), 1 longer (centre cropped), 6 bases other "
                 "than A/C/G/T read as N, 1 records with no A/C/G/T at all") != std::string::npos);
  }
  // Evaluation: every record once, in file order (positives, then negatives), whatever the ratio.
  c.sequential = true;
  c.negative_ratio = 1.0;
  FastaBinaryDataset ev(c);
  CHECK(ev.batches_per_epoch() == 7);
  Rng r(1);
  ev.start_epoch(0, r);
  std::vector<float> labels;
  for (int64_t i = 0; i < ev.batches_per_epoch(); ++i) {
    auto y = ev.next(ctx).y.to_vector<float>();
    labels.insert(labels.end(), y.begin(), y.end());
  }
  REQUIRE(labels.size() == 50);
  for (size_t k = 0; k < labels.size(); ++k) CHECK(labels[k] == (k < 10 ? 1.0f : 0.0f));
  // No positives to train on: named.
  write_text(d.path + "/empty.fa", "");
  c.sequential = false;
  c.positives = d.path + "/empty.fa";
  genome_test::expect_error([&] { FastaBinaryDataset e(c); }, {"empty.fa"});
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
