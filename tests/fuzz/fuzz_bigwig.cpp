// libFuzzer target: corrupt bigWig files (models/data/bigwig.cpp over libBigWig). A valid bigWig (two chromosomes,
// runs of values, zoom levels) is written once; each input then edits a copy of its bytes: the first two bytes
// choose a truncation length (0xFFFF: none), each following triple (offset lo, offset hi, value) overwrites one
// byte. The copy is opened, its chromosome list checked, and windows of every chromosome read. Only lowpass::Error
// may escape, and values must be finite or zero-filled.
// Run: scripts/fuzz.sh 10 bigwig
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "models/data/bigwig.h"
#include "tests/fuzz/fuzz_common.h"

using namespace lowpass;

namespace {
std::string template_bytes() {
  const std::string path = fuzz::scratch_dir() + "/template.bw";
  ChromSizes sizes;
  sizes.add("chr1", 3000);
  sizes.add("chr2", 700);
  std::vector<std::vector<float>> values(2);
  values[0].assign(3000, 0.0f);
  values[1].assign(700, 0.0f);
  for (int64_t i = 0; i < 3000; ++i) values[0][static_cast<size_t>(i)] = (i / 37) % 3 == 0 ? 0.0f : float(i % 11);
  for (int64_t i = 100; i < 400; ++i) values[1][static_cast<size_t>(i)] = 2.5f;
  write_bigwig(path, sizes, values);
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
}  // namespace

// libBigWig leaks a few bytes on some of its own error paths (bwOpen of a corrupt chromosome list); those are its
// leaks, not ours, and would stop every run at the first such input.
extern "C" const char* __lsan_default_suppressions() { return "leak:libBigWig\n"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string tmpl = template_bytes();
  std::string bytes = tmpl;
  if (size >= 2) {
    const size_t cut = static_cast<size_t>(data[0]) | (static_cast<size_t>(data[1]) << 8);
    if (cut != 0xFFFF) bytes.resize(cut % (bytes.size() + 1));
  }
  for (size_t i = 2; i + 2 < size && !bytes.empty(); i += 3) {
    const size_t off = (static_cast<size_t>(data[i]) | (static_cast<size_t>(data[i + 1]) << 8)) % bytes.size();
    bytes[off] = static_cast<char>(data[i + 2]);
  }
  const std::string path = fuzz::write_input("in.bw", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  LP_FUZZ_EXPECT_ERROR({
    BigWig bw(path);
    const ChromSizes& cs = bw.chrom_sizes();
    for (int64_t c = 0; c < cs.size() && c < 4; ++c) {
      if (cs.lengths[static_cast<size_t>(c)] < 0) __builtin_trap();
      const int64_t n = std::min<int64_t>(cs.lengths[static_cast<size_t>(c)], 4096);
      std::vector<float> out(static_cast<size_t>(n));
      LP_FUZZ_EXPECT_ERROR({
        bw.values(cs.names[static_cast<size_t>(c)], 0, n, out.data());
        for (float v : out)
          if (!std::isfinite(v)) __builtin_trap();
      });
    }
  });
  return 0;
}
