// libFuzzer target: .npy and .npz parsing (engine/npz.cpp) of arbitrary bytes, then conversion of
// every array to a tensor and to int64, and the row reader (NpzRowReader) on the same npz bytes; only lowpass::Error
// may escape. Input byte 0 picks npy (even) or npz (odd).
// Run: scripts/fuzz.sh 10 npz (corpus: tests/fuzz/corpus/npz/)
#include <algorithm>

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
    // The row reader (evaluate/predict/attribute --npz) on the same bytes from a file: rows in batches of 3 to the
    // end (a stored member's CRC is checked there), then one row out of order; each batch the size it claims.
    const std::string path = fuzz::write_input("rows.npz", body, n);
    LP_FUZZ_EXPECT_ERROR({
      npy::NpzRowReader r(path);
      for (const char* key : {"x", "y", "control", "arr_0"}) {
        if (!r.has(key)) continue;
        LP_FUZZ_EXPECT_ERROR({
          const Shape shp = r.shape(key);
          const int64_t N = shp.empty() ? 0 : std::min<int64_t>(shp[0], 64);
          for (int64_t s = 0; s < N; s += 3) {
            const npy::Array a = r.rows(key, s, std::min<int64_t>(3, N - s));
            if (a.bytes.size() != static_cast<size_t>(a.numel()) * npy::npy_size(a.dtype)) __builtin_trap();
            if (a.shape.empty() || a.shape[0] != std::min<int64_t>(3, N - s)) __builtin_trap();
          }
          if (N > 1) use(ctx, r.rows(key, N - 2, 1));
        });
      }
    });
  }
  return 0;
}
