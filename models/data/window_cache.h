// Genome window access under a memory budget (preload or bounded LRU chunk cache) and background prefetch.
// Preload when sum_c len_c * (1 + 4 * n_bigwigs) <= budget; otherwise chunks of `chunk` bases, LRU, <= budget.
// Test: build/tests/lowpass_tests -ts=genome
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/context.h"
#include "models/data/batch.h"
#include "models/data/bigwig.h"
#include "models/data/fasta.h"

namespace lowpass {

struct CacheOptions {
  int64_t memory_budget = int64_t(1) << 30;  // bytes for preloaded or cached sequence + signal
  int64_t chunk = 1 << 16;                   // bases per cached chunk when not preloaded
  int prefetch = 4;                          // batches prepared ahead of the step
  int workers = 1;                           // background threads preparing batches (0: none, inline)
};

// Thread-safe reads of base codes and bigWig values for the chromosomes a dataset uses.
// Sources: 0 = the FASTA (1 byte per base), 1.. = each bigWig file of each track (4 bytes per base).
class GenomeWindows {
 public:
  GenomeWindows(std::shared_ptr<Fasta> fasta, std::vector<Track> tracks, const std::vector<std::string>& chroms,
                const CacheOptions& opt);
  const Fasta& fasta() const { return *fasta_; }
  const ChromSizes& sizes() const { return fasta_->chrom_sizes(); }
  const std::vector<Track>& tracks() const { return tracks_; }
  // Base codes (0..3 ACGT, 4 other) of [start, end) on chromosome index c (index in the FASTA).
  void codes(int64_t c, int64_t start, int64_t end, uint8_t* out);
  // (S, end - start) values of track t, flipped along strands and positions when revcomp.
  void track(int64_t t, int64_t c, int64_t start, int64_t end, float* out, bool revcomp = false);

  bool preloaded() const { return preloaded_; }
  int64_t bytes_in_use() const;  // preloaded arrays, or the LRU cache's current size
  int64_t budget() const { return opt_.memory_budget; }
  int64_t misses() const { return misses_; }
  int64_t hits() const { return hits_; }

 private:
  using Chunk = std::shared_ptr<const std::vector<uint8_t>>;
  struct Key {
    int64_t source, chrom, chunk;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<int64_t>()((k.source * 1000003 + k.chrom) * 0x9E3779B97F4A7C15ull + k.chunk);
    }
  };
  void read_raw(int64_t source, int64_t c, int64_t start, int64_t end, uint8_t* out);  // from files
  Chunk chunk(int64_t source, int64_t c, int64_t k);
  void copy_range(int64_t source, int64_t c, int64_t start, int64_t end, uint8_t* out);

  std::shared_ptr<Fasta> fasta_;
  std::vector<Track> tracks_;
  std::vector<std::pair<int64_t, int64_t>> sources_;  // source -> (track, strand); source 0 unused
  CacheOptions opt_;
  bool preloaded_ = false;
  std::vector<std::vector<std::vector<uint8_t>>> full_;  // [source][chrom] when preloaded
  int64_t preload_bytes_ = 0;
  // LRU cache
  mutable std::mutex mu_;
  std::list<Key> lru_;  // front = most recent
  std::unordered_map<Key, std::pair<Chunk, std::list<Key>::iterator>, KeyHash> map_;
  int64_t cache_bytes_ = 0;
  int64_t hits_ = 0, misses_ = 0;
};

// Chromosome names -> indices in `sizes`; empty `names` means every chromosome. Errors name `field`.
std::vector<int64_t> resolve_chroms(const ChromSizes& sizes, const std::vector<std::string>& names,
                                    const std::string& field);

// Uniform random positions p = k * stride with p - lo >= 0 and p + hi <= length, over the given
// chromosomes, each chromosome weighted by its number of such positions (uniform over the genome).
class PositionSampler {
 public:
  PositionSampler(const ChromSizes& sizes, const std::vector<int64_t>& chroms, int64_t lo, int64_t hi, int64_t stride = 1);
  int64_t total() const { return total_; }  // number of positions
  std::pair<int64_t, int64_t> draw(Rng& rng) const;  // (chrom index, position); total() must be > 0

 private:
  std::vector<int64_t> chroms_, kmin_, cum_;  // cum_[i] = positions on chroms_[0..i]
  int64_t stride_ = 1, total_ = 0;
};

// A batch as host arrays, built by background threads and turned into tensors by next().
struct HostBatch {
  std::vector<float> x;        // (B, 4, L)
  std::vector<float> y;        // (B, T) or (B, T, S, O)
  std::vector<float> control;  // (B, Tc, S, O) or empty
  Shape x_shape, y_shape, control_shape;
  std::vector<int> status;     // (B)
  Batch to_batch(Context& ctx) const;  // tensors on ctx.device()
};

// Prepares batches 0..n-1 of an epoch with `workers` threads, at most `depth` ahead of the consumer,
// and hands them out in order. produce(i) must be thread-safe and deterministic in i.
class Prefetcher {
 public:
  Prefetcher(int workers, int depth);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;
  void start(int64_t n, std::function<HostBatch(int64_t)> produce);  // stops any unfinished epoch first
  HostBatch next();  // blocks until batch i is ready; rethrows the producer's exception
  int64_t remaining() const { return n_ - consumed_; }
  double wait_seconds() const { return wait_s_; }  // total time next() blocked (0 when prefetch keeps up)

 private:
  void stop();
  void work();
  int workers_, depth_;
  std::function<HostBatch(int64_t)> produce_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, std::pair<HostBatch, std::exception_ptr>> ready_;  // a batch, or the error making it
  bool error_ = false;  // no new batches are claimed after an error
  int64_t n_ = 0, claimed_ = 0, consumed_ = 0;
  bool stopping_ = false;
  double wait_s_ = 0;
};

}  // namespace lowpass
