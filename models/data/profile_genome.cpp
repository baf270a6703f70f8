// Profile genome dataset: positives at peak summits (+ jitter), uniform or GC-matched negatives, profiles.
// x = one-hot [c - I/2, c - I/2 + I); y[t][s][o] = track_t,s(c - O/2 + o); RC rows flip position and strand.
// Test: build/tests/lowpass_tests -ts=genome
#include "models/data/profile_genome.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "engine/error.h"
#include "models/data/peak_retention.h"

namespace lowpass {

std::string ProfileStats::to_json() const {
  std::ostringstream os;
  os << "{\"peaks_read\": [";
  for (size_t i = 0; i < peaks_read.size(); ++i) os << (i ? ", " : "") << peaks_read[i];
  os << "], \"not_in_split\": " << not_in_split << ", \"dropped_edge\": " << dropped_edge
     << ", \"dropped_n\": " << dropped_n << ", \"dropped_blacklist\": " << dropped_blacklist
     << ", \"dropped_retention\": " << dropped_retention << ", \"kept\": " << kept << ", \"gc_pool\": " << gc_pool
     << "}";
  return os.str();
}

ProfileGenomeConfig profile_config_for_split(ProfileGenomeConfig cfg, Split split, const Folds& folds) {
  cfg.chroms = folds.of(split);
  LP_CHECK(!cfg.chroms.empty(), "data.folds: the \"", split_name(split), "\" split lists no chromosomes");
  if (split != Split::Train) cfg.peak_retention = 0;
  if (split == Split::Test) {
    cfg.jitter = 0;
    cfg.revcomp = false;
    cfg.negative_ratio = 0;
    cfg.shuffle = false;
  }
  return cfg;
}

ProfileGenomeDataset::ProfileGenomeDataset(const ProfileGenomeConfig& cfg)
    : cfg_(cfg), pf_(cfg.cache.workers, cfg.cache.prefetch) {
  T_ = static_cast<int64_t>(cfg.signals.size());
  LP_CHECK(T_ >= 1, "data.signals: at least one task (a list of 1 or 2 bigWig files) is needed");
  S_ = static_cast<int64_t>(cfg.signals[0].size());
  for (int64_t t = 0; t < T_; ++t)
    LP_CHECK(static_cast<int64_t>(cfg.signals[t].size()) == S_ && S_ >= 1, "data.signals[", t, "]: ",
             cfg.signals[t].size(), " bigWig files, expected ", S_, " (the same strands for every task)");
  Tc_ = static_cast<int64_t>(cfg.controls.size());
  LP_CHECK(Tc_ == 0 || Tc_ == 1 || Tc_ == T_, "data.controls: ", Tc_, " control tracks for ", T_,
           " tasks (expected none, 1 shared, or one per task)");
  for (int64_t t = 0; t < Tc_; ++t)
    LP_CHECK(static_cast<int64_t>(cfg.controls[t].size()) == S_, "data.controls[", t, "]: ", cfg.controls[t].size(),
             " bigWig files, expected ", S_, " (as many strands as the signals)");
  I_ = cfg.input_length;
  O_ = cfg.output_length;
  LP_CHECK(O_ >= 1 && I_ >= O_ && (I_ - O_) % 2 == 0, "data.input_length/output_length: expected input >= output >= 1 "
           "with an even difference (shared centre), got ", I_, "/", O_);
  LP_CHECK(cfg.jitter >= 0, "data.jitter: expected >= 0, got ", cfg.jitter);
  LP_CHECK(cfg.negative_ratio >= 0, "data.negative_ratio: expected >= 0, got ", cfg.negative_ratio);
  LP_CHECK(cfg.negatives == "uniform" || cfg.negatives == "gc_matched", "data.negatives: '", cfg.negatives,
           "' (expected \"uniform\" or \"gc_matched\")");
  LP_CHECK(cfg.max_n_fraction >= 0 && cfg.max_n_fraction <= 1, "data.max_n_fraction: expected [0, 1], got ",
           cfg.max_n_fraction);
  LP_CHECK(cfg.peak_retention >= 0 && cfg.peak_retention <= 1, "data.peak_retention: expected [0, 1], got ",
           cfg.peak_retention);
  LP_CHECK(cfg.gc_bins >= 1 && cfg.gc_pool_factor >= 1, "data.gc_bins/gc_pool_factor: expected >= 1");
  LP_CHECK(!cfg.peaks.empty(), "data.peaks: at least one peak file is needed");
  LP_CHECK(cfg.batch_size >= 1, "data.batch_size: expected >= 1, got ", cfg.batch_size);
  pos_per_batch_ = std::max<int64_t>(1, std::llround(cfg.batch_size / (1.0 + cfg.negative_ratio)));

  fasta_ = std::make_shared<Fasta>(cfg.genome, cfg.cache_dir);
  const ChromSizes& cs = fasta_->chrom_sizes();
  std::vector<int64_t> chroms = resolve_chroms(cs, cfg.chroms, "data.chroms");
  std::vector<std::string> names;
  std::vector<bool> in_split(cs.size(), false);
  for (int64_t c : chroms) in_split[c] = true, names.push_back(cs.names[c]);
  std::vector<Track> tracks;
  for (auto& files : cfg.signals) tracks.emplace_back(files);
  for (auto& files : cfg.controls) tracks.emplace_back(files);
  for (auto& t : tracks) t.check_against(cs, names);
  win_ = std::make_unique<GenomeWindows>(fasta_, std::move(tracks), names, cfg.cache);

  BedOptions bo;
  bo.sizes = &cs;
  bo.sizes_source = "FASTA '" + cfg.genome + "'";
  blacklist_ = IntervalSet(cs.size());
  if (!cfg.blacklist.empty()) {
    BedOptions blo = bo;
    blo.allow_empty = true;
    blacklist_.add_peaks(read_bed(cfg.blacklist, blo));
  }
  blacklist_.finalize();
  all_peaks_ = IntervalSet(cs.size());
  std::vector<uint8_t> codes(I_);
  const int64_t J = cfg.jitter, h = I_ / 2;
  for (size_t b = 0; b < cfg.peaks.size(); ++b) {
    auto ps = read_bed(cfg.peaks[b], bo);
    stats_.peaks_read.push_back(static_cast<int64_t>(ps.size()));
    all_peaks_.add_peaks(ps);
    std::vector<Peak> split_peaks;
    for (auto& p : ps) {
      if (in_split[p.chrom_index]) split_peaks.push_back(p);
      else ++stats_.not_in_split;
    }
    if (cfg.peak_retention > 0) {
      std::vector<Peak> kept = top_peaks_by_signal(split_peaks, cfg.peak_retention, cfg.peaks[b]);
      stats_.dropped_retention += static_cast<int64_t>(split_peaks.size() - kept.size());
      split_peaks.swap(kept);
    }
    for (auto& p : split_peaks) {
      int64_t c = p.chrom_index, L = cs.lengths[c], w0 = p.summit - h;
      if (w0 - J < 0 || w0 + J + I_ > L) {
        ++stats_.dropped_edge;
        continue;
      }
      if (blacklist_.any_overlap(c, w0, w0 + I_)) {
        ++stats_.dropped_blacklist;
        continue;
      }
      win_->codes(c, w0, w0 + I_, codes.data());
      int64_t nn = count_non_acgt(codes.data(), I_);
      if (static_cast<double>(nn) > cfg.max_n_fraction * static_cast<double>(I_)) {
        ++stats_.dropped_n;
        continue;
      }
      double gc = nn == I_ ? 0.0 : static_cast<double>(count_gc(codes.data(), I_)) / static_cast<double>(I_ - nn);
      pos_.push_back({c, p.summit, static_cast<int>(b) + 1, gc});
    }
  }
  all_peaks_.finalize();
  stats_.kept = static_cast<int64_t>(pos_.size());
  LP_CHECK(!pos_.empty(), "profile dataset: no peaks left in the chromosomes of this split after filtering (",
           stats_.to_json(), "); check data.peaks, data.chroms, data.jitter and the window lengths");
  sampler_ = std::make_unique<PositionSampler>(cs, chroms, h, I_ - h, 1);
  if (cfg.negative_ratio > 0) {
    LP_CHECK(sampler_->total() > 0, "profile dataset: no chromosome of this split is longer than the input window (",
             I_, " bp); negatives cannot be drawn");
    if (cfg.negatives == "gc_matched") {
      Rng rng(cfg.seed);
      int64_t target = cfg.gc_pool_factor * static_cast<int64_t>(pos_.size());
      pool_by_gc_.assign(cfg.gc_bins, {});
      for (int64_t tries = 0; static_cast<int64_t>(pool_.size()) < target && tries < 50 * target; ++tries) {
        auto [c, centre] = sampler_->draw(rng);
        if (!negative_ok(c, centre, codes)) continue;
        int64_t nn = count_non_acgt(codes.data(), I_);
        double gc = nn == I_ ? 0.0 : static_cast<double>(count_gc(codes.data(), I_)) / static_cast<double>(I_ - nn);
        int64_t bin = std::min<int64_t>(cfg.gc_bins - 1, static_cast<int64_t>(gc * cfg.gc_bins));
        pool_by_gc_[bin].push_back(static_cast<int64_t>(pool_.size()));
        pool_.push_back({c, centre, 0, gc});
      }
      stats_.gc_pool = static_cast<int64_t>(pool_.size());
      LP_CHECK(!pool_.empty(), "profile dataset: no GC-matched negative candidates could be drawn (every window "
               "touches a peak or the blacklist, or has too many N)");
    }
  }
  n_batches_ = (static_cast<int64_t>(pos_.size()) + pos_per_batch_ - 1) / pos_per_batch_;
}

ProfileGenomeDataset::~ProfileGenomeDataset() = default;

bool ProfileGenomeDataset::negative_ok(int64_t c, int64_t centre, std::vector<uint8_t>& codes) const {
  int64_t w0 = centre - I_ / 2, w1 = w0 + I_;
  if (blacklist_.any_overlap(c, w0, w1)) return false;
  if (cfg_.exclude_peaks && all_peaks_.any_overlap(c, w0, w1)) return false;
  win_->codes(c, w0, w1, codes.data());
  return static_cast<double>(count_non_acgt(codes.data(), I_)) <= cfg_.max_n_fraction * static_cast<double>(I_);
}

void ProfileGenomeDataset::start_epoch(int64_t epoch, Rng& rng) {
  int64_t P = static_cast<int64_t>(pos_.size());
  order_.resize(P);
  std::iota(order_.begin(), order_.end(), 0);
  if (cfg_.shuffle) std::shuffle(order_.begin(), order_.end(), rng.engine());
  jitter_.assign(P, 0);
  if (cfg_.jitter > 0)
    for (auto& j : jitter_) j = rng.randint(-cfg_.jitter, cfg_.jitter + 1);
  epoch_seed_ = rng.next_u64();
  gc_negs_.clear();
  if (cfg_.negative_ratio > 0 && cfg_.negatives == "gc_matched") {
    // Each bin's candidates in a fresh random order, used without replacement (wrapping if short).
    std::vector<std::vector<int64_t>> bins = pool_by_gc_;
    for (auto& b : bins) std::shuffle(b.begin(), b.end(), rng.engine());
    std::vector<size_t> cursor(bins.size(), 0);
    for (int64_t i = 0; i < n_batches_; ++i) {
      int64_t p0 = i * pos_per_batch_, p1 = std::min(p0 + pos_per_batch_, P), np = p1 - p0;
      int64_t nn = np == pos_per_batch_ ? cfg_.batch_size - pos_per_batch_
                                        : std::llround(static_cast<double>(np) * cfg_.negative_ratio);
      for (int64_t k = 0; k < nn; ++k) {
        const ProfileWindow& p = pos_[order_[p0 + k % np]];
        int64_t want = std::min<int64_t>(cfg_.gc_bins - 1, static_cast<int64_t>(p.gc * cfg_.gc_bins));
        int64_t best = -1;
        for (int64_t d = 0; d < cfg_.gc_bins && best < 0; ++d)  // nearest non-empty GC bin
          for (int64_t cand : {want - d, want + d})
            if (cand >= 0 && cand < cfg_.gc_bins && !bins[cand].empty()) {
              best = cand;
              break;
            }
        auto& b = bins[best];
        gc_negs_.push_back(pool_[b[cursor[best]++ % b.size()]]);
      }
    }
  }
  pf_.start(n_batches_, [this](int64_t i) { return make_batch(i); });
}

std::vector<ProfileWindow> ProfileGenomeDataset::batch_windows(int64_t i) const {
  LP_ASSERT(i >= 0 && i < n_batches_ && !order_.empty(), "batch ", i, " (start_epoch first)");
  int64_t P = static_cast<int64_t>(pos_.size());
  int64_t p0 = i * pos_per_batch_, p1 = std::min(p0 + pos_per_batch_, P), np = p1 - p0;
  int64_t nn_full = cfg_.batch_size - pos_per_batch_;
  int64_t nn = np == pos_per_batch_ ? nn_full : std::llround(static_cast<double>(np) * cfg_.negative_ratio);
  if (cfg_.negative_ratio == 0) nn = 0;
  std::vector<ProfileWindow> w;
  for (int64_t k = p0; k < p1; ++k) {
    ProfileWindow p = pos_[order_[k]];
    p.centre += jitter_[order_[k]];
    w.push_back(p);
  }
  if (nn == 0) return w;
  if (cfg_.negatives == "gc_matched") {
    for (int64_t k = 0; k < nn; ++k) w.push_back(gc_negs_[i * nn_full + k]);
    return w;
  }
  Rng rng(mix_seed(epoch_seed_, static_cast<uint64_t>(i)));
  std::vector<uint8_t> codes(I_);
  int64_t tries = 0;
  for (int64_t k = 0; k < nn;) {
    LP_CHECK(++tries < 10000 * (nn + 1), "profile dataset: could not draw ", nn, " negative windows (almost every "
             "window touches a peak or the blacklist, or has too many N)");
    auto [c, centre] = sampler_->draw(rng);
    if (!negative_ok(c, centre, codes)) continue;
    w.push_back({c, centre, 0, 0.0});
    ++k;
  }
  return w;
}

HostBatch ProfileGenomeDataset::make_batch(int64_t i) const {
  auto w = batch_windows(i);
  int64_t B = static_cast<int64_t>(w.size()), R = cfg_.revcomp ? 2 : 1;
  HostBatch hb;
  hb.x.assign(R * B * 4 * I_, 0.0f);
  hb.x_shape = {R * B, 4, I_};
  hb.y.assign(R * B * T_ * S_ * O_, 0.0f);
  hb.y_shape = {R * B, T_, S_, O_};
  if (Tc_ > 0) {
    hb.control.assign(R * B * Tc_ * S_ * O_, 0.0f);
    hb.control_shape = {R * B, Tc_, S_, O_};
  }
  hb.status.assign(R * B, 0);
  std::vector<uint8_t> codes(I_);
  for (int64_t r = 0; r < B; ++r) {
    int64_t c = w[r].chrom, x0 = w[r].centre - I_ / 2, y0 = w[r].centre - O_ / 2;
    win_->codes(c, x0, x0 + I_, codes.data());
    for (int64_t rc = 0; rc < R; ++rc) {
      int64_t row = rc * B + r;
      one_hot_codes(codes.data(), I_, hb.x.data() + row * 4 * I_, rc == 1);
      for (int64_t t = 0; t < T_; ++t)
        win_->track(t, c, y0, y0 + O_, hb.y.data() + ((row * T_ + t) * S_) * O_, rc == 1);
      for (int64_t t = 0; t < Tc_; ++t)
        win_->track(T_ + t, c, y0, y0 + O_, hb.control.data() + ((row * Tc_ + t) * S_) * O_, rc == 1);
      hb.status[row] = w[r].status > 0 ? 1 : 0;
    }
  }
  return hb;
}

Batch ProfileGenomeDataset::next(Context& ctx) { return pf_.next().to_batch(ctx); }

SourceGeometry ProfileGenomeDataset::geometry() const {
  SourceGeometry g;
  g.profile = true;
  g.input_length = I_;
  g.tasks = T_;
  g.strands = S_;
  g.output_length = O_;
  g.control_tasks = Tc_;
  return g;
}

double ProfileGenomeDataset::suggested_counts_weight() {
  std::vector<double> totals;
  std::vector<float> buf(S_ * O_);
  for (auto& p : pos_) {
    double s = 0;
    for (int64_t t = 0; t < T_; ++t) {
      win_->track(t, p.chrom, p.centre - O_ / 2, p.centre - O_ / 2 + O_, buf.data());
      for (float v : buf) s += v;
    }
    totals.push_back(s);
  }
  return counts_weight_from_totals(std::move(totals));
}

std::string ProfileGenomeDataset::describe() const {
  std::ostringstream os;
  os << "profile genome: " << pos_.size() << " peaks, " << T_ << " task(s) x " << S_ << " strand(s)"
     << (Tc_ ? (Tc_ == 1 ? ", shared control" : ", matched controls") : "") << ", " << n_batches_ << " batches of "
     << (n_batches_ > 1 ? "up to " : "") << pos_per_batch_ << " peaks + "
     << (cfg_.negative_ratio > 0 ? cfg_.batch_size - pos_per_batch_ : 0) << " " << cfg_.negatives << " negatives"
     << (cfg_.revcomp ? " x2 reverse complement" : "") << ", jitter +-" << cfg_.jitter << ", input " << I_
     << " / output " << O_ << " bp, " << (win_->preloaded() ? "preloaded" : "cached") << " windows";
  // Peaks of the split that were dropped, said where it is read (a large share usually means a window longer than
  // the chromosomes allow, or a wrong FASTA): the counts are in data-stats too.
  const int64_t in_split = stats_.kept + stats_.dropped_edge + stats_.dropped_n + stats_.dropped_blacklist;
  if (stats_.dropped_edge + stats_.dropped_n + stats_.dropped_blacklist > 0)
    os << "; of the split's " << in_split << " peaks, dropped: " << stats_.dropped_edge
       << " at chromosome ends (input window " << I_ << " bp + jitter " << cfg_.jitter << " each side), "
       << stats_.dropped_n << " for N content, " << stats_.dropped_blacklist << " on the blacklist";
  return os.str();
}

}  // namespace lowpass
