// bigWig signal tracks through libBigWig: per-base values of a window (missing = 0), stranded tracks.
// values(c, s, e)[i] = value of the bigWig interval covering base s + i, or 0 where none does.
// Writing (BigWigWriter, write_bigwig) goes through a temporary renamed into place: never a truncated file.
// Test: build/tests/lowpass_tests -ts=genome
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "models/data/fasta.h"

namespace lowpass {

// One bigWig file. Reads are thread-safe (the libBigWig handle is used under a mutex).
class BigWig {
 public:
  explicit BigWig(const std::string& path);
  ~BigWig();
  BigWig(const BigWig&) = delete;
  BigWig& operator=(const BigWig&) = delete;

  const std::string& path() const { return path_; }
  const ChromSizes& chrom_sizes() const { return sizes_; }
  // Per-base values of [start, end) into out[end - start], float, missing (and NaN) = 0. Throws Error
  // for chromosomes absent from the file (with the chr-prefix hint) and coordinates past its end.
  void values(const std::string& chrom, int64_t start, int64_t end, float* out) const;
  // Marks the file as a track of counts (a profile model's signal or control): values() then refuses a value that is
  // negative, NaN, infinite or above kMaxCount, naming the file and chrom:position, where such a value would give a
  // non-finite loss far from its cause. Other bigWigs (attribution tracks) keep any value, NaN read as 0.
  void require_counts() { counts_ = true; }
  static constexpr float kMaxCount = 1e9f;
  // Checks that every chromosome of `needed` (names) exists here with the genome's length.
  // Chromosomes the bigWig lacks are an Error only when `strict`; otherwise they read as zeros
  // (a sparse track with no reads on a chromosome), which `missing()` reports.
  void check_against(const ChromSizes& genome, const std::vector<std::string>& needed, bool strict = false);
  const std::vector<std::string>& missing() const { return missing_; }

 private:
  std::string path_;
  ChromSizes sizes_;
  std::vector<std::string> missing_;
  void* fp_ = nullptr;  // bigWigFile_t*
  bool has_data_ = true;  // false for a file without a data index (no nonzero value anywhere)
  bool counts_ = false;
  mutable std::mutex mu_;
  [[noreturn]] void bad_count(const std::string& chrom, int64_t pos, float v) const;
};

// A (possibly stranded) signal: S bigWig files read as S rows. For a reverse-complemented window the
// strand axis is reversed as well as the position axis (so for S = 2 the order given is swapped).
// Tracks are counts (profile signals and controls): every file is read with BigWig::require_counts.
class Track {
 public:
  Track() = default;
  explicit Track(const std::vector<std::string>& files);
  int64_t strands() const { return static_cast<int64_t>(files_.size()); }
  const BigWig& file(int64_t s) const { return *files_[s]; }
  const std::vector<std::shared_ptr<BigWig>>& files() const { return files_; }
  // (S, end - start) row-major into out; with revcomp, out[s][i] = raw[S-1-s][L-1-i].
  void window(const std::string& chrom, int64_t start, int64_t end, float* out, bool revcomp = false) const;
  void check_against(const ChromSizes& genome, const std::vector<std::string>& needed, bool strict = false);

 private:
  std::vector<std::shared_ptr<BigWig>> files_;
};

// Writes a bigWig (for tests, `lowpass simulate` and attribution tracks): `values[c]` holds one
// float per base of chromosome c; runs of zeros are not written. Throws Error on write failure.
// Atomic like BigWigWriter.
void write_bigwig(const std::string& path, const ChromSizes& sizes, const std::vector<std::vector<float>>& values);

// A bigWig written piece by piece (genome-wide tracks that never exist whole in memory): per-base values are given
// in increasing chromosome index and position; a run of equal values becomes one interval, zeros and bases never
// given are not written. The file is written to `path.tmp.<pid>.<n>` (safetensors::AtomicFile, reaped like the
// npz temporaries when a killed writer leaves it) and renamed over `path` by commit(); destroyed uncommitted (an
// error, a stop), the temporary is removed and `path` keeps what it held. The zoom levels are built as the values
// come (models/data/bigwig_zoom.h: memory does not grow with the track) and appended after libBigWig closes the file.
class BigWigWriter {
 public:
  BigWigWriter(const std::string& path, const ChromSizes& sizes);
  ~BigWigWriter();
  BigWigWriter(const BigWigWriter&) = delete;
  BigWigWriter& operator=(const BigWigWriter&) = delete;
  // v[0..n) at [start, start + n) of chromosome c (an index into `sizes`); start at or after the end of the
  // previous add() on c, c at or after its chromosome.
  void add(int64_t c, int64_t start, const float* v, int64_t n);
  void finish();  // writes what is buffered and the indexes into the temporary (Error when that fails)
  void commit();  // finish() if not done, then fsync and rename into place

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowpass
