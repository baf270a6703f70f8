// Training from genome files and FASTA sequences: config sections data.genome/data.sequences, the dataset
// factory (per-fold counts vs brute force), data-stats, and short real-data runs (NFE2 auROC, yeast NLL/counts).
// Run: build/tests/lowpass_tests -ts=genome_train   (real-data cases skip when ../shared/data is absent)
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "models/data/array_dataset.h"
#include "models/train/config.h"
#include "models/attr/model_dir.h"
#include "models/train/datasets.h"
#include "models/train/evaluate.h"
#include "models/train/trainer.h"
#include "tests/genome_fixtures.h"

using nlohmann::json;

namespace {

const std::string kNfe2 = "../shared/data/nfe2_gm12878/";

// ACGT-only genome with peaks of known coverage; peaks carry a motif so a model can learn them.
struct SmallGenome {
  TempDir dir;
  Genome g;
  std::vector<std::vector<int>> cov;  // per chromosome, 1 inside a peak
  SmallGenome() {
    Rng rng(5);
    for (auto [name, L] : std::vector<std::pair<std::string, int64_t>>{{"chr1", 9000}, {"chr2", 7001}, {"chr3", 6000}}) {
      g.sizes.add(name, L);
      std::string s(L, 'A');
      for (auto& ch : s) ch = "ACGT"[rng.randint(0, 4)];
      g.seq.push_back(s);
      cov.emplace_back(L, 0);
    }
    std::string bed = "track type=narrowPeak name=x\n";
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t a = 300; a + 400 < g.sizes.lengths[c]; a += 700) {
        int64_t w = 20 + rng.randint(0, 90);
        for (int64_t i = a; i < a + w; ++i) cov[c][i] = 1;
        g.seq[c].replace(a + w / 2 - 6, 12, "CACGTGCACGTG");
        bed += g.sizes.names[c] + "\t" + std::to_string(a) + "\t" + std::to_string(a + w) + "\tp\t1\t.\t" +
               std::to_string(rng.uniform(1, 50)) + "\t-1\t-1\t" + std::to_string(w / 2) + "\n";
      }
    write_text(dir / "g.fa", fasta_text(g));
    write_text(dir / "p.narrowPeak", bed);
  }
  // Binary bins of `chroms` (bin 50, stride 25, flank 25) with >= half of the bin in a peak: brute force.
  int64_t positive_bins(const std::vector<std::string>& chroms) const {
    int64_t n = 0;
    for (const auto& name : chroms) {
      int64_t c = g.sizes.find(name), L = g.sizes.lengths[c];
      for (int64_t s = 0; s + 50 <= L; s += 25) {
        int ov = 0;
        for (int64_t i = s; i < s + 50; ++i) ov += cov[c][i];
        n += ov >= 25 && s >= 25 && s + 75 <= L;
      }
    }
    return n;
  }
};

json small_binary_config(const SmallGenome& sg) {
  return {{"model", {{"type", "binary"}, {"input_length", 100}, {"conv_filter_sizes", {7, 5}}, {"conv_depths", {8, 8}},
                     {"max_pool_size", 10}, {"fc_sizes", {8}}}},
          {"data", {{"genome", {{"fasta", "g.fa"}, {"peaks", {"p.narrowPeak"}}, {"bin", 50}, {"stride", 25},
                                {"flank", 25}, {"cache_dir", sg.dir / "cache"}, {"workers", 1},
                                {"folds", {{"train", {"chr1", "chr2"}}, {"valid", json::array()}, {"test", {"chr3"}}}}}}}},
          {"train", {{"batch_size", 16}, {"epochs", 2}, {"seed", 3}, {"progress", false}, {"lr", 0.01}}},
          {"prior", {{"weight", 0.1}, {"freq_limit", 10}}}};
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_SUITE("genome_train") {
TEST_CASE("config: data.genome / data.sequences keys are strict, paths resolved, forms exclusive") {
  SmallGenome sg;
  json c = small_binary_config(sg);
  TrainConfig cfg = resolve_config(c, "t.json", sg.dir.path);
  CHECK(cfg.data.genome.enabled);
  CHECK(cfg.data.genome.fasta == fs::absolute(sg.dir / "g.fa").lexically_normal().string());
  CHECK(cfg.data.genome.train_chroms == std::vector<std::string>{"chr1", "chr2"});
  CHECK(cfg.resolved["data"]["genome"]["negatives"] == "uniform");  // defaults are recorded
  CHECK(cfg.resolved["data"]["genome"]["peaks"][0] == cfg.data.genome.peaks[0]);

  json bad = c;
  bad["data"]["genome"]["jiter"] = 3;
  expect_error([&] { resolve_config(bad, "t.json", sg.dir.path); }, {"t.json", "unknown key 'data.genome.jiter'"});
  bad = c;
  bad["data"]["genome"]["folds"]["tset"] = json::array();
  expect_error([&] { resolve_config(bad, "t.json", sg.dir.path); }, {"data.genome.folds.tset"});
  bad = c;
  bad["data"]["genome"]["folds"]["test"] = {"chr2"};
  expect_error([&] { resolve_config(bad, "t.json", sg.dir.path); }, {"'chr2' in two splits"});
  json alias = c;  // "validation", as folds files (ChromBPNet) may spell it, is the valid split inline too
  alias["data"]["genome"]["folds"].erase("valid");
  alias["data"]["genome"]["folds"]["validation"] = {"chr3"};
  alias["data"]["genome"]["folds"]["test"] = json::array();
  CHECK(resolve_config(alias, "t.json", sg.dir.path).data.genome.valid_chroms == std::vector<std::string>{"chr3"});
  alias["data"]["genome"]["folds"]["valid"] = json::array();
  expect_error([&] { resolve_config(alias, "t.json", sg.dir.path); }, {"both 'valid' and 'validation'"});
  bad = c;
  bad["data"]["genome"]["flank"] = 30;
  expect_error([&] { resolve_config(bad, "t.json", sg.dir.path); }, {"data.genome.bin + 2 * data.genome.flank = 110",
                                                                      "model.input_length is 100"});
  // bin + 2 * flank past int64 (fuzz_config): 9223372036854773908 + 2 * 4611686018427388904 wrapped round to 100
  bad["data"]["genome"]["bin"] = 9223372036854773908LL;
  bad["data"]["genome"]["flank"] = 4611686018427388904LL;
  expect_error([&] { resolve_config(bad, "t.json", sg.dir.path); }, {"data.genome.bin + 2 * data.genome.flank = more "
                                                                      "than 2^63 - 1", "model.input_length is 100"});
  // Bounds where a larger value can only be a mistake and would overflow positions or thread counts.
  using Bound = std::tuple<const char*, int64_t, const char*>;
  for (auto [k, v, want] : {Bound{"jitter", 4611686018427387904LL, "'data.genome.jitter' must be <= 1000000000"},
                            {"stride", 1000000001LL, "'data.genome.stride' must be <= 1000000000"},
                            {"workers", 257, "'data.genome.workers' must be <= 256"},
                            {"prefetch", 1LL << 40, "'data.genome.prefetch' must be <= 65536"}}) {
    bad = c;
    bad["data"]["genome"][k] = v;
    expect_error([&] { resolve_config(bad, "t.json", sg.dir.path); }, {want});
  }
  bad = c;
  bad["data"]["genome"]["jitter"] = 1000000000;  // the bound itself is accepted
  CHECK(resolve_config(bad, "t.json", sg.dir.path).data.genome.jitter == 1000000000);
  bad = c;
  bad["data"]["genome"].erase("folds");
  expect_error([&] { resolve_config(bad, "t.json", sg.dir.path); }, {"'data.genome.folds' is required"});
  // a folds file's error names the config
  write_text(sg.dir / "folds.json", "{\"train\": [\"chr1\"], \"test\": \"chr3\"}");
  bad["data"]["genome"]["folds"] = "folds.json";
  expect_error([&] { resolve_config(bad, "t.json", sg.dir.path); },
               {"t.json: 'data.genome.folds': folds '", "\"test\" must be a list"});
  bad = c;
  bad["data"]["train"] = "x.npz";
  expect_error([&] { resolve_config(bad, "t.json", sg.dir.path); }, {"give exactly one of"});
  bad = c;
  bad["data"]["genome"]["negatives"] = "random";
  expect_error([&] { resolve_config(bad, "t.json", sg.dir.path); }, {"data.genome.negatives", "uniform|gc_matched"});
  bad = c;
  bad["data"]["genome"]["bigwigs"] = {"x.bw"};
  expect_error([&] { resolve_config(bad, "t.json", sg.dir.path); }, {"are for profile models"});

  // $LOWPASS_DATA expansion (and a clear message when it is unset)
  json e = c;
  e["data"]["genome"]["fasta"] = "$LOWPASS_DATA/g.fa";
  ::setenv("LOWPASS_DATA", sg.dir.path.c_str(), 1);
  CHECK(resolve_config(e, "t.json", "/nonexistent").data.genome.fasta == fs::path(sg.dir / "g.fa").lexically_normal().string());
  ::unsetenv("LOWPASS_DATA");
  expect_error([&] { resolve_config(e, "t.json", "/"); }, {"data.genome.fasta", "LOWPASS_DATA", "not set"});
  // '~' and other variables are not expanded: a missing path written so says why, at the config
  for (const std::string p : {"~/g.fa", "$HOME/g.fa", "${DATA}/g.fa"}) {
    e["data"]["genome"]["fasta"] = p;
    expect_error([&] { resolve_config(e, "t.json", sg.dir.path); },
                 {"t.json: 'data.genome.fasta'", p, "does not exist", "not expanded as a shell does"});
  }

  json s = {{"model", {{"type", "binary"}, {"input_length", 235}}},
            {"data", {{"sequences", {{"train", {{"positives", "p.fa"}, {"negatives", "n.fa"}}}}}}}};
  TrainConfig sc = resolve_config(s, "s.json", "/d");
  CHECK(sc.data.sequences.train_positives == "/d/p.fa");
  CHECK(sc.data.sequences.test_positives.empty());
  s["data"]["sequences"]["test"] = {{"positives", "p.fa"}};
  expect_error([&] { resolve_config(s, "s.json", "/d"); }, {"data.sequences.test.negatives' is required"});
  s["data"]["sequences"]["test"] = {{"positives", "p.fa"}, {"negatives", "n.fa"}, {"neg", 1}};
  expect_error([&] { resolve_config(s, "s.json", "/d"); }, {"unknown key 'data.sequences.test.neg'"});
}

TEST_CASE("genome binary data: per-fold positives equal a brute-force count; trains and tests; bad folds are named") {
  SmallGenome sg;
  TrainConfig cfg = resolve_config(small_binary_config(sg), "t.json", sg.dir.path);
  json st = data_stats(cfg);
  CHECK(st["train"]["positives"].get<int64_t>() == sg.positive_bins({"chr1", "chr2"}));
  CHECK(st["test"]["positives"].get<int64_t>() == sg.positive_bins({"chr3"}));
  CHECK(st["valid"].is_null());
  CHECK(st["train"]["stats"]["candidate_bins"].get<int64_t>() > st["train"]["positives"].get<int64_t>());
  const int64_t p = sg.positive_bins({"chr1", "chr2"});
  CHECK(st["train"]["batches_per_epoch"].get<int64_t>() == (p + 7) / 8);  // 8 positives + 8 negatives per batch

  TempDir out;
  TrainOptions o;
  o.out_dir = out / "m";
  o.quiet = true;
  TrainResult r = train_model(cfg, o);
  CHECK(r.epochs == 2);
  CHECK(r.steps == 2 * ((p + 7) / 8));
  REQUIRE(r.test.contains("test_auroc"));
  CHECK(r.test["test_auroc"].get<double>() >= 0.0);
  CHECK(fs::exists(out / "m/config.json"));
  // export: the test split as arrays, the rows the trainer tested on; evaluating them gives its test auROC
  {
    ArrayDataset fwd = export_split(cfg, "test", false), both = export_split(cfg, "test", true);
    CHECK(fwd.n > 0);
    CHECK(both.n == 2 * fwd.n);
    CHECK(fwd.length == cfg.model.at("input_length").get<int64_t>());
    int64_t pos = 0;
    for (int64_t i = 0; i < fwd.n; ++i) pos += fwd.label_class(i) == 1;
    CHECK(pos == sg.positive_bins({"chr3"}));
    Context ctx(1, 0);
    auto m = attr::load_model_dir(out / "m", ctx, "best");
    EvalResult e = evaluate(*m, both, cfg.prior, false, 64, 1.0, ctx, "exported");
    CHECK(e.examples == r.test["test_examples"].get<int64_t>());
    CHECK(e.auroc == doctest::Approx(r.test["test_auroc"].get<double>()).epsilon(1e-6));
    expect_error([&] { export_split(cfg, "valid", false); }, {"t.json", "no valid split"});
  }
  // the resolved config (with absolute paths) reloads and resumes
  TrainConfig again = load_config(out / "m/config.json");
  CHECK(again.data.genome.enabled);
  CHECK(again.data.genome.test_chroms == std::vector<std::string>{"chr3"});

  // a chromosome unknown to the FASTA, and a training split without peaks
  json bad = small_binary_config(sg);
  bad["data"]["genome"]["folds"]["train"] = {"1"};
  TrainConfig bc = resolve_config(bad, "t.json", sg.dir.path);
  expect_error([&] { make_datasets(bc); }, {"t.json", "train split", "'1'"});
  write_text(sg.dir / "few.bed", "chr3\t1000\t1100\n");
  bad = small_binary_config(sg);
  bad["data"]["genome"]["peaks"] = {"few.bed"};
  bc = resolve_config(bad, "t.json", sg.dir.path);
  expect_error([&] { make_datasets(bc); }, {"t.json", "train split"});
  // chrom_sizes that disagree with the FASTA
  write_text(sg.dir / "sizes", "chr1\t9000\nchr2\t7000\n");
  bad = small_binary_config(sg);
  bad["data"]["genome"]["chrom_sizes"] = "sizes";
  bc = resolve_config(bad, "t.json", sg.dir.path);
  expect_error([&] { make_datasets(bc); }, {"sizes:2", "'chr2' has length 7000 but 7001"});
}

// `lowpass export` streams (models/data/array_dataset_writer.h): the file equals, byte for byte, what the in-memory
// path (export_split + write_array_dataset, the spec) writes, for the evaluation draw, its reverse complements and a
// seeded training epoch; the values read back equal the batch source's rows.
TEST_CASE("export streams: write_split_npz writes write_array_dataset(export_split) byte for byte") {
  SmallGenome sg;
  TrainConfig cfg = resolve_config(small_binary_config(sg), "t.json", sg.dir.path);
  TempDir out;
  auto bytes = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  struct Case {
    std::string split;
    bool revcomp;
    uint64_t seed;
  };
  for (const Case& c : {Case{"test", false, 0}, Case{"test", true, 0}, Case{"train", true, 7}}) {
    CAPTURE(c.split);
    CAPTURE(c.revcomp);
    const ArrayDataset ds = export_split(cfg, c.split, c.revcomp, c.seed);
    write_array_dataset(ds, out / "old.npz");
    SplitSource s = open_split(cfg, c.split, c.revcomp);
    const ExportSummary r = write_split_npz(s, c.seed, out / "new.npz", false);
    CHECK(r.rows == ds.n);
    CHECK(r.length == ds.length);
    int64_t ones = 0;
    for (int v : ds.status) ones += v == 1;
    CHECK(r.status_ones == ones);
    const std::string a = bytes(out / "old.npz"), b = bytes(out / "new.npz");
    CHECK(a.size() == b.size());
    CHECK(a == b);
    const ArrayDataset back = read_array_dataset(out / "new.npz", "binary");
    CHECK(back.x == ds.x);
    CHECK(back.y == ds.y);
    CHECK(back.y_shape == ds.y_shape);
    CHECK(back.status == ds.status);
    // nothing but the output is left in the folder (the spill files are unlinked)
    int64_t files = 0;
    for (const auto& e : fs::directory_iterator(out.path)) files += e.path().filename() != "old.npz";
    CHECK(files == 1);
  }
  expect_error([&] { open_split(cfg, "valid", false); }, {"t.json", "no valid split"});
}

TEST_CASE("real data: NFE2 binary model from FASTA sequences reaches test auROC >= 0.80") {
  if (!fs::exists(kNfe2 + "nfe2.tr.fa")) {
    MESSAGE("skipped: ", kNfe2, " is absent");
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  json c = {{"model", {{"type", "binary"}, {"input_length", 235}, {"conv_filter_sizes", {11, 7}},
                       {"conv_depths", {16, 16}}, {"max_pool_size", 20}, {"fc_sizes", {16}}}},
            {"data", {{"sequences", {{"train", {{"positives", kNfe2 + "nfe2.tr.fa"}, {"negatives", kNfe2 + "nfe2.neg.tr.fa"}}},
                                     {"test", {{"positives", kNfe2 + "nfe2.test.fa"},
                                               {"negatives", kNfe2 + "nfe2.neg.test.fa"}}}}}}},
            {"train", {{"batch_size", 64}, {"epochs", 4}, {"seed", 1}, {"progress", false}, {"lr", 0.005},
                       {"early_stopping", false}}},
            {"prior", {{"weight", 0.0}}}};
  TrainConfig cfg = resolve_config(c, "nfe2.json", "");
  TempDir out;
  TrainOptions o;
  o.out_dir = out / "m";
  o.quiet = true;
  TrainResult r = train_model(cfg, o);
  const double a = r.test["test_auroc"].get<double>();
  MESSAGE("NFE2 test auROC ", a, " after ", r.steps, " steps, ", seconds_since(t0), " s");
  CHECK(r.test["test_examples"].get<int64_t>() == 2 * 138);  // 69 + 69, reverse complements included
  CHECK(a >= 0.80);
}

TEST_CASE("real data: yeast ATAC profile model beats a uniform profile (test NLL) with count Pearson > 0.3") {
  if (!fs::exists(kYeast + "sacCer3.fa")) {
    MESSAGE("skipped: ", kYeast, " is absent");
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  TempDir d;
  json c = {{"model", {{"type", "profile"}, {"output_length", 200}, {"num_strands", 1}, {"controls", "none"},
                       {"dil_conv_filter_sizes", {21, 3, 3, 3}}, {"dil_conv_dilations", {1, 2, 4, 8}},
                       {"dil_conv_depths", {32, 32, 32, 32}}}},
            {"data", {{"genome", {{"fasta", kYeast + "sacCer3.fa"},
                                  {"peaks", {kYeast + "hmmratac_yeast500k_accessible_regions.narrowPeak"}},
                                  {"bigwigs", {{kYeast + "yeast_atac_tn5cuts_shifted.bw"}}},
                                  {"folds", {{"train", {"chrI", "chrII", "chrIII", "chrV", "chrVI", "chrVII", "chrVIII",
                                                        "chrIX", "chrX", "chrXI", "chrXII"}},
                                             {"valid", {"chrXV"}}, {"test", {"chrIV"}}}},
                                  {"jitter", 32}, {"cache_dir", d / "cache"}, {"negatives", "uniform"}}}}},
            {"train", {{"batch_size", 32}, {"epochs", 3}, {"seed", 2}, {"progress", false}, {"lr", 0.004},
                       {"negative_ratio", 0.25}, {"counts_loss_weight", 100}, {"early_stopping", false}}},
            {"prior", {{"weight", 0.0}}}};
  TrainConfig cfg = resolve_config(c, "yeast.json", "");
  json st = data_stats(cfg);
  CHECK(st["train"]["positives"].get<int64_t>() > 500);
  CHECK(st["suggested_counts_loss_weight"].get<double>() > 0);
  TempDir out;
  TrainOptions o;
  o.out_dir = out / "m";
  o.quiet = true;
  TrainResult r = train_model(cfg, o);
  MESSAGE("yeast test: ", r.test.dump(), " after ", r.steps, " steps, ", seconds_since(t0), " s");
  REQUIRE(r.test.contains("test_nll"));
  CHECK(r.test["test_nll"].get<double>() < r.test["test_uniform_nll"].get<double>());
  CHECK(r.test["test_count_pearson"].get<double>() > 0.3);
  CHECK(!fs::exists(kYeast + "sacCer3.fa.fai"));
}
}
