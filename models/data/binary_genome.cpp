// Binary genome dataset (bins, multi-task labels, balanced batches) and the FASTA-sequences dataset.
// label_t(bin) = 1 if |bin ∩ peaks_t| >= min_overlap * bin; -1 if it touches ambiguous_t; else 0.
// Test: build/tests/lowpass_tests -ts=genome
#include "models/data/binary_genome.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "engine/error.h"
#include "models/data/peak_retention.h"

namespace lowpass {

namespace {
int64_t bin_key(int64_t c, int64_t s) { return (c << 40) | s; }
}  // namespace

std::string BinaryStats::to_json() const {
  std::ostringstream os;
  auto arr = [&](const std::vector<int64_t>& v) {
    os << "[";
    for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    os << "]";
  };
  os << "{\"peaks_read\": ";
  arr(peaks_read);
  os << ", \"peaks_in_split\": ";
  arr(peaks_in_split);
  os << ", \"peaks_retained\": ";
  arr(peaks_retained);
  os << ", \"positive_bins_per_task\": ";
  arr(positive_bins_per_task);
  os << ", \"positive_bins\": " << positive_bins << ", \"ambiguous_bins\": " << ambiguous_bins
     << ", \"unretained_bins\": " << unretained_bins << ", \"dropped_edge\": " << dropped_edge
     << ", \"dropped_n\": " << dropped_n << ", \"dropped_blacklist\": " << dropped_blacklist
     << ", \"candidate_bins\": " << candidate_bins << "}";
  return os.str();
}

BinaryGenomeDataset::BinaryGenomeDataset(const BinaryGenomeConfig& cfg)
    : cfg_(cfg), pf_(cfg.cache.workers, cfg.cache.prefetch) {
  T_ = static_cast<int64_t>(cfg.peaks.size());
  LP_CHECK(T_ >= 1, "data.peaks: at least one peak file is needed (one per task)");
  LP_CHECK(cfg.ambiguous.empty() || static_cast<int64_t>(cfg.ambiguous.size()) == T_, "data.ambiguous: ",
           cfg.ambiguous.size(), " files for ", T_, " tasks (give one per task, \"\" for none)");
  LP_CHECK(cfg.bin > 0 && cfg.stride > 0 && cfg.flank >= 0, "data.bin/stride/flank: expected bin > 0, stride > 0, "
           "flank >= 0, got ", cfg.bin, "/", cfg.stride, "/", cfg.flank);
  LP_CHECK(cfg.min_overlap > 0 && cfg.min_overlap <= 1, "data.min_overlap: expected (0, 1], got ", cfg.min_overlap);
  LP_CHECK(cfg.negative_ratio >= 0, "data.negative_ratio: expected >= 0, got ", cfg.negative_ratio);
  LP_CHECK(cfg.peak_retention >= 0 && cfg.peak_retention <= 1, "data.peak_retention: expected [0, 1], got ",
           cfg.peak_retention);
  LP_CHECK(cfg.max_n_fraction >= 0 && cfg.max_n_fraction <= 1, "data.max_n_fraction: expected [0, 1], got ",
           cfg.max_n_fraction);
  L_ = cfg.bin + 2 * cfg.flank;
  pos_per_batch_ = std::max<int64_t>(1, std::llround(cfg.batch_size / (1.0 + cfg.negative_ratio)));
  LP_CHECK(cfg.batch_size >= 1 && pos_per_batch_ <= cfg.batch_size, "data.batch_size: expected >= 1, got ",
           cfg.batch_size);

  fasta_ = std::make_shared<Fasta>(cfg.genome, cfg.cache_dir);
  const ChromSizes& cs = fasta_->chrom_sizes();
  std::vector<int64_t> chroms = resolve_chroms(cs, cfg.chroms, "data.chroms");
  std::vector<std::string> chrom_names;
  std::vector<bool> in_split(cs.size(), false);
  for (int64_t c : chroms) in_split[c] = true, chrom_names.push_back(cs.names[c]);
  win_ = std::make_unique<GenomeWindows>(fasta_, std::vector<Track>{}, chrom_names, cfg.cache);

  BedOptions bo;
  bo.sizes = &cs;
  bo.sizes_source = "FASTA '" + cfg.genome + "'";
  std::vector<IntervalSet> kept(T_);
  stats_.peaks_read.assign(T_, 0);
  stats_.peaks_in_split.assign(T_, 0);
  stats_.peaks_retained.assign(T_, 0);
  stats_.positive_bins_per_task.assign(T_, 0);
  for (int64_t t = 0; t < T_; ++t) {
    auto all = read_bed(cfg.peaks[t], bo);
    stats_.peaks_read[t] = static_cast<int64_t>(all.size());
    std::vector<Peak> ps;
    for (auto& p : all)
      if (in_split[p.chrom_index]) ps.push_back(p);
    stats_.peaks_in_split[t] = static_cast<int64_t>(ps.size());
    peaks_.emplace_back(cs.size());
    peaks_[t].add_peaks(ps);
    peaks_[t].finalize();
    if (cfg.peak_retention > 0) ps = top_peaks_by_signal(ps, cfg.peak_retention, cfg.peaks[t]);
    stats_.peaks_retained[t] = static_cast<int64_t>(ps.size());
    kept[t] = IntervalSet(cs.size());
    kept[t].add_peaks(ps);
    kept[t].finalize();
    ambig_.emplace_back(cs.size());
    if (!cfg.ambiguous.empty() && !cfg.ambiguous[t].empty()) {
      BedOptions ao = bo;
      ao.allow_empty = true;
      for (auto& p : read_bed(cfg.ambiguous[t], ao))
        if (in_split[p.chrom_index] && !peaks_[t].any_overlap(p.chrom_index, p.start, p.end))
          ambig_[t].add(p.chrom_index, p.start, p.end);
    }
    ambig_[t].finalize();
  }
  blacklist_ = IntervalSet(cs.size());
  if (!cfg.blacklist.empty()) {
    BedOptions blo = bo;
    blo.allow_empty = true;
    blacklist_.add_peaks(read_bed(cfg.blacklist, blo));
  }
  blacklist_.finalize();

  // Labels of every bin that overlaps a peak or an ambiguous peak of some task.
  int64_t need = static_cast<int64_t>(std::ceil(cfg.min_overlap * static_cast<double>(cfg.bin) - 1e-9));
  std::unordered_map<int64_t, std::vector<int8_t>> labels;
  auto visit = [&](const IntervalSet& set, int64_t t, bool ambiguous) {
    for (int64_t c : chroms) {
      int64_t L = cs.lengths[c];
      for (auto [a, b] : set.on(c)) {
        int64_t k0 = std::max<int64_t>(0, (a - cfg.bin) / cfg.stride);  // first bins may not overlap: checked below
        for (int64_t s = k0 * cfg.stride; s < b && s + cfg.bin <= L; s += cfg.stride) {
          if (s + cfg.bin <= a) continue;
          int64_t ov = set.overlap(c, s, s + cfg.bin);
          int8_t lab = 0;
          if (ambiguous) lab = ov > 0 ? -1 : 0;
          else if (ov >= need) lab = 1;
          else if (cfg.partial_ambiguous && ov > 0) lab = -1;
          if (lab == 0) continue;
          auto& v = labels.try_emplace(bin_key(c, s), std::vector<int8_t>(T_, 0)).first->second;
          if (v[t] != 1) v[t] = lab;
        }
      }
    }
  };
  for (int64_t t = 0; t < T_; ++t) visit(peaks_[t], t, false);
  for (int64_t t = 0; t < T_; ++t) visit(ambig_[t], t, true);

  std::vector<int64_t> keys;
  keys.reserve(labels.size());
  for (auto& [k, v] : labels) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  std::vector<uint8_t> codes(L_);
  for (int64_t k : keys) {
    const auto& v = labels[k];
    int64_t c = k >> 40, s = k & ((int64_t(1) << 40) - 1);
    bool any_pos = std::find(v.begin(), v.end(), 1) != v.end();
    bin_level_[k] = any_pos ? 1 : -1;
    if (!any_pos) {
      ++stats_.ambiguous_bins;
      continue;
    }
    for (int64_t t = 0; t < T_; ++t) stats_.positive_bins_per_task[t] += v[t] == 1;
    int64_t w0 = s - cfg.flank, w1 = s + cfg.bin + cfg.flank;
    if (w0 < 0 || w1 > cs.lengths[c]) {
      ++stats_.dropped_edge;
      continue;
    }
    if (cfg.peak_retention > 0) {
      bool retained = false;
      for (int64_t t = 0; t < T_ && !retained; ++t)
        retained = v[t] == 1 && kept[t].overlap(c, s, s + cfg.bin) >= need;
      if (!retained) {
        ++stats_.unretained_bins;
        continue;
      }
    }
    if (blacklist_.any_overlap(c, w0, w1)) {
      ++stats_.dropped_blacklist;
      continue;
    }
    if (cfg.max_n_fraction < 1) {
      win_->codes(c, w0, w1, codes.data());
      if (static_cast<double>(count_non_acgt(codes.data(), L_)) > cfg.max_n_fraction * static_cast<double>(L_)) {
        ++stats_.dropped_n;
        continue;
      }
    }
    pos_.push_back({c, s, v});
  }
  stats_.positive_bins = static_cast<int64_t>(pos_.size());
  sampler_ = std::make_unique<PositionSampler>(cs, chroms, cfg.flank, cfg.bin + cfg.flank, cfg.stride);
  stats_.candidate_bins = sampler_->total();
  LP_CHECK(!pos_.empty(), "binary dataset: no positive bins left in chromosomes of this split after filtering (",
           stats_.to_json(), "); check data.peaks, data.chroms and data.peak_retention");
  LP_CHECK(cfg.negative_ratio == 0 || sampler_->total() > static_cast<int64_t>(labels.size()),
           "binary dataset: every bin of the split is positive or ambiguous; no negatives can be drawn");
  n_batches_ = (static_cast<int64_t>(pos_.size()) + pos_per_batch_ - 1) / pos_per_batch_;
}

BinaryGenomeDataset::~BinaryGenomeDataset() = default;

std::vector<int8_t> BinaryGenomeDataset::labels_of(int64_t c, int64_t s) const {
  std::vector<int8_t> v(T_, 0);
  int64_t need = static_cast<int64_t>(std::ceil(cfg_.min_overlap * static_cast<double>(cfg_.bin) - 1e-9));
  for (int64_t t = 0; t < T_; ++t) {
    int64_t ov = peaks_[t].overlap(c, s, s + cfg_.bin);
    if (ov >= need) v[t] = 1;
    else if ((cfg_.partial_ambiguous && ov > 0) || ambig_[t].any_overlap(c, s, s + cfg_.bin)) v[t] = -1;
  }
  return v;
}

bool BinaryGenomeDataset::sampleable_negative(int64_t c, int64_t s) const {
  if (bin_level_.count(bin_key(c, s))) return false;
  return !blacklist_.any_overlap(c, s - cfg_.flank, s + cfg_.bin + cfg_.flank);
}

void BinaryGenomeDataset::start_epoch(int64_t epoch, Rng& rng) {
  order_.resize(pos_.size());
  std::iota(order_.begin(), order_.end(), 0);
  if (cfg_.shuffle) std::shuffle(order_.begin(), order_.end(), rng.engine());
  epoch_seed_ = rng.next_u64();
  pf_.start(n_batches_, [this](int64_t i) { return make_batch(i); });
}

HostBatch BinaryGenomeDataset::make_batch(int64_t i) const {
  int64_t p0 = i * pos_per_batch_, p1 = std::min<int64_t>(p0 + pos_per_batch_, static_cast<int64_t>(pos_.size()));
  int64_t np = p1 - p0;
  int64_t nn = p1 - p0 == pos_per_batch_ ? cfg_.batch_size - pos_per_batch_
                                          : std::llround(static_cast<double>(np) * cfg_.negative_ratio);
  if (cfg_.negative_ratio == 0) nn = 0;
  std::vector<std::pair<int64_t, int64_t>> rows;  // (chrom, bin start)
  std::vector<const std::vector<int8_t>*> labs;
  for (int64_t k = p0; k < p1; ++k) {
    const auto& b = pos_[order_[k]];
    rows.push_back({b.chrom, b.start});
    labs.push_back(&b.labels);
  }
  Rng rng(mix_seed(epoch_seed_, static_cast<uint64_t>(i)));
  std::vector<uint8_t> codes(L_);
  int64_t tries = 0;
  for (int64_t k = 0; k < nn;) {
    LP_CHECK(++tries < 10000 * (nn + 1), "binary dataset: could not draw ", nn, " negative bins in ", tries,
             " tries (almost every bin of the split is positive, ambiguous, blacklisted or has too many N)");
    auto [c, s] = sampler_->draw(rng);
    if (!sampleable_negative(c, s)) continue;
    if (cfg_.max_n_fraction < 1) {
      win_->codes(c, s - cfg_.flank, s + cfg_.bin + cfg_.flank, codes.data());
      if (static_cast<double>(count_non_acgt(codes.data(), L_)) > cfg_.max_n_fraction * static_cast<double>(L_))
        continue;
    }
    rows.push_back({c, s});
    labs.push_back(nullptr);
    ++k;
  }
  int64_t B = static_cast<int64_t>(rows.size()), R = cfg_.revcomp ? 2 : 1;
  HostBatch hb;
  hb.x.assign(R * B * 4 * L_, 0.0f);
  hb.y.assign(R * B * T_, 0.0f);
  hb.x_shape = {R * B, 4, L_};
  hb.y_shape = {R * B, T_};
  hb.status.assign(R * B, 0);
  for (int64_t r = 0; r < B; ++r) {
    auto [c, s] = rows[r];
    win_->codes(c, s - cfg_.flank, s + cfg_.bin + cfg_.flank, codes.data());
    for (int64_t rc = 0; rc < R; ++rc) {
      int64_t row = rc * B + r;
      one_hot_codes(codes.data(), L_, hb.x.data() + row * 4 * L_, rc == 1);
      for (int64_t t = 0; t < T_; ++t) hb.y[row * T_ + t] = labs[r] ? (*labs[r])[t] : 0.0f;
      hb.status[row] = labs[r] ? 1 : 0;
    }
  }
  return hb;
}

Batch BinaryGenomeDataset::next(Context& ctx) { return pf_.next().to_batch(ctx); }

SourceGeometry BinaryGenomeDataset::geometry() const {
  SourceGeometry g;
  g.input_length = L_;
  g.tasks = T_;
  return g;
}

std::string BinaryGenomeDataset::describe() const {
  std::ostringstream os;
  os << "binary genome: " << T_ << " task(s), " << pos_.size() << " positive bins (" << stats_.ambiguous_bins
     << " ambiguous), " << n_batches_ << " batches of " << pos_per_batch_ << " positives + "
     << (cfg_.batch_size - pos_per_batch_) << " negatives" << (cfg_.revcomp ? " x2 reverse complement" : "")
     << ", input " << L_ << " bp, " << (win_->preloaded() ? "preloaded" : "cached") << " sequence";
  return os.str();
}

// ---------------------------------------------------------------------------------------------
std::vector<uint8_t> centre_codes(const std::string& seq, int64_t L) {
  std::vector<uint8_t> out(L, 4);
  int64_t n = static_cast<int64_t>(seq.size());
  if (n >= L) {
    int64_t off = (n - L) / 2;
    for (int64_t i = 0; i < L; ++i) out[i] = base_code(seq[off + i]);
  } else {
    int64_t off = (L - n) / 2;
    for (int64_t i = 0; i < n; ++i) out[off + i] = base_code(seq[i]);
  }
  return out;
}

FastaBinaryDataset::FastaBinaryDataset(const FastaBinaryConfig& cfg)
    : cfg_(cfg), pf_(cfg.cache.workers, cfg.cache.prefetch) {
  LP_CHECK(cfg.batch_size >= 1, "data.batch_size: expected >= 1, got ", cfg.batch_size);
  LP_CHECK(cfg.input_length >= 0, "data.input_length: expected >= 0, got ", cfg.input_length);
  auto pos = read_fasta_records(cfg.positives);
  auto neg = cfg.negatives.empty() ? std::vector<FastaRecord>{} : read_fasta_records(cfg.negatives);
  L_ = cfg.input_length;
  if (L_ == 0)
    for (auto* v : {&pos, &neg})
      for (auto& r : *v) L_ = std::max<int64_t>(L_, static_cast<int64_t>(r.seq.size()));
  for (auto* v : {&pos, &neg})
    for (auto& r : *v) {
      codes_.push_back(centre_codes(r.seq, L_));
      labels_.push_back(v == &pos ? 1 : 0);
      const int64_t n = static_cast<int64_t>(r.seq.size());
      const int64_t pad = std::max<int64_t>(0, L_ - n);
      const int64_t unknown = std::count(codes_.back().begin(), codes_.back().end(), uint8_t(4)) - pad;
      padded_ += n < L_, cropped_ += n > L_, no_bases_ += pad + unknown == L_;
      unknown_bases_ += unknown;
    }
  n_pos_ = static_cast<int64_t>(pos.size());
  std::vector<int64_t> pi(static_cast<size_t>(n_pos_)), ni(static_cast<size_t>(size() - n_pos_));
  std::iota(pi.begin(), pi.end(), int64_t(0));
  std::iota(ni.begin(), ni.end(), n_pos_);
  if (cfg.sequential) {
    pi.insert(pi.end(), ni.begin(), ni.end());
    ni.clear();
  } else {
    LP_CHECK(n_pos_ > 0, cfg.positives, ": no sequences to train on");
  }
  try {
    sampler_ = BalancedSampler(std::move(pi), std::move(ni), cfg.batch_size, cfg.negative_ratio, cfg.sequential);
  } catch (const Error& e) {
    throw Error(std::string("data.sequences: ") + e.what());
  }
}

void FastaBinaryDataset::start_epoch(int64_t epoch, Rng& rng) {
  (void)epoch;
  sampler_.start_epoch(rng, cfg_.shuffle);
  pf_.start(sampler_.batches(), [this](int64_t i) { return make_batch(i); });
}

HostBatch FastaBinaryDataset::make_batch(int64_t i) const {
  const std::vector<int64_t> order = sampler_.batch(i);
  const int64_t B = static_cast<int64_t>(order.size());
  int64_t R = cfg_.revcomp ? 2 : 1;
  HostBatch hb;
  hb.x.assign(R * B * 4 * L_, 0.0f);
  hb.y.assign(R * B, 0.0f);
  hb.x_shape = {R * B, 4, L_};
  hb.y_shape = {R * B, 1};
  hb.status.assign(R * B, 0);
  for (int64_t r = 0; r < B; ++r) {
    int64_t e = order[static_cast<size_t>(r)];
    for (int64_t rc = 0; rc < R; ++rc) {
      int64_t row = rc * B + r;
      one_hot_codes(codes_[e].data(), L_, hb.x.data() + row * 4 * L_, rc == 1);
      hb.y[row] = labels_[e];
      hb.status[row] = labels_[e];
    }
  }
  return hb;
}

Batch FastaBinaryDataset::next(Context& ctx) { return pf_.next().to_batch(ctx); }

SourceGeometry FastaBinaryDataset::geometry() const {
  SourceGeometry g;
  g.input_length = L_;
  g.tasks = 1;
  return g;
}

std::string FastaBinaryDataset::describe() const {
  std::ostringstream os;
  os << "binary FASTA: " << n_pos_ << " positives + " << size() - n_pos_ << " negatives, input " << L_ << " bp, "
     << sampler_.batches() << " batches of ";
  if (cfg_.sequential) os << cfg_.batch_size << ", every record in order";
  else os << sampler_.positives_per_batch() << "+" << sampler_.negatives_per_batch();
  os << (cfg_.revcomp ? " x2 reverse complement" : "");
  // What centring to the input length did, said where it is read (the records are used as they are).
  if (padded_ || cropped_ || unknown_bases_ || no_bases_)
    os << "; " << padded_ << " records shorter than " << L_ << " bp (centred, N-padded), " << cropped_
       << " longer (centre cropped), " << unknown_bases_ << " bases other than A/C/G/T read as N"
       << (no_bases_ ? ", " + std::to_string(no_bases_) + " records with no A/C/G/T at all" : std::string());
  return os.str();
}

}  // namespace lowpass
