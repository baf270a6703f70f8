// npy/npz: files written by numpy (np.savez stored + zip64 local headers, np.savez_compressed deflate),
// round trips incl. forced zip64 and the streaming writer, truncation/corruption, malformed npy headers.
// Run: build/tests/lowpass_tests -ts=npz   (fixtures: tests/fixtures/make_io_fixtures.py)
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/npz.h"

using namespace lowpass;
using namespace lowpass::npy;
namespace fs = std::filesystem;

namespace {

fs::path scratch_dir() {
  fs::path d = fs::temp_directory_path() / ("lowpass_npz_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

void check_numpy_arrays(Context& ctx, const std::map<std::string, Array>& a) {
  REQUIRE(a.size() == 9);
  // x: (3, 4, 5) one-hot uint8, base (n*7 + l*3) % 4 is hot
  const Array& x = a.at("x");
  CHECK(x.dtype == NpyDType::U1);
  CHECK(x.shape == Shape{3, 4, 5});
  Tensor xt = x.to_tensor(ctx);
  CHECK(xt.dtype() == DType::F32);
  auto xv = xt.to_vector<float>();
  for (int n = 0; n < 3; ++n)
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 5; ++l) CHECK(xv[(n * 4 + c) * 5 + l] == ((n * 7 + l * 3) % 4 == c ? 1.0f : 0.0f));
  // y: (3, 2) int64 in {-1, 0, 1}
  const Array& y = a.at("y");
  CHECK(y.dtype == NpyDType::I8);
  CHECK(y.shape == Shape{3, 2});
  auto yi = y.to_int64();
  auto yf = y.to_tensor(ctx).to_vector<float>();
  for (int i = 0; i < 6; ++i) {
    CHECK(yi[i] == i % 3 - 1);
    CHECK(yf[i] == static_cast<float>(i % 3 - 1));
  }
  auto f4 = a.at("f4").to_tensor(ctx).to_vector<float>();
  REQUIRE(f4.size() == 7);
  for (int i = 0; i < 7; ++i) CHECK(f4[i] == i * 0.25f - 1);
  Tensor f8 = a.at("f8").to_tensor(ctx);
  CHECK(f8.dtype() == DType::F64);
  for (int i = 0; i < 4; ++i) CHECK(f8.to_vector<double>()[i] == i / 3.0);
  CHECK(a.at("i1").to_int64() == std::vector<int64_t>{-128, -1, 0, 127});
  CHECK(a.at("i4").dtype == NpyDType::I4);
  CHECK(a.at("i4").shape == Shape{1, 2});
  CHECK(a.at("i4").to_int64() == std::vector<int64_t>{-5, 6});
  CHECK(a.at("b").dtype == NpyDType::B1);
  CHECK(a.at("b").to_int64() == std::vector<int64_t>{1, 0, 0, 1});
  CHECK(a.at("scalar").shape.empty());
  CHECK(a.at("scalar").to_tensor(ctx).item() == 2.5);
  CHECK(a.at("empty").shape == Shape{2, 0});
  CHECK(a.at("empty").to_tensor(ctx).numel() == 0);
  CHECK_THROWS_AS(a.at("f4").to_int64(), Error);
}

}  // namespace

TEST_SUITE("npz") {
TEST_CASE("reads np.savez (stored, zip64 local headers) and np.savez_compressed (deflate)") {
  Context ctx(1, 0);
  for (const char* p : {"tests/fixtures/io_numpy.npz", "tests/fixtures/io_numpy_compressed.npz"}) {
    INFO(p);
    REQUIRE_MESSAGE(fs::exists(p), p, " missing: run tests/fixtures/make_io_fixtures.py");
    check_numpy_arrays(ctx, load_npz(p));
    auto only = load_npz(p, {"y"});
    CHECK(only.size() == 1);
    CHECK_THROWS_WITH_AS(load_npz(p, {"status"}), doctest::Contains("no array named 'status'"), Error);
  }
}

TEST_CASE("NpzRowReader: rows of np.savez, np.savez_compressed and lowpass files equal load_npz's, any split") {
  Context ctx(1, 0);
  for (const char* p : {"tests/fixtures/io_numpy.npz", "tests/fixtures/io_numpy_compressed.npz"}) {
    INFO(p);
    const auto all = load_npz(p);
    NpzRowReader r(p);
    CHECK(r.path() == p);
    std::vector<std::string> names;  // keys(): load_npz's names in its (sorted) order
    for (const auto& kv : all) names.push_back(kv.first);
    CHECK(r.keys() == names);
    for (const auto& kv : all) {
      const std::string& key = kv.first;
      const Array& a = kv.second;
      INFO(key);
      REQUIRE(r.has(key));
      if (a.shape.empty()) {
        CHECK_THROWS_WITH_AS(r.rows(key, 0, 0), doctest::Contains("a scalar has no rows"), Error);
        continue;
      }
      CHECK(r.shape(key) == a.shape);
      CHECK(r.dtype(key) == a.dtype);
      for (int64_t step : {1, 2, 5}) {
        std::vector<uint8_t> got;
        for (int64_t s = 0; s < a.shape[0]; s += step) {
          const Array part = r.rows(key, s, std::min(step, a.shape[0] - s));
          CHECK(part.shape[0] == std::min(step, a.shape[0] - s));
          got.insert(got.end(), part.bytes.begin(), part.bytes.end());
        }
        CHECK(got == a.bytes);
      }
      if (a.shape[0] > 1) {  // a row out of order
        const auto per = static_cast<std::ptrdiff_t>(a.bytes.size() / a.shape[0]);
        CHECK(r.rows(key, 1, 1).bytes == std::vector<uint8_t>(a.bytes.begin() + per, a.bytes.begin() + 2 * per));
      }
      CHECK_THROWS_WITH_AS(r.rows(key, a.shape[0], 1), doctest::Contains("outside"), Error);
      CHECK_THROWS_WITH_AS(r.rows(key, -1, 1), doctest::Contains("outside"), Error);
    }
    CHECK_FALSE(r.has("status"));
    CHECK_THROWS_WITH_AS(r.shape("status"), doctest::Contains("no array named 'status' (arrays: b, empty, f4"), Error);
  }
  // A lowpass file (stored, aligned headers): a flipped payload byte is a CRC error once the rows were read in
  // order to the end, naming the file and the member; other arrays of the file still read.
  fs::path d = scratch_dir();
  Tensor y = Tensor::uniform(ctx, {9, 2, 3}, -1, 1, DType::F32);
  Tensor x = Tensor::uniform(ctx, {9, 4}, -1, 1, DType::F64);
  save_npz((d / "rows.npz").string(), NamedTensors{{"x", x}, {"y", y}});
  NpzRowReader ok((d / "rows.npz").string());
  CHECK(ok.rows("y", 0, 9).bytes == from_tensor(y).bytes);
  const Array xa = from_tensor(x);
  CHECK(ok.rows("x", 3, 4).bytes == std::vector<uint8_t>(xa.bytes.begin() + 3 * 32, xa.bytes.begin() + 7 * 32));
  auto bytes = safetensors::read_file_bytes((d / "rows.npz").string());
  const Array ya = from_tensor(y);
  const auto at = std::search(bytes.begin(), bytes.end(), ya.bytes.begin() + 40, ya.bytes.begin() + 48);
  REQUIRE(at != bytes.end());
  *(at + 3) ^= 0x10;
  {
    std::FILE* fp = std::fopen((d / "bad.npz").c_str(), "wb");
    REQUIRE(fp);
    std::fwrite(bytes.data(), 1, bytes.size(), fp);
    std::fclose(fp);
  }
  CHECK_THROWS_WITH_AS(load_npz((d / "bad.npz").string()), doctest::Contains("CRC-32 mismatch"), Error);
  NpzRowReader bad((d / "bad.npz").string());
  CHECK(bad.rows("y", 0, 1).bytes.size() == 24);  // checked only at the end
  CHECK(bad.rows("x", 0, 9).bytes == from_tensor(x).bytes);
  CHECK_THROWS_WITH_AS((bad.rows("y", 1, 4), bad.rows("y", 5, 4)),
                       doctest::Contains("bad.npz: member 'y.npy': CRC-32 mismatch"), Error);
  fs::remove_all(d);
}

TEST_CASE("NpzRowReader: truncated and corrupted files are refused or read consistently, never crash") {
  for (const char* p : {"tests/fixtures/io_numpy.npz", "tests/fixtures/io_numpy_compressed.npz"}) {
    const auto bytes = safetensors::read_file_bytes(p);
    fs::path d = scratch_dir();
    const std::string f = (d / "flip.npz").string();
    int refused = 0;
    for (size_t pos = 0; pos < bytes.size(); pos += 3) {
      auto b = bytes;
      b[pos] ^= 0x5a;
      std::FILE* fp = std::fopen(f.c_str(), "wb");
      REQUIRE(fp);
      std::fwrite(b.data(), 1, b.size(), fp);
      std::fclose(fp);
      try {
        NpzRowReader r(f);
        for (const char* k : {"x", "y", "f4", "f8", "b", "i1", "i4", "empty"}) {
          if (!r.has(k)) continue;
          const Shape sh = r.shape(k);
          for (int64_t s = 0; s < sh[0]; ++s) {
            const Array row = r.rows(k, s, 1);
            CHECK(row.bytes.size() == static_cast<size_t>(row.numel()) * npy_size(row.dtype));
          }
        }
      } catch (const Error&) {
        ++refused;
      }
    }
    MESSAGE(std::string(p), ": NpzRowReader refused ", refused, " single-byte corruptions");
    CHECK(refused > 0);
    fs::remove_all(d);
  }
}

TEST_CASE("Fortran order and big-endian arrays are refused with a clear message") {
  CHECK_THROWS_WITH_AS(load_npy("tests/fixtures/io_numpy_fortran.npy"), doctest::Contains("Fortran order"), Error);
  CHECK_THROWS_WITH_AS(load_npy("tests/fixtures/io_numpy_bigendian.npy"), doctest::Contains("big-endian"), Error);
}

TEST_CASE("round trips: npy, npz (plain and forced zip64), streaming writer, integer dtypes") {
  Context ctx(1, 4);
  fs::path d = scratch_dir();
  Tensor a = Tensor::uniform(ctx, {2, 4, 7}, -3, 3, DType::F32);
  Tensor b = Tensor::uniform(ctx, {5}, -3, 3, DType::F64);
  Tensor one = Tensor::full(ctx, {1}, 4.0);
  Tensor ints = Tensor::from_vector(ctx, {2, 3}, std::vector<float>{-1, 0, 1, 2, 100, -100});
  for (bool z64 : {false, true}) {
    std::string p = (d / (z64 ? "z64.npz" : "plain.npz")).string();
    save_npz(p, {{"a", from_tensor(a)}, {"b", from_tensor(b)}, {"one", from_tensor(one)},
                 {"i8", from_tensor(ints, NpyDType::I8)}, {"i1", from_tensor(ints, NpyDType::I1)},
                 {"u1", from_tensor(Tensor::from_vector(ctx, {2}, std::vector<float>{0, 255}), NpyDType::U1)},
                 {"bool", from_tensor(Tensor::from_vector(ctx, {3}, std::vector<float>{1, 0, 1}), NpyDType::B1)},
                 {"empty", from_tensor(Tensor::zeros(ctx, {0, 3}))}},
             z64);
    auto r = load_npz(p);
    CHECK(r.size() == 8);
    CHECK(r.at("a").to_tensor(ctx).to_vector<float>() == a.to_vector<float>());
    CHECK(r.at("b").to_tensor(ctx).to_vector<double>() == b.to_vector<double>());
    CHECK(r.at("one").shape == Shape{1});
    CHECK(r.at("i8").to_int64() == std::vector<int64_t>{-1, 0, 1, 2, 100, -100});
    CHECK(r.at("i1").to_int64() == std::vector<int64_t>{-1, 0, 1, 2, 100, -100});
    CHECK(r.at("u1").to_int64() == std::vector<int64_t>{0, 255});
    CHECK(r.at("bool").to_int64() == std::vector<int64_t>{1, 0, 1});
    CHECK(r.at("empty").shape == Shape{0, 3});
  }
  CHECK_THROWS_AS(from_tensor(ints, NpyDType::U1), Error);  // -1 not a uint8
  CHECK_THROWS_AS(from_tensor(Tensor::full(ctx, {1}, 0.5), NpyDType::I4), Error);
  // npy
  std::string pn = (d / "a.npy").string();
  save_npy(pn, from_tensor(b));
  CHECK(load_npy(pn).to_tensor(ctx).to_vector<double>() == b.to_vector<double>());
  // streaming: (N, 4, L) written in chunks of rows, converted to float32 on the way
  const int64_t N = 13, L = 9;
  Tensor big = Tensor::uniform(ctx, {N, 4, L}, -1, 1, DType::F64);
  std::string ps = (d / "stream.npz").string();
  {
    NpzWriter w(ps);
    w.begin("attr", NpyDType::F4, {N, 4, L});
    auto v = big.to_vector<double>();
    for (int64_t s = 0; s < N; s += 4) {
      int64_t e = std::min(N, s + 4);
      std::vector<double> chunk(v.begin() + s * 4 * L, v.begin() + e * 4 * L);
      w.append(Tensor::from_vector(ctx, {e - s, 4, L}, chunk));
    }
    w.end();
    w.add("idx", from_tensor(Tensor::from_vector(ctx, {3}, std::vector<float>{5, 6, 7}), NpyDType::I8));
    w.close();
  }
  auto r = load_npz(ps);
  auto got = r.at("attr").to_tensor(ctx).to_vector<float>();
  auto want = big.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == static_cast<float>(want[i]));
  CHECK(r.at("idx").to_int64() == std::vector<int64_t>{5, 6, 7});
  {
    std::string pw = (d / "wrong.npz").string();
    NpzWriter w(pw);
    w.begin("x", NpyDType::F4, {2, 3});
    w.append(Tensor::zeros(ctx, {5}));
    CHECK_THROWS_AS(w.end(), Error);                    // 5 of 6 elements
    CHECK_THROWS_AS(w.append(Tensor::zeros(ctx, {2})), Error);  // 7 > 6
  }  // abandoned: nothing left behind
  CHECK_FALSE(fs::exists(d / "wrong.npz"));
  int files = 0;
  for (const auto& e : fs::directory_iterator(d)) files += e.path().string().find(".tmp.") != std::string::npos;
  CHECK(files == 0);
  fs::remove_all(d);
}

TEST_CASE("integer values a float32 cannot hold exactly are refused unless read as float64") {
  Context ctx(1, 0);
  Tensor big = Tensor::full(ctx, {2}, 16777217.0, DType::F64);  // 2^24 + 1
  Array a = from_tensor(big, NpyDType::I8);
  CHECK_THROWS_WITH_AS(a.to_tensor(ctx, DType::F32, "y"), doctest::Contains("float64"), Error);
  CHECK(a.to_tensor(ctx, DType::F64).to_vector<double>()[0] == 16777217.0);
}

TEST_CASE("truncated and corrupted npz files are refused, never crash") {
  Context ctx(1, 0);
  for (const char* p : {"tests/fixtures/io_numpy.npz", "tests/fixtures/io_numpy_compressed.npz"}) {
    auto bytes = safetensors::read_file_bytes(p);
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
      INFO(p, " cut at ", cut);
      CHECK_THROWS_AS(parse_npz(bytes.data(), cut, "cut.npz"), Error);
    }
    int refused = 0, accepted = 0;
    for (size_t pos = 0; pos < bytes.size(); ++pos) {
      auto b = bytes;
      b[pos] ^= 0x5a;
      try {
        auto r = parse_npz(b.data(), b.size(), "flip.npz");
        for (const auto& [k, arr] : r) CHECK(arr.bytes.size() == static_cast<size_t>(arr.numel()) * npy_size(arr.dtype));
        ++accepted;  // e.g. a timestamp, attribute or comment byte
      } catch (const Error&) {
        ++refused;
      }
    }
    MESSAGE(std::string(p), ": single-byte corruptions: ", refused, " refused, ", accepted, " harmless");
    CHECK(refused > accepted);
  }
}

TEST_CASE("malformed npy headers and payloads") {
  auto npy = [](const std::string& dict, size_t payload) {
    std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    uint16_t n = static_cast<uint16_t>(dict.size());
    b.push_back(n & 0xff);
    b.push_back(n >> 8);
    b.insert(b.end(), dict.begin(), dict.end());
    b.resize(b.size() + payload, 0);
    return b;
  };
  auto refuse = [](const std::vector<uint8_t>& b, const char* needle) {
    INFO(needle);
    CHECK_THROWS_WITH_AS(parse_npy(b.data(), b.size(), "bad.npy"), doctest::Contains(needle), Error);
  };
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  {
    auto b = npy(ok, 24);
    CHECK(parse_npy(b.data(), b.size(), "ok").shape == Shape{2, 3});
  }
  refuse(npy(ok, 20), "truncated");
  refuse(npy(ok, 28), "trailing");
  refuse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (999999999999999999, 999999999999999999), }", 0), "overflows");
  // The product fits in uint64 and ends at 0, but its running product passes int64 first (fuzz_npz's find).
  refuse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (7764649395093504, 1616, 0), }", 0), "overflows");
  refuse(npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8), "unsupported dtype");
  refuse(npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4), "structured");
  refuse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 4), "shape entry");
  refuse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4), "unexpected key");
  refuse(npy("{'descr': '<f4', 'shape': (1,), }", 4), "lacks");
  refuse(npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", 4), "True or False");
  refuse(npy("{'descr': '<f4", 0), "unterminated");
  {
    auto b = npy(ok, 24);
    b[8] = 0xff, b[9] = 0xff;  // header length past the end
    refuse(b, "past the end");
  }
  {
    auto b = npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", 2);
    b.back() = 2;
    refuse(b, "bool element");
  }
  std::vector<uint8_t> junk = {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0};
  refuse(junk, "bad magic");
  CHECK_THROWS_WITH_AS(parse_npz(junk.data(), junk.size(), "x.npz"), doctest::Contains("x.npz"), Error);
}

TEST_CASE("a deflate member claiming an absurd size is refused before allocating") {
  auto bytes = safetensors::read_file_bytes("tests/fixtures/io_numpy_compressed.npz");
  // Find the central-directory entry of x.npy and set its uncompressed size to 2^31.
  size_t pos = 0;
  for (size_t i = 0; i + 46 < bytes.size(); ++i) {
    uint32_t sig;
    std::memcpy(&sig, &bytes[i], 4);
    if (sig == 0x02014b50 && std::memcmp(&bytes[i + 46], "x.npy", 5) == 0) pos = i;
  }
  REQUIRE(pos > 0);
  uint32_t huge = 0x80000000u;
  std::memcpy(&bytes[pos + 24], &huge, 4);
  CHECK_THROWS_WITH_AS(parse_npz(bytes.data(), bytes.size(), "bomb.npz"), doctest::Contains("claims"), Error);
}
}
