// libFuzzer target: .npy and .npz parsing (engine/npz.cpp) of arbitrary bytes, then conversion of
// every array to a tensor and to int64; only lowpass::Error may escape. Input byte 0 picks npy (even) or npz (odd).
// Run: scripts/fuzz.sh 10 npz (corpus: tests/fuzz/corpus/npz/)
#include "engine/context.h"
#include "engine/npz.h"
#include "tests/fuzz/fuzz_common.h"

using namespace lowpass;

namespace {
void use(Context& ctx, const npy::Array& a) {
  if (a.bytes.size() != static_cast<size_t>(a.numel()) * npy::npy_size(a.dtype)) __builtin_trap();
  LP_FUZZ_EXPECT_ERROR((void)a.to_tensor(ctx, DType::F64, "fuzz"));
  LP_FUZZ_EXPECT_ERROR((void)a.to_tensor(ctx, std::nullopt, "fuzz"));
  if (npy::npy_is_int(a.dtype)) LP_FUZZ_EXPECT_ERROR((void)a.to_int64("fuzz"));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Context ctx(1);
  if (size < 1) return 0;
  const uint8_t* body = data + 1;
  size_t n = size - 1;
  if (data[0] % 2 == 0) {
    LP_FUZZ_EXPECT_ERROR(use(ctx, npy::parse_npy(body, n, "fuzz.npy")));
  } else {
    LP_FUZZ_EXPECT_ERROR({
      auto arrays = npy::parse_npz(body, n, "fuzz.npz");
      for (const auto& [k, a] : arrays) use(ctx, a);
    });
    LP_FUZZ_EXPECT_ERROR((void)npy::parse_npz(body, n, "fuzz.npz", {"x"}));
  }
  return 0;
}
