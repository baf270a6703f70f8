// BED3+ and 10-column narrowPeak reader with line-numbered errors, and merged interval sets.
// summit = start + column 10 (narrowPeak), or the centre start + (end - start) / 2 when column 10 is -1 or absent.
// Test: build/tests/lowpass_tests -ts=genome
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/data/fasta.h"

namespace lowpass {

// One BED record, half-open [start, end), 0-based as in BED.
struct Peak {
  std::string chrom;
  int64_t chrom_index = -1;  // position in the ChromSizes given to read_bed (-1 without one)
  int64_t start = 0, end = 0;
  int64_t summit = 0;        // absolute position
  double signal = 0;         // narrowPeak column 7 (signalValue); BED5+ column 5 (score); else 0
  bool has_signal = false;
  int64_t line = 0;          // 1-based line in the file
};

enum class BedFormat { Auto, Bed, NarrowPeak };  // Auto: exactly 10 columns means narrowPeak

struct BedOptions {
  const ChromSizes* sizes = nullptr;  // when set: unknown chromosomes and end > length are errors
  std::string sizes_source = "the FASTA";  // names where sizes come from, for messages
  BedFormat format = BedFormat::Auto;
  bool require_sorted = false;  // error on lines out of (chromosome block, start) order
  bool allow_empty = false;     // error on a file with no records unless set
};

// Reads a BED3+/narrowPeak file (plain or gzip). Skips blank, '#', 'track' and 'browser' lines.
// Throws Error "<path>:<line>: <problem>" for: fewer than 3 columns, non-integer or negative
// coordinates, start >= end, chromosomes unknown to opt.sizes, end past the chromosome end,
// a non-numeric signal, a summit offset outside [0, end - start) (other than -1), unsorted lines
// (with require_sorted), missing or unreadable files and files without records.
std::vector<Peak> read_bed(const std::string& path, const BedOptions& opt = {});

// Non-overlapping sorted intervals per chromosome (the union of the inputs), for overlap queries.
class IntervalSet {
 public:
  IntervalSet() = default;
  explicit IntervalSet(int64_t n_chroms) : by_chrom_(n_chroms) {}
  // Adds [start, end) on chromosome index c; call finalize() before queries.
  void add(int64_t c, int64_t start, int64_t end);
  void add_peaks(const std::vector<Peak>& peaks);  // needs chrom_index set
  void finalize();  // sorts and merges
  // Number of bases of [start, end) covered by the set.
  int64_t overlap(int64_t c, int64_t start, int64_t end) const;
  bool any_overlap(int64_t c, int64_t start, int64_t end) const { return overlap(c, start, end) > 0; }
  int64_t total_bases() const;
  int64_t intervals() const;
  const std::vector<std::pair<int64_t, int64_t>>& on(int64_t c) const { return by_chrom_[c]; }
  int64_t chroms() const { return static_cast<int64_t>(by_chrom_.size()); }

 private:
  std::vector<std::vector<std::pair<int64_t, int64_t>>> by_chrom_;
};

}  // namespace lowpass
