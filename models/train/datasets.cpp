// Config → BatchSources: npz (ArrayBatchSource over an owned ArrayDataset), data.genome (BinaryGenomeDataset /
// ProfileGenomeDataset per fold, the reference's split presets) and data.sequences (FastaBinaryDataset).
// Test: build/tests/lowpass_tests -ts=genome_train
#include "models/train/datasets.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "models/arch/model.h"
#include "models/data/array_dataset.h"
#include "models/data/array_dataset_writer.h"
#include "models/data/binary_genome.h"
#include "models/data/readable.h"
#include "models/data/fasta.h"
#include "models/data/profile_genome.h"
#include "models/train/progress.h"

namespace lowpass {

using nlohmann::json;

namespace {

// An ArrayBatchSource that owns its dataset (ArrayBatchSource keeps a reference).
class OwnedArraySource : public BatchSource {
 public:
  OwnedArraySource(std::unique_ptr<ArrayDataset> ds, const ArraySamplerOptions& o, const std::string& role)
      : ds_(std::move(ds)), src_(*ds_, o, role) {}
  int64_t batches_per_epoch() const override { return src_.batches_per_epoch(); }
  void start_epoch(int64_t e, Rng& rng) override { src_.start_epoch(e, rng); }
  Batch next(Context& ctx) override { return src_.next(ctx); }
  SourceGeometry geometry() const override { return src_.geometry(); }
  std::string describe() const override { return src_.describe(); }
  const ArrayDataset& dataset() const { return *ds_; }
  double suggested_counts_weight() override {  // as ProfileGenomeDataset's, over the status-1 rows of the npz
    if (ds_->type != "profile" || ds_->n == 0) return -1;
    const int64_t per = static_cast<int64_t>(ds_->y.size()) / ds_->n;
    std::vector<double> totals;
    for (int64_t i = 0; i < ds_->n; ++i) {
      if (ds_->status[static_cast<size_t>(i)] != 1) continue;
      double s = 0;
      for (int64_t k = 0; k < per; ++k) s += ds_->y[static_cast<size_t>(i * per + k)];
      totals.push_back(s);
    }
    return counts_weight_from_totals(std::move(totals));
  }

 private:
  std::unique_ptr<ArrayDataset> ds_;
  ArrayBatchSource src_;
};

std::unique_ptr<BatchSource> array_source(const std::string& path, const TrainConfig& cfg, bool train, bool revcomp) {
  auto ds = std::make_unique<ArrayDataset>(read_array_dataset(path, cfg.model_type));
  ArraySamplerOptions o;
  o.revcomp = revcomp;
  if (train) {
    o.batch_size = cfg.train.batch_size;
    o.negative_ratio = cfg.train.negative_ratio;
    o.shuffle = cfg.train.shuffle;
  } else {
    o.batch_size = cfg.train.eval_batch_size;
    o.sequential = true;
    o.shuffle = false;
  }
  return std::make_unique<OwnedArraySource>(std::move(ds), o, train ? "train" : path);
}

CacheOptions cache_options(const GenomeDataSettings& g, DataUse use) {
  CacheOptions c;
  c.memory_budget = g.memory_budget_mb * (int64_t(1) << 20);
  c.workers = use == DataUse::Stats ? 0 : static_cast<int>(g.workers);
  c.prefetch = static_cast<int>(g.prefetch);
  return c;
}

// Optional chrom_sizes file: every chromosome it lists must be in the FASTA with the same length.
void check_chrom_sizes(const GenomeDataSettings& g, const std::string& src) {
  if (g.chrom_sizes.empty()) return;
  check_readable(g.chrom_sizes, src + ": data.genome.chrom_sizes");
  Fasta fa(g.fasta, g.cache_dir);
  std::ifstream f(g.chrom_sizes);
  LP_CHECK(f.good(), src, ": data.genome.chrom_sizes: cannot open ", g.chrom_sizes);
  std::string line;
  int64_t listed = 0;
  for (int64_t ln = 1; std::getline(f, line); ++ln) {
    if (line.empty() || line[0] == '#') continue;
    ++listed;
    std::istringstream is(line);
    std::string name;
    int64_t len = -1;
    LP_CHECK(static_cast<bool>(is >> name >> len) && len > 0, g.chrom_sizes, ":", ln,
             ": expected '<chrom> <length>', got \"", line, "\"");
    const int64_t have = fa.chrom_sizes().length(name);
    LP_CHECK(have >= 0, g.chrom_sizes, ":", ln, ": chromosome '", name, "' is not in ", g.fasta, "; ",
             fa.chrom_sizes().suggest(name));
    LP_CHECK(have == len, g.chrom_sizes, ":", ln, ": '", name, "' has length ", len, " but ", have, " in ", g.fasta);
  }
  LP_CHECK(listed > 0, g.chrom_sizes, ": no '<chrom> <length>' lines (empty file?)");
}

BinaryGenomeConfig binary_config(const TrainConfig& cfg, const std::vector<std::string>& chroms, bool train,
                                 DataUse use) {
  const GenomeDataSettings& g = cfg.data.genome;
  BinaryGenomeConfig b;
  b.genome = g.fasta;
  b.peaks = g.peaks;
  b.ambiguous = g.ambiguous;
  b.chroms = chroms;
  b.blacklist = g.blacklist;
  b.bin = g.bin, b.stride = g.stride, b.flank = g.flank;
  b.min_overlap = g.min_overlap;
  b.partial_ambiguous = g.partial_ambiguous;
  b.batch_size = train ? cfg.train.batch_size : cfg.train.eval_batch_size;
  b.negative_ratio = cfg.train.negative_ratio;
  b.revcomp = cfg.train.revcomp;
  b.shuffle = train ? cfg.train.shuffle : false;
  b.peak_retention = train ? g.peak_retention : 0;
  b.max_n_fraction = g.max_n_fraction;
  b.cache_dir = g.cache_dir;
  b.cache = cache_options(g, use);
  return b;
}

ProfileGenomeConfig profile_config(const TrainConfig& cfg, Split split, DataUse use) {
  const GenomeDataSettings& g = cfg.data.genome;
  ProfileGenomeConfig p;
  p.genome = g.fasta;
  p.peaks = g.peaks;
  p.signals = g.bigwigs;
  p.controls = g.controls;
  p.blacklist = g.blacklist;
  p.input_length = cfg.model.at("input_length").get<int64_t>();
  p.output_length = cfg.model.at("output_length").get<int64_t>();
  p.jitter = g.jitter;
  p.revcomp = cfg.train.revcomp;
  p.shuffle = cfg.train.shuffle;
  p.batch_size = split == Split::Train ? cfg.train.batch_size : cfg.train.eval_batch_size;
  p.negative_ratio = cfg.train.negative_ratio;
  p.negatives = g.negatives;
  p.exclude_peaks = g.exclude_peaks;
  p.max_n_fraction = g.max_n_fraction;
  p.peak_retention = g.peak_retention;
  p.gc_pool_factor = g.gc_pool_factor;
  p.gc_bins = g.gc_bins;
  p.seed = cfg.train.seed;
  p.cache_dir = g.cache_dir;
  p.cache = cache_options(g, use);
  Folds f;
  f.train = g.train_chroms, f.valid = g.valid_chroms, f.test = g.test_chroms;
  p = profile_config_for_split(p, split, f);
  if (split == Split::Valid) p.shuffle = false;
  return p;
}

// Dataset errors name data.* fields; prefix the config file so the user knows where they come from.
template <class F>
auto with_source(const std::string& src, const char* split, F&& make) {
  try {
    return make();
  } catch (const Error& e) {
    throw Error(src + ": data.genome (" + split + " split): " + e.what());
  }
}

std::unique_ptr<BatchSource> genome_source(const TrainConfig& cfg, Split split, DataUse use) {
  const GenomeDataSettings& g = cfg.data.genome;
  const std::vector<std::string>& chroms =
      split == Split::Train ? g.train_chroms : split == Split::Valid ? g.valid_chroms : g.test_chroms;
  if (chroms.empty()) return nullptr;
  return with_source(cfg.source, split_name(split), [&]() -> std::unique_ptr<BatchSource> {
    if (cfg.model_type == "binary")
      return std::make_unique<BinaryGenomeDataset>(binary_config(cfg, chroms, split == Split::Train, use));
    return std::make_unique<ProfileGenomeDataset>(profile_config(cfg, split, use));
  });
}

std::unique_ptr<BatchSource> sequence_source(const TrainConfig& cfg, const std::string& pos, const std::string& neg,
                                             bool train) {
  if (pos.empty()) return nullptr;
  FastaBinaryConfig f;
  f.positives = pos;
  f.negatives = neg;
  f.input_length = cfg.model.at("input_length").get<int64_t>();
  f.batch_size = train ? cfg.train.batch_size : cfg.train.eval_batch_size;
  f.negative_ratio = cfg.train.negative_ratio;
  f.sequential = !train;
  f.revcomp = cfg.train.revcomp;
  f.shuffle = train && cfg.train.shuffle;
  f.cache.workers = 1;
  return std::make_unique<FastaBinaryDataset>(f);
}

}  // namespace

SourceGeometry model_geometry(const TrainConfig& cfg) {
  SourceGeometry g;
  g.profile = cfg.model_type == "profile";
  g.input_length = cfg.model.at("input_length").get<int64_t>();
  g.tasks = cfg.model.at("num_tasks").get<int64_t>();
  if (g.profile) {
    g.strands = cfg.model.at("num_strands").get<int64_t>();
    g.output_length = cfg.model.at("output_length").get<int64_t>();
    const std::string c = cfg.model.value("controls", std::string("none"));
    g.control_tasks = control_tracks(c, g.tasks);
  }
  return g;
}

void check_source_geometry(const SourceGeometry& want, const SourceGeometry& got, const std::string& what) {
  LP_CHECK(want.profile == got.profile, what, ": gives ", got.profile ? "profile" : "binary", " data to a ",
           want.profile ? "profile" : "binary", " model");
  LP_CHECK(got.input_length == want.input_length, what, ": inputs have length ", got.input_length,
           " but the model's input_length is ", want.input_length);
  LP_CHECK(got.tasks == want.tasks, what, ": ", got.tasks, " tasks but the model has ", want.tasks);
  if (want.profile) {
    LP_CHECK(got.strands == want.strands, what, ": ", got.strands, " strands but the model's num_strands is ", want.strands);
    LP_CHECK(got.output_length == want.output_length, what, ": profiles have length ", got.output_length,
             " but the model's output_length is ", want.output_length);
    // Said here with the file, not by the model at the first batch ("a control track was given ...").
    const auto ctl = [](int64_t k) {
      return k == 0 ? std::string("no control") : "control tracks (N, " + std::to_string(k) + ", S, O)";
    };
    const std::string fix = want.control_tasks == 0 ? "set model.controls to use them, or drop the 'control' array"
                            : got.control_tasks == 0 ? "give the data its 'control' array, or set model.controls to \"none\""
                                                     : "the 'control' array must fit model.controls";
    LP_CHECK(got.control_tasks == want.control_tasks, what, ": gives ", ctl(got.control_tasks), " but the model takes ",
             ctl(want.control_tasks), " (model.controls); ", fix);
  }
}

DataSources make_datasets(const TrainConfig& cfg, DataUse use) {
  DataSources d;
  const SourceGeometry want = model_geometry(cfg);
  if (cfg.data.genome.enabled) {
    check_chrom_sizes(cfg.data.genome, cfg.source);
    d.train = genome_source(cfg, Split::Train, use);
    d.valid = genome_source(cfg, Split::Valid, use);
    d.test = genome_source(cfg, Split::Test, use);
    d.train_name = cfg.source + ": data.genome (train)";
    d.valid_name = cfg.source + ": data.genome (valid)";
    d.test_name = cfg.source + ": data.genome (test)";
  } else if (cfg.data.sequences.enabled) {
    const SequenceDataSettings& s = cfg.data.sequences;
    d.train = sequence_source(cfg, s.train_positives, s.train_negatives, true);
    d.valid = sequence_source(cfg, s.valid_positives, s.valid_negatives, false);
    d.test = sequence_source(cfg, s.test_positives, s.test_negatives, false);
    d.train_name = s.train_positives, d.valid_name = s.valid_positives, d.test_name = s.test_positives;
  } else {
    d.train = array_source(cfg.data.train, cfg, true, split_revcomp(cfg, Split::Train));
    if (!cfg.data.valid.empty()) d.valid = array_source(cfg.data.valid, cfg, false, split_revcomp(cfg, Split::Valid));
    if (!cfg.data.test.empty()) d.test = array_source(cfg.data.test, cfg, false, split_revcomp(cfg, Split::Test));
    d.train_name = cfg.data.train, d.valid_name = cfg.data.valid, d.test_name = cfg.data.test;
  }
  check_source_geometry(want, d.train->geometry(), d.train_name);
  if (d.valid) check_source_geometry(want, d.valid->geometry(), d.valid_name);
  if (d.test) check_source_geometry(want, d.test->geometry(), d.test_name);
  return d;
}

bool split_revcomp(const TrainConfig& cfg, Split split) {
  return cfg.train.revcomp && !(cfg.model_type == "profile" && split == Split::Test);
}

SplitSource open_split(const TrainConfig& cfg_in, const std::string& split, bool revcomp) {
  LP_CHECK(split == "train" || split == "valid" || split == "test", "export: the split must be train, valid or "
           "test, got '", split, "'");
  TrainConfig cfg = cfg_in;
  cfg.train.revcomp = revcomp;
  SplitSource s;
  s.sources = make_datasets(cfg, DataUse::Stats);
  s.source = split == "train" ? s.sources.train.get() : split == "valid" ? s.sources.valid.get() : s.sources.test.get();
  LP_CHECK(s.source != nullptr, cfg.source, ": there is no ", split, " split (",
           cfg.data.genome.enabled ? "data.genome.folds." + split + " lists no chromosomes"
                                   : "data." + std::string(cfg.data.sequences.enabled ? "sequences." : "") + split +
                                         " is not set", ")");
  s.name = cfg.source + " (" + split + ")";
  s.model_type = cfg.model_type;
  s.revcomp = split_revcomp(cfg, split == "train" ? Split::Train : split == "valid" ? Split::Valid : Split::Test);
  return s;
}

namespace {

// Calls fn(batch) on every batch (some may be empty) of one epoch of the split, drawn with Rng(seed) as the
// trainer draws it.
template <class Fn>
void for_each_split_batch(SplitSource& s, uint64_t seed, Fn fn) {
  Context ctx(1, 0);
  Rng rng(seed);
  s.source->start_epoch(0, rng);
  for (int64_t b = 0; b < s.source->batches_per_epoch(); ++b) {
    fn(s.source->next(ctx));
  }
}

}  // namespace

ArrayDataset export_split(const TrainConfig& cfg, const std::string& split, bool revcomp, uint64_t seed) {
  SplitSource s = open_split(cfg, split, revcomp);
  ArrayDataset ds;
  ds.type = s.model_type;
  ds.source = s.name;
  for_each_split_batch(s, seed, [&](const Batch& batch) {
    if (batch.size() == 0) return;
    auto append = [](std::vector<float>& to, Shape& shape, const Tensor& t) {
      const std::vector<float> v = t.to_vector<float>();
      to.insert(to.end(), v.begin(), v.end());
      if (shape.empty()) shape = t.shape(), shape[0] = 0;
      shape[0] += t.size(0);
    };
    Shape xs;
    append(ds.x, xs, batch.x);
    append(ds.y, ds.y_shape, batch.y);
    if (batch.control.defined()) append(ds.control, ds.control_shape, batch.control);
    ds.status.insert(ds.status.end(), batch.status.begin(), batch.status.end());
    ds.n += batch.size();
    ds.length = xs[2];
  });
  LP_CHECK(ds.n > 0, ds.source, ": the split has no examples");
  ds.validate();
  return ds;
}

ExportSummary write_split_npz(SplitSource& s, uint64_t seed, const std::string& out, bool progress) {
  ArrayDatasetWriter w(out, s.model_type, s.name);
  {
    Progress bar("export", s.source->batches_per_epoch(), "batch", progress);
    for_each_split_batch(s, seed, [&](const Batch& batch) {
      w.append(batch);
      bar.update(1, std::to_string(w.rows()) + " rows");
    });
    LP_CHECK(w.rows() > 0, s.name, ": the split has no examples");
    bar.finish(std::to_string(w.rows()) + " rows; writing " + out);
  }
  w.close();
  ExportSummary r;
  r.rows = w.rows();
  r.length = w.length();
  for (int v : w.status()) r.status_ones += v == 1;
  return r;
}

json data_stats(const TrainConfig& cfg) {
  json out;
  DataSources d = make_datasets(cfg, DataUse::Stats);
  const double ratio = cfg.train.negative_ratio;
  auto one = [&](BatchSource* s, const std::string& split) -> json {
    if (!s) return nullptr;
    json j = {{"describe", s->describe()}, {"batches_per_epoch", s->batches_per_epoch()}};
    // Negatives per epoch: the sampled splits draw about positives * negative_ratio (none when the data has none);
    // npz and FASTA evaluation splits score every row once; the profile genome test split has no negatives.
    int64_t pos = -1, neg = -1;  // rows of each class in the data (npz, FASTA); -1: drawn from the genome
    if (auto* b = dynamic_cast<BinaryGenomeDataset*>(s)) {
      j["stats"] = json::parse(b->stats().to_json());
      j["positives"] = b->positives().size();
    } else if (auto* p = dynamic_cast<ProfileGenomeDataset*>(s)) {
      j["stats"] = json::parse(p->stats().to_json());
      j["positives"] = p->positives().size();
    } else if (auto* f = dynamic_cast<FastaBinaryDataset*>(s)) {
      pos = 0;
      for (auto l : f->labels()) pos += l == 1;
      neg = f->size() - pos;
    } else if (auto* a = dynamic_cast<OwnedArraySource*>(s)) {
      pos = 0, neg = 0;  // the sampler's classes: binary any task 1 / all 0, profile status 1 / 0
      for (int64_t i = 0; i < a->dataset().n; ++i) {
        const int c = a->dataset().label_class(i);
        pos += c == 1, neg += c == 0;
      }
    }
    if (pos >= 0) j["positives"] = pos, j["negatives"] = neg;
    const int64_t positives = j.contains("positives") ? j["positives"].get<int64_t>() : 0;
    int64_t per_epoch = std::llround(static_cast<double>(positives) * ratio);
    if (split != "train" && pos >= 0) per_epoch = neg;                                  // every row, once
    else if (neg == 0) per_epoch = 0;                                                   // nothing to draw
    else if (split == "test" && cfg.model_type == "profile" && pos < 0) per_epoch = 0;  // summit windows only
    j["negatives_per_epoch"] = per_epoch;
    return j;
  };
  out["train"] = one(d.train.get(), "train");
  out["valid"] = one(d.valid.get(), "valid");
  out["test"] = one(d.test.get(), "test");
  // profile genome windows or npz rows (what train.counts_loss_weight "auto" uses); -1: no positive to take it from
  if (cfg.model_type == "profile")
    if (const double w = d.train->suggested_counts_weight(); w >= 0) out["suggested_counts_loss_weight"] = w;
  return out;
}

}  // namespace lowpass
