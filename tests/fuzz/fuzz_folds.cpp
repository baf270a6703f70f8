// libFuzzer target: chromosome folds JSON (models/data/folds.cpp): read_folds on arbitrary bytes and
// check_folds against a three-chromosome genome; only lowpass::Error may escape.
// Run: scripts/fuzz.sh 10 folds (corpus: tests/fuzz/corpus/folds/)
#include "models/data/folds.h"
#include "tests/fuzz/fuzz_common.h"

using namespace lowpass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ChromSizes& genome = fuzz::three_chroms();
  std::string path = fuzz::write_input("folds.json", data, size);
  LP_FUZZ_EXPECT_ERROR({
    Folds f = read_folds(path);
    for (Split s : {Split::Train, Split::Valid, Split::Test})
      for (const auto& c : f.of(s))
        if (f.split_of(c) != static_cast<int>(s)) __builtin_trap();  // each chromosome in one split
    check_folds(f, genome, path);
  });
  return 0;
}
