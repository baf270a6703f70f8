// libFuzzer target: the JSON training config (models/train/config.cpp): load_config on arbitrary
// bytes (JSON syntax, types, ranges, unknown keys); only lowpass::Error may escape.
// Run: scripts/fuzz.sh 10 config (corpus: tests/fuzz/corpus/config/)
#include "models/train/config.h"
#include "tests/fuzz/fuzz_common.h"

using namespace lowpass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = fuzz::write_input("config.json", data, size);
  LP_FUZZ_EXPECT_ERROR({
    TrainConfig cfg = load_config(path);
    if (cfg.train.batch_size < 1 || cfg.train.epochs < 0) __builtin_trap();
    (void)cfg.resolved.dump();
  });
  return 0;
}
