// GenomeWindows (preload or LRU chunk cache under a byte budget) and the in-order batch Prefetcher.
// A window [s, e) is copied from chunks k = s / chunk ... (e - 1) / chunk, each read once while cached.
// Test: build/tests/lowpass_tests -ts=genome
#include "models/data/window_cache.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "engine/error.h"

namespace lowpass {

GenomeWindows::GenomeWindows(std::shared_ptr<Fasta> fasta, std::vector<Track> tracks,
                             const std::vector<std::string>& chroms, const CacheOptions& opt)
    : fasta_(std::move(fasta)), tracks_(std::move(tracks)), opt_(opt) {
  LP_CHECK(opt.memory_budget > 0, "data.memory_budget: must be positive (bytes), got ", opt.memory_budget);
  LP_CHECK(opt.chunk > 0, "data.cache_chunk: must be positive (bases), got ", opt.chunk);
  sources_.push_back({-1, -1});
  for (int64_t t = 0; t < static_cast<int64_t>(tracks_.size()); ++t)
    for (int64_t s = 0; s < tracks_[t].strands(); ++s) sources_.push_back({t, s});
  const ChromSizes& cs = fasta_->chrom_sizes();
  int64_t bases = 0;
  for (auto& c : chroms) bases += fasta_->length(c);
  int64_t need = bases * (1 + 4 * (static_cast<int64_t>(sources_.size()) - 1));
  int64_t chunk_max = opt.chunk * 4;
  LP_CHECK(need <= opt.memory_budget || chunk_max <= opt.memory_budget, "data.memory_budget: ", opt.memory_budget,
           " bytes is smaller than one cache chunk (", chunk_max, " bytes); raise it or lower data.cache_chunk");
  if (need > opt.memory_budget) return;
  preloaded_ = true;
  full_.assign(sources_.size(), std::vector<std::vector<uint8_t>>(cs.size()));
  for (auto& name : chroms) {
    int64_t c = cs.find(name), L = cs.lengths[c];
    for (int64_t src = 0; src < static_cast<int64_t>(sources_.size()); ++src) {
      auto& v = full_[src][c];
      if (!v.empty()) continue;  // chromosome listed twice
      v.resize(static_cast<size_t>(L) * (src == 0 ? 1 : 4));
      read_raw(src, c, 0, L, v.data());
      preload_bytes_ += static_cast<int64_t>(v.size());
    }
  }
}

void GenomeWindows::read_raw(int64_t src, int64_t c, int64_t start, int64_t end, uint8_t* out) {
  const std::string& name = fasta_->chrom_sizes().names[c];
  if (src == 0) {
    fasta_->fetch_codes(name, start, end, out);
  } else {
    auto [t, s] = sources_[src];
    tracks_[t].file(s).values(name, start, end, reinterpret_cast<float*>(out));
  }
}

GenomeWindows::Chunk GenomeWindows::chunk(int64_t src, int64_t c, int64_t k) {
  Key key{src, c, k};
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.second);
      ++hits_;
      return it->second.first;
    }
    ++misses_;
  }
  int64_t L = fasta_->chrom_sizes().lengths[c];
  int64_t s = k * opt_.chunk, e = std::min(L, s + opt_.chunk);
  auto v = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(e - s) * (src == 0 ? 1 : 4));
  read_raw(src, c, s, e, v->data());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  if (it != map_.end()) return it->second.first;  // another thread loaded it meanwhile
  lru_.push_front(key);
  map_.emplace(key, std::make_pair(Chunk(v), lru_.begin()));
  cache_bytes_ += static_cast<int64_t>(v->size());
  while (cache_bytes_ > opt_.memory_budget && lru_.size() > 1) {
    auto old = map_.find(lru_.back());
    cache_bytes_ -= static_cast<int64_t>(old->second.first->size());
    map_.erase(old);
    lru_.pop_back();
  }
  return v;
}

void GenomeWindows::copy_range(int64_t src, int64_t c, int64_t start, int64_t end, uint8_t* out) {
  const ChromSizes& cs = fasta_->chrom_sizes();
  LP_ASSERT(c >= 0 && c < cs.size(), "chromosome index ", c);
  LP_CHECK(0 <= start && start <= end && end <= cs.lengths[c], "window ", cs.names[c], ":", start, "-", end,
           " is outside the chromosome (length ", cs.lengths[c], ")");
  if (start == end) return;  // memcpy with a null `out` of an empty range is undefined (UBSan, scripts/sanitize.sh)
  size_t w = src == 0 ? 1 : 4;
  if (preloaded_ && !full_[src][c].empty()) {
    std::memcpy(out, full_[src][c].data() + start * w, (end - start) * w);
    return;
  }
  for (int64_t pos = start; pos < end;) {
    int64_t k = pos / opt_.chunk, cs0 = k * opt_.chunk, ce = std::min(end, cs0 + opt_.chunk);
    Chunk ch = chunk(src, c, k);
    std::memcpy(out + (pos - start) * w, ch->data() + (pos - cs0) * w, (ce - pos) * w);
    pos = ce;
  }
}

void GenomeWindows::codes(int64_t c, int64_t start, int64_t end, uint8_t* out) { copy_range(0, c, start, end, out); }

void GenomeWindows::track(int64_t t, int64_t c, int64_t start, int64_t end, float* out, bool revcomp) {
  LP_ASSERT(t >= 0 && t < static_cast<int64_t>(tracks_.size()), "track ", t);
  int64_t src0 = 1;
  for (int64_t u = 0; u < t; ++u) src0 += tracks_[u].strands();
  int64_t S = tracks_[t].strands(), L = end - start;
  for (int64_t s = 0; s < S; ++s) {
    int64_t row = revcomp ? S - 1 - s : s;
    copy_range(src0 + s, c, start, end, reinterpret_cast<uint8_t*>(out + row * L));
    if (revcomp) std::reverse(out + row * L, out + (row + 1) * L);
  }
}

int64_t GenomeWindows::bytes_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return preload_bytes_ + cache_bytes_;
}

// ---------------------------------------------------------------------------------------------
std::vector<int64_t> resolve_chroms(const ChromSizes& sizes, const std::vector<std::string>& names,
                                    const std::string& field) {
  std::vector<int64_t> out;
  if (names.empty()) {
    for (int64_t c = 0; c < sizes.size(); ++c) out.push_back(c);
    return out;
  }
  for (auto& n : names) {
    int64_t c = sizes.find(n);
    LP_CHECK(c >= 0, field, ": chromosome '", n, "' is not in the FASTA; ", sizes.suggest(n));
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

PositionSampler::PositionSampler(const ChromSizes& sizes, const std::vector<int64_t>& chroms, int64_t lo, int64_t hi,
                                 int64_t stride)
    : stride_(stride) {
  LP_ASSERT(stride > 0 && lo >= 0 && hi >= 0, "sampler geometry");
  for (int64_t c : chroms) {
    int64_t L = sizes.lengths[c];
    int64_t kmin = (lo + stride - 1) / stride;
    if (L - hi < 0) continue;
    int64_t kmax = (L - hi) / stride;
    if (kmax < kmin) continue;
    total_ += kmax - kmin + 1;
    chroms_.push_back(c);
    kmin_.push_back(kmin);
    cum_.push_back(total_);
  }
}

std::pair<int64_t, int64_t> PositionSampler::draw(Rng& rng) const {
  LP_ASSERT(total_ > 0, "empty PositionSampler");
  int64_t r = rng.randint(0, total_);
  size_t i = std::upper_bound(cum_.begin(), cum_.end(), r) - cum_.begin();
  int64_t before = i == 0 ? 0 : cum_[i - 1];
  return {chroms_[i], (kmin_[i] + (r - before)) * stride_};
}

// ---------------------------------------------------------------------------------------------
Batch HostBatch::to_batch(Context& ctx) const {
  Batch b;
  Device dev = ctx.device();
  auto make = [&](const Shape& s, const std::vector<float>& v) {
    Tensor t = Tensor::from_vector(ctx, s, v);
    return dev.is_cpu() ? t : t.to(dev);
  };
  b.x = make(x_shape, x);
  b.y = make(y_shape, y);
  if (!control.empty()) b.control = make(control_shape, control);
  b.status = status;
  return b;
}

Prefetcher::Prefetcher(int workers, int depth) : workers_(std::max(0, workers)), depth_(std::max(1, depth)) {}

Prefetcher::~Prefetcher() { stop(); }

void Prefetcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = false;
  ready_.clear();
  error_ = false;
}

void Prefetcher::start(int64_t n, std::function<HostBatch(int64_t)> produce) {
  stop();
  produce_ = std::move(produce);
  n_ = n;
  claimed_ = consumed_ = 0;
  for (int i = 0; i < workers_; ++i) threads_.emplace_back([this] { work(); });
}

void Prefetcher::work() {
  while (true) {
    int64_t i;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || error_ || claimed_ >= n_ || claimed_ < consumed_ + depth_; });
      if (stopping_ || error_ || claimed_ >= n_) return;
      i = claimed_++;
    }
    std::pair<HostBatch, std::exception_ptr> item;
    try {
      item.first = produce_(i);
    } catch (...) {
      item.second = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (item.second) error_ = true;
      ready_.emplace(i, std::move(item));
    }
    cv_.notify_all();
  }
}

HostBatch Prefetcher::next() {
  LP_CHECK(consumed_ < n_, "BatchSource::next: called ", consumed_ + 1, " times in an epoch of ", n_,
           " batches (call start_epoch first)");
  if (workers_ == 0) {
    try {
      return produce_(consumed_++);
    } catch (...) {
      n_ = consumed_;  // the epoch cannot continue
      throw;
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return ready_.count(consumed_) > 0; });
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto it = ready_.find(consumed_);
  auto item = std::move(it->second);
  ready_.erase(it);
  ++consumed_;
  lock.unlock();
  cv_.notify_all();
  if (item.second) {
    stop();
    n_ = consumed_;  // the epoch cannot continue
    std::rethrow_exception(item.second);
  }
  return std::move(item.first);
}

}  // namespace lowpass
