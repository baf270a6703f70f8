// The zoom levels of a bigWig that BigWigWriter writes, built as the items are written (internal to bigwig.cpp).
// libBigWig builds them when it closes a file: it reads every chromosome's intervals back whole (12 bytes per
// interval) and keeps every level's records in memory until the end (~2.7 bytes per covered base), so a dense
// 40-Mb chromosome took 605 MB and a genome-wide human track would take gigabytes. Here each item updates the
// current record of the finest level; a finished record is appended to its level's block and merged into the
// next level's record (the levels' windows nest: reductions 16 · 4^k, aligned to the chromosome start), and a
// full block (1,024 records) is deflated into a spill file (one per writer, whatever the levels: a model's many
// tracks stay far from the open-file limit; unlinked at once, in the output's folder). After libBigWig has closed the file with no zoom levels, append() copies the levels' blocks to its
// end, writes an R-tree index for each, a new closing magic number, and fills in the header's zoom count and the
// zoom headers that bwCreateHdr(fp, 10) reserved. Memory: a few blocks and one index entry per 1,024 records.
// Records (UCSC's bbi layout): chromId, start, end, validCount (u32), min, max, sum, sumSquares (float32); a
// record's [start, end) is the covered extent of its window. The levels written start at the first reduction of
// at least 4× the mean item span (libBigWig's rule) and stop at the longest chromosome with data.
// Test: build/tests/lowpass_tests -tc='bigwig: zoom*'; python/tests/test_cli_tracks.py (UCSC's reader, pybbi).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace lowpass::bwzoom {

class ZoomWriter {
 public:
  static constexpr int kLevels = 10;            // header slots bwCreateHdr(fp, 10) reserves
  static constexpr uint32_t kFirst = 16;        // the finest reduction; each next level is 4× coarser
  static constexpr uint32_t kRecordsPerBlock = 1024;  // 32 KiB uncompressed: libBigWig's inflate buffer
  static constexpr uint32_t kIndexBlockSize = 256;    // children per R-tree node (UCSC's default)

  // `spill_dir`: where the spill file goes (the output's folder); `what`: the output's name for messages.
  ZoomWriter(const std::string& spill_dir, std::string what);
  ~ZoomWriter();
  ZoomWriter(const ZoomWriter&) = delete;
  ZoomWriter& operator=(const ZoomWriter&) = delete;

  // An item of the file: `value` over [start, end) of chromosome `chrom`; items in file order (chromosome, start).
  void add(uint32_t chrom, uint32_t start, uint32_t end, float value);
  // Appends the levels to the closed bigWig at `path` whose chromosomes have lengths `chrom_lengths`, and patches
  // its header. No items: nothing is appended. Throws Error naming `what` when a read or write fails.
  void append(const std::string& path, const std::vector<uint32_t>& chrom_lengths);

 private:
  struct Record {
    uint32_t chrom = 0, start = 0, end = 0, window = 0;
    uint64_t count = 0;
    double min = 0, max = 0, sum = 0, sumsq = 0;
    bool open = false;
  };
  struct BlockEntry {  // one deflated block in the spill file (offset: there, then in the bigWig once appended)
    uint32_t chrom0, start0, chrom1, end1;
    uint64_t offset, size;
  };
  struct Level {
    uint32_t reduction = 0;
    Record cur;
    std::vector<unsigned char> buf;  // the block being filled (32 bytes a record)
    std::vector<BlockEntry> blocks;
    uint64_t records = 0;
    uint32_t chrom0 = 0, start0 = 0;  // the first record of `buf`
  };
  void merge(int k, uint32_t chrom, uint32_t start, uint32_t end, uint64_t count, double mn, double mx, double sum,
             double sumsq);
  void emit(int k);         // closes level k's current record: into its block, and merged into level k + 1
  void flush_block(int k);  // deflates level k's block into the spill file
  void finish();            // closes every current record and block
  std::string dir_, what_;
  Level levels_[kLevels];
  std::FILE* spill_ = nullptr;
  uint64_t spilled_ = 0;
  uint64_t items_ = 0;
  double span_sum_ = 0;
  std::vector<uint32_t> chroms_;  // the chromosomes with items, in order (the coarsest level: the longest)
  bool finished_ = false;
};

}  // namespace lowpass::bwzoom
