// Profile genome dataset (REFERENCE §3.2): summit-centred windows with jitter, RC doubling, random or
// GC-matched negatives, per-task stranded bigWig profiles and matched/shared controls.
// x = one-hot [c - I/2, c - I/2 + I), y[t][s] = track_t strand s over [c - O/2, c - O/2 + O), c = summit + jitter.
// Test: build/tests/lowpass_tests -ts=genome
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/data/batch_source.h"
#include "models/data/bed.h"
#include "models/data/folds.h"
#include "models/data/window_cache.h"

namespace lowpass {

struct ProfileGenomeConfig {
  std::string genome;                               // FASTA (plain or bgzip)
  std::vector<std::string> peaks;                   // BED/narrowPeak files, pooled (all tasks' peaks)
  std::vector<std::vector<std::string>> signals;    // per task: S bigWigs (e.g. {plus, minus} or {unstranded})
  std::vector<std::vector<std::string>> controls;   // empty; T lists (matched) or 1 list (shared), S each
  std::vector<std::string> chroms;                  // this split's chromosomes; empty = all of the FASTA
  std::string blacklist;                            // optional BED: windows touching it are never sampled
  int64_t input_length = 1346, output_length = 1000;
  int64_t jitter = 128;                             // uniform integer shift in [-jitter, jitter] per positive
  bool revcomp = true;                              // append reverse complements (flip position + strand)
  bool shuffle = true;                              // reshuffle positives each epoch
  int64_t batch_size = 64;                          // positives + negatives, before RC doubling
  double negative_ratio = 1.0;                      // negatives per positive (0: positives only)
  std::string negatives = "uniform";                // "uniform" (reference) or "gc_matched" (peers' default)
  bool exclude_peaks = false;                       // negatives' input windows do not touch any peak
  double max_n_fraction = 0.1;                      // windows with more non-ACGT are dropped / not drawn
  double peak_retention = 0;                        // 0: all; else top fraction of each BED by column 7
  int64_t gc_pool_factor = 10;                      // GC-matched: candidate windows per positive
  int64_t gc_bins = 50;                             // GC-matched: histogram bins over [0, 1]
  uint64_t seed = 0;                                // GC-matched candidate pool (fixed per dataset)
  std::string cache_dir;                            // for the .fai when the FASTA's folder is read-only
  CacheOptions cache;
};

// The split presets of the reference: valid = train sampling without peak retention; test =
// summit-centred positives only, no jitter, no reverse complement, no shuffling.
ProfileGenomeConfig profile_config_for_split(ProfileGenomeConfig cfg, Split split, const Folds& folds);

struct ProfileStats {
  std::vector<int64_t> peaks_read;          // per BED
  int64_t not_in_split = 0;                 // peaks on chromosomes of other splits
  int64_t dropped_edge = 0;                 // window (with jitter) runs off the chromosome
  int64_t dropped_n = 0;                    // summit-centred input window over max_n_fraction
  int64_t dropped_blacklist = 0;            // summit-centred input window touches the blacklist
  int64_t dropped_retention = 0;            // below the peak_retention cut
  int64_t kept = 0;
  int64_t gc_pool = 0;                      // GC-matched candidate windows
  std::string to_json() const;
};

struct ProfileWindow {
  int64_t chrom = 0, centre = 0;  // centre = summit for positives
  int status = 0;                 // 1 + BED index for peaks, 0 for negatives (Batch.status gets 1/0)
  double gc = 0;                  // GC fraction of the input window (ACGT bases)
};

class ProfileGenomeDataset : public BatchSource {
 public:
  explicit ProfileGenomeDataset(const ProfileGenomeConfig& cfg);
  ~ProfileGenomeDataset() override;
  int64_t batches_per_epoch() const override { return n_batches_; }
  void start_epoch(int64_t epoch, Rng& rng) override;
  Batch next(Context& ctx) override;
  SourceGeometry geometry() const override;
  std::string describe() const override;

  const ProfileStats& stats() const { return stats_; }
  const std::vector<ProfileWindow>& positives() const { return pos_; }
  const std::vector<ProfileWindow>& gc_pool() const { return pool_; }
  // Windows of batch i in the current epoch (positives then negatives, before RC), with jitter applied.
  std::vector<ProfileWindow> batch_windows(int64_t i) const;
  HostBatch make_batch(int64_t i) const;
  // Median over positives of the total count (all tasks and strands) in the output window / 10:
  // ChromBPNet's suggested counts-loss weight. Reads every positive's profile.
  double suggested_counts_weight() override;
  GenomeWindows& windows() { return *win_; }
  double prefetch_wait_seconds() const { return pf_.wait_seconds(); }

 private:
  bool negative_ok(int64_t c, int64_t centre, std::vector<uint8_t>& codes) const;
  ProfileGenomeConfig cfg_;
  int64_t T_ = 0, S_ = 0, Tc_ = 0, I_ = 0, O_ = 0, pos_per_batch_ = 0, n_batches_ = 0;
  std::shared_ptr<Fasta> fasta_;
  std::unique_ptr<GenomeWindows> win_;
  IntervalSet all_peaks_, blacklist_;
  std::vector<ProfileWindow> pos_, pool_;
  std::vector<std::vector<int64_t>> pool_by_gc_;  // pool indices per GC bin
  std::unique_ptr<PositionSampler> sampler_;
  ProfileStats stats_;
  // current epoch
  std::vector<int64_t> order_, jitter_;
  std::vector<ProfileWindow> gc_negs_;  // GC-matched: the epoch's negatives in batch order
  uint64_t epoch_seed_ = 0;
  mutable Prefetcher pf_;
};

}  // namespace lowpass
