// libFuzzer target: MEME minimal-format motif parsing (models/data/meme.cpp) of arbitrary text; every
// motif returned must have width >= 1 and finite rows summing to 1. Only lowpass::Error may escape.
// Run: scripts/fuzz.sh 10 meme (corpus: tests/fuzz/corpus/meme/)
#include <cmath>
#include <string>

#include "models/data/meme.h"
#include "tests/fuzz/fuzz_common.h"

using namespace lowpass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  LP_FUZZ_EXPECT_ERROR({
    auto motifs = parse_meme(text, "fuzz.meme");
    for (const auto& m : motifs) {
      if (m.width() < 1) __builtin_trap();
      for (const auto& row : m.pwm) {
        double s = row[0] + row[1] + row[2] + row[3];
        if (!std::isfinite(s) || std::fabs(s - 1.0) > 1e-6) __builtin_trap();
        for (double p : row)
          if (!(p >= 0)) __builtin_trap();
      }
      (void)with_pseudocount(m, 1e-5);
    }
    if (!motifs.empty()) (void)select_motif(motifs, motifs.front().id, "fuzz.meme");
    (void)select_motif(motifs, "no-such-motif", "fuzz.meme");
  });
  return 0;
}
