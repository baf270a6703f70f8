// Binary genome datasets (REFERENCE §2.2): 200-bp bins at stride 50 with 400-bp flanks, multi-task
// labels from peaks, balanced batches; and binary datasets from FASTA files of positive/negative sequences.
// label_t(bin) = 1 if |bin ∩ peaks_t| >= min_overlap * bin; -1 if it touches an ambiguous peak of t; else 0.
// Test: build/tests/lowpass_tests -ts=genome
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/data/balanced_sampler.h"
#include "models/data/batch_source.h"
#include "models/data/bed.h"
#include "models/data/window_cache.h"

namespace lowpass {

struct BinaryGenomeConfig {
  std::string genome;                  // FASTA (plain or bgzip)
  std::vector<std::string> peaks;      // one BED/narrowPeak per task (T = peaks.size())
  std::vector<std::string> ambiguous;  // empty, or one per task ("" for none); peaks overlapping the
                                       // task's own peaks are removed first, as in the reference
  std::vector<std::string> chroms;     // chromosomes of this split; empty = all of the FASTA
  std::string blacklist;               // optional BED; bins whose input window touches it are not sampled
  int64_t bin = 200, stride = 50, flank = 400;  // input length = bin + 2 * flank
  double min_overlap = 0.5;            // fraction of the bin a task's peaks must cover for label 1
  bool partial_ambiguous = false;      // 0 < overlap < min_overlap gives -1 (seqdataloader allow_ambiguous)
  int64_t batch_size = 128;            // positives + negatives per batch, before reverse-complement doubling
  double negative_ratio = 1.0;         // negatives per positive
  bool revcomp = true;                 // append the reverse complement of every row
  bool shuffle = true;                 // reshuffle positives each epoch
  double peak_retention = 0;           // 0: all; else keep positives from the top fraction of each task's peaks
  double max_n_fraction = 0.1;         // windows with a larger fraction of non-ACGT bases are not sampled
  std::string cache_dir;               // for the .fai when the FASTA's folder is read-only
  CacheOptions cache;
};

// What the dataset keeps and drops, for `lowpass data-stats` and logs.
struct BinaryStats {
  std::vector<int64_t> peaks_read, peaks_in_split, peaks_retained, positive_bins_per_task;  // per task
  int64_t positive_bins = 0;      // bins with label 1 for some task that are sampled as positives
  int64_t ambiguous_bins = 0;     // bin-level -1 (never sampled)
  int64_t unretained_bins = 0;    // positives dropped by peak_retention (never sampled)
  int64_t dropped_edge = 0;       // positive bins whose input window runs off the chromosome
  int64_t dropped_n = 0;          // positive bins over max_n_fraction
  int64_t dropped_blacklist = 0;  // positive bins touching the blacklist
  int64_t candidate_bins = 0;     // all bins of the split whose window fits (negatives are drawn from these)
  std::string to_json() const;
};

// A labelled bin: chromosome index, bin start, per-task labels.
struct LabelledBin {
  int64_t chrom = 0, start = 0;
  std::vector<int8_t> labels;  // (T) in {1, 0, -1}
};

class BinaryGenomeDataset : public BatchSource {
 public:
  explicit BinaryGenomeDataset(const BinaryGenomeConfig& cfg);
  ~BinaryGenomeDataset() override;
  int64_t batches_per_epoch() const override { return n_batches_; }
  void start_epoch(int64_t epoch, Rng& rng) override;
  Batch next(Context& ctx) override;
  SourceGeometry geometry() const override;
  std::string describe() const override;

  const BinaryStats& stats() const { return stats_; }
  const std::vector<LabelledBin>& positives() const { return pos_; }
  // Per-task labels of any bin start (multiple of stride): the same rule used for the positives.
  std::vector<int8_t> labels_of(int64_t chrom, int64_t bin_start) const;
  bool sampleable_negative(int64_t chrom, int64_t bin_start) const;  // label 0 everywhere, no blacklist
  HostBatch make_batch(int64_t i) const;  // batch i of the current epoch (thread-safe)
  GenomeWindows& windows() { return *win_; }
  double prefetch_wait_seconds() const { return pf_.wait_seconds(); }

 private:
  BinaryGenomeConfig cfg_;
  int64_t T_ = 0, L_ = 0, pos_per_batch_ = 0, n_batches_ = 0;
  std::shared_ptr<Fasta> fasta_;
  std::unique_ptr<GenomeWindows> win_;
  std::vector<IntervalSet> peaks_, ambig_;
  IntervalSet blacklist_;
  std::unordered_map<int64_t, int8_t> bin_level_;  // bins with any non-zero label: 1 or -1 (key chrom<<40 | start)
  std::vector<LabelledBin> pos_;
  std::unique_ptr<PositionSampler> sampler_;
  BinaryStats stats_;
  // current epoch
  std::vector<int64_t> order_;
  uint64_t epoch_seed_ = 0;
  mutable Prefetcher pf_;
};

// Binary dataset from FASTA files of positive and negative sequences (gkm-SVM / DeepBind style).
// Sequences of other lengths are centred: longer ones cropped, shorter ones padded with N (zero
// columns). One task; status = label. Training batches follow negative_ratio as the npz path does
// (BalancedSampler: every positive once per epoch); sequential (evaluation): every record once, in file order,
// positives first.
struct FastaBinaryConfig {
  std::string positives, negatives;
  int64_t input_length = 0;  // 0: the longest sequence in the files
  int64_t batch_size = 128;
  double negative_ratio = 1.0;  // negatives per positive in a training batch (0 = positives only)
  bool sequential = false;
  bool revcomp = true;
  bool shuffle = true;
  CacheOptions cache;  // workers/prefetch used; sequences are always in memory
};

class FastaBinaryDataset : public BatchSource {
 public:
  explicit FastaBinaryDataset(const FastaBinaryConfig& cfg);
  int64_t batches_per_epoch() const override { return sampler_.batches(); }
  void start_epoch(int64_t epoch, Rng& rng) override;
  Batch next(Context& ctx) override;
  SourceGeometry geometry() const override;
  std::string describe() const override;
  int64_t size() const { return static_cast<int64_t>(codes_.size()); }
  const std::vector<int8_t>& labels() const { return labels_; }
  HostBatch make_batch(int64_t i) const;

 private:
  FastaBinaryConfig cfg_;
  int64_t L_ = 0, n_pos_ = 0;
  int64_t padded_ = 0, cropped_ = 0, unknown_bases_ = 0, no_bases_ = 0;  // what centring did (describe())
  std::vector<std::vector<uint8_t>> codes_;  // each exactly L_ long
  std::vector<int8_t> labels_;
  BalancedSampler sampler_;
  mutable Prefetcher pf_;
};

// Centre `seq` in a window of length L: crop equally from both ends or pad with code 4 (N).
std::vector<uint8_t> centre_codes(const std::string& seq, int64_t L);

}  // namespace lowpass
