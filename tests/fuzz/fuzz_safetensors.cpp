// libFuzzer target: safetensors header and body parsing (engine/safetensors.cpp) and checkpoint
// verification/loading (engine/checkpoint.cpp) of arbitrary bytes; the same bytes as a file through safetensors::load
// (which must agree with parse) and load_model_weights; only lowpass::Error may escape.
// Run: scripts/fuzz.sh 10 safetensors (corpus: tests/fuzz/corpus/safetensors/)
#include "engine/checkpoint.h"
#include "engine/context.h"
#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_common.h"

using namespace lowpass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Context ctx(1);
  int64_t parsed = -1;  // tensors parse found, -1 when it refused the bytes
  LP_FUZZ_EXPECT_ERROR({
    safetensors::File f = safetensors::parse(ctx, data, size, "fuzz.safetensors");
    parsed = static_cast<int64_t>(f.tensors.size());
    for (const auto& [name, e] : f.tensors) {
      int64_t n = e.tensor.numel();
      if (!e.ints.empty() && static_cast<int64_t>(e.ints.size()) != n) __builtin_trap();
    }
    (void)f.named();
    (void)safetensors::data_section_offset(data, size, "fuzz.safetensors");
  });
  // The same bytes as a checkpoint file: verify_checkpoint never throws, load_checkpoint only Error.
  std::string path = fuzz::write_input("ck.safetensors", data, size);
  std::string why;
  bool ok = verify_checkpoint(path, &why);
  if (!ok && why.empty()) __builtin_trap();  // a refusal must say why
  LP_FUZZ_EXPECT_ERROR({
    Checkpoint ck = load_checkpoint(ctx, path);
    if (!ok) __builtin_trap();  // load must agree with verify
  });
  int64_t loaded = -1;  // the file reader (pread into each tensor) must accept what parse accepts, and only that
  LP_FUZZ_EXPECT_ERROR(loaded = static_cast<int64_t>(safetensors::load(ctx, path).tensors.size()));
  if (loaded != parsed) __builtin_trap();
  LP_FUZZ_EXPECT_ERROR((void)load_model_weights(ctx, path));  // a model folder's weights: checksum, finite values
  return 0;
}
