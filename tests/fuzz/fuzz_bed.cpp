// libFuzzer target: BED3+/narrowPeak lines (models/data/bed.cpp): read_bed on arbitrary bytes in
// each format, with and without chromosome sizes, then interval merging; only lowpass::Error may escape.
// Run: scripts/fuzz.sh 10 bed (corpus: tests/fuzz/corpus/bed/)
#include "models/data/bed.h"
#include "tests/fuzz/fuzz_common.h"

using namespace lowpass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ChromSizes& genome = fuzz::three_chroms();
  std::string path = fuzz::write_input("peaks.bed", data, size);
  LP_FUZZ_EXPECT_ERROR((void)read_bed(path));
  BedOptions o;
  o.sizes = &genome;
  o.allow_empty = true;
  for (BedFormat fmt : {BedFormat::Auto, BedFormat::Bed, BedFormat::NarrowPeak}) {
    o.format = fmt;
    o.require_sorted = fmt == BedFormat::Bed;
    LP_FUZZ_EXPECT_ERROR({
      auto peaks = read_bed(path, o);
      IntervalSet set(genome.size());
      for (const auto& p : peaks) {
        if (p.chrom_index < 0 || p.start < 0 || p.start >= p.end || p.end > genome.lengths[p.chrom_index] ||
            p.summit < p.start || p.summit >= p.end)
          __builtin_trap();
      }
      set.add_peaks(peaks);
      set.finalize();
      for (const auto& p : peaks)
        if (!set.any_overlap(p.chrom_index, p.start, p.end)) __builtin_trap();
    });
  }
  return 0;
}
