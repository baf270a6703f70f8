// safetensors and checkpoints: round trips, a file written by Python's safetensors, truncation at every
// cut point, byte-flip corruption, hand-made malformed headers, atomic writes, checkpoint checksums.
// Run: build/tests/lowpass_tests -ts=safetensors   (fixture: tests/fixtures/make_io_fixtures.py)
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "engine/checkpoint.h"
#include "engine/optim.h"
#include "engine/safetensors.h"

using namespace lowpass;
namespace st = lowpass::safetensors;
namespace fs = std::filesystem;

namespace {

fs::path scratch_dir(const char* tag) {
  fs::path d = fs::temp_directory_path() / ("lowpass_" + std::string(tag) + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<uint8_t> with_header(const std::string& json, size_t data_bytes) {
  std::vector<uint8_t> b(8 + json.size() + data_bytes, 0);
  uint64_t n = json.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, json.data(), json.size());
  return b;
}

// Parse must fail with a lowpass::Error whose message contains `needle`.
void refuse(const std::vector<uint8_t>& b, const std::string& needle) {
  Context ctx(1, 0);
  INFO("expecting an Error containing: ", needle);
  bool threw = false;
  try {
    st::parse(ctx, b.data(), b.size(), "bad.safetensors");
  } catch (const Error& e) {
    threw = true;
    std::string m = e.what();
    INFO("message: ", m);
    CHECK(m.find("bad.safetensors") != std::string::npos);
    CHECK(m.find(needle) != std::string::npos);
  }
  CHECK(threw);
}

std::vector<st::WriteEntry> sample_entries(Context& ctx) {
  Tensor a = Tensor::uniform(ctx, {3, 1, 7}, -2, 2, DType::F32);
  a.data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  a.data<float>()[1] = -0.0f;
  a.data<float>()[2] = std::numeric_limits<float>::infinity();
  return {
      {"conv.weight", a, st::FileDType::F32},
      {"scalar", Tensor::full(ctx, {}, 7.0, DType::F64), st::FileDType::F64},
      {"len1", Tensor::full(ctx, {1}, -3.25, DType::F32), st::FileDType::F32},
      {"empty", Tensor::zeros(ctx, {0, 5}), st::FileDType::F32},
      {"d64", Tensor::uniform(ctx, {5}, -1, 1, DType::F64), st::FileDType::F64},
      {"bn.num_batches_tracked", Tensor::full(ctx, {}, 12345.0, DType::F32), st::FileDType::I64},
      {"half", Tensor::from_vector(ctx, {4}, std::vector<float>{1.5f, -2.0f, 65504.0f, 0.000061035156f}), st::FileDType::F16},
      {"bf", Tensor::from_vector(ctx, {3}, std::vector<float>{1.0f, -3.0f, 0.5f}), st::FileDType::BF16},
      {"i32", Tensor::from_vector(ctx, {2}, std::vector<float>{-7, 9}), st::FileDType::I32},
      {"u8", Tensor::from_vector(ctx, {2}, std::vector<float>{0, 255}), st::FileDType::U8},
      {"flag", Tensor::from_vector(ctx, {3}, std::vector<float>{1, 0, 1}), st::FileDType::BOOL},
  };
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  return a.numel() == 0 || std::memcmp(a.raw(), b.raw(), a.numel() * dtype_size(a.dtype())) == 0;
}

}  // namespace

TEST_SUITE("safetensors") {
TEST_CASE("round trip of every dtype, awkward shapes and metadata") {
  Context ctx(1, 3);
  auto entries = sample_entries(ctx);
  std::map<std::string, std::string> meta = {{"epoch", "4"}, {"unicode", "β=0.9 ✓"}, {"empty", ""}};
  auto bytes = st::serialize(entries, meta);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);  // header padded like Python's writer
  st::File f = st::parse(ctx, bytes.data(), bytes.size(), "mem");
  CHECK(f.metadata == meta);
  REQUIRE(f.tensors.size() == entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& [name_, e_] = f.tensors[i];
    const auto& name = name_; const auto& e = e_;  // named copies: clang < 16 cannot capture structured bindings
    INFO(name);
    CHECK(name == entries[i].name);  // data order = write order
    CHECK(e.dtype == entries[i].dtype);
    CHECK(e.tensor.shape() == entries[i].tensor.shape());
    if (e.dtype == st::FileDType::F32 || e.dtype == st::FileDType::F64) CHECK(same_bits(e.tensor, entries[i].tensor));
    auto want = entries[i].tensor.to_vector<double>();
    auto got = e.tensor.to_vector<double>();
    for (size_t k = 0; k < want.size(); ++k)
      if (!std::isnan(want[k])) CHECK(got[k] == want[k]);  // all sample values are exact in every dtype
    if (st::file_dtype_is_int(e.dtype))
      for (size_t k = 0; k < want.size(); ++k) CHECK(e.ints[k] == static_cast<int64_t>(want[k]));
  }
  CHECK(std::signbit(f.at("conv.weight").tensor.data<float>()[1]));
  CHECK(f.at("bn.num_batches_tracked").ints[0] == 12345);
  CHECK_THROWS_AS(f.at("missing"), Error);
}

TEST_CASE("F16/BF16 rounding and integer range checks on write") {
  Context ctx(1, 0);
  // 1 + 2^-11 is halfway between two halves: rounds to even (1.0); 1 + 3·2^-11 rounds up.
  Tensor h = Tensor::from_vector(ctx, {4}, std::vector<float>{1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 1e6f, 1e-8f});
  auto b = st::serialize({{"h", h, st::FileDType::F16}, {"b", h, st::FileDType::BF16}});
  st::File f = st::parse(ctx, b.data(), b.size(), "mem");
  auto hv = f.at("h").tensor.to_vector<float>();
  CHECK(hv[0] == 1.0f);
  CHECK(hv[1] == 1.0f + 4 * 0x1p-11f);
  CHECK(std::isinf(hv[2]));
  CHECK(hv[3] == doctest::Approx(1e-8).epsilon(0.05));  // subnormal half (spacing 6e-8): 0
  auto bv = f.at("b").tensor.to_vector<float>();
  CHECK(bv[0] == 1.0f);
  CHECK(bv[2] == doctest::Approx(1e6).epsilon(1e-2));
  Tensor frac = Tensor::from_vector(ctx, {2}, std::vector<float>{1.0f, 2.5f});
  CHECK_THROWS_AS(st::serialize({{"x", frac, st::FileDType::I64}}), Error);
  Tensor big = Tensor::from_vector(ctx, {1}, std::vector<float>{300.0f});
  CHECK_THROWS_AS(st::serialize({{"x", big, st::FileDType::U8}}), Error);
  Tensor two = Tensor::from_vector(ctx, {1}, std::vector<float>{2.0f});
  CHECK_THROWS_AS(st::serialize({{"x", two, st::FileDType::BOOL}}), Error);
  CHECK_THROWS_AS(st::serialize({{"x", two, st::FileDType::F32}, {"x", two, st::FileDType::F32}}), Error);
  CHECK_THROWS_AS(st::serialize({{"__metadata__", two, st::FileDType::F32}}), Error);
}

TEST_CASE("reads a file written by Python's safetensors") {
  Context ctx(1, 0);
  const std::string path = "tests/fixtures/io_python.safetensors";
  REQUIRE_MESSAGE(fs::exists(path), path, " missing: run tests/fixtures/make_io_fixtures.py");
  st::File f = st::load(ctx, path);
  CHECK(f.metadata.at("epoch") == "3");
  CHECK(f.metadata.at("note") == "written by safetensors");
  auto value = [](int64_t i) { return (static_cast<double>(i) - 3) * 0.5; };
  struct Want { const char* name; st::FileDType dt; Shape shape; int64_t n; };
  for (Want w : {Want{"f32", st::FileDType::F32, {2, 3}, 6}, Want{"f64", st::FileDType::F64, {5}, 5},
                 Want{"f16", st::FileDType::F16, {4}, 4}, Want{"bf16", st::FileDType::BF16, {3}, 3}}) {
    INFO(w.name);
    const auto& e = f.at(w.name);
    CHECK(e.dtype == w.dt);
    CHECK(e.tensor.shape() == w.shape);
    auto v = e.tensor.to_vector<double>();
    for (int64_t i = 0; i < w.n; ++i) CHECK(v[i] == value(i));
  }
  CHECK(f.at("f64").tensor.dtype() == DType::F64);
  CHECK(f.at("f16").tensor.dtype() == DType::F32);
  const auto& i64 = f.at("i64");
  CHECK(i64.dtype == st::FileDType::I64);
  CHECK(i64.tensor.shape().empty());
  CHECK(i64.ints[0] == 123456789012);
  CHECK(f.at("i32").ints == std::vector<int64_t>{-2, -1, 0, 1, 2, 3});
  CHECK(f.at("u8").ints == std::vector<int64_t>{250, 251, 252, 253, 254, 255});
  CHECK(f.at("bool").ints == std::vector<int64_t>{1, 0, 1});
  CHECK(f.at("empty").tensor.shape() == Shape{0, 4});
  // Our re-serialisation of it parses back identically (and Python reads ours: docs/formats.md).
  std::vector<st::WriteEntry> re;
  for (const auto& [n, e] : f.tensors) re.push_back({n, e.tensor, e.dtype});
  auto b = st::serialize(re, f.metadata);
  st::File g = st::parse(ctx, b.data(), b.size(), "re");
  for (const auto& [n, e] : f.tensors) CHECK(same_bits(g.at(n).tensor, e.tensor));
}

TEST_CASE("truncated files are refused at every cut point") {
  Context ctx(1, 5);
  auto bytes = st::serialize(sample_entries(ctx), {{"k", "v"}});
  int refused = 0;
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    INFO("cut at ", cut, " of ", bytes.size());
    CHECK_THROWS_AS(st::parse(ctx, bytes.data(), cut, "cut.safetensors"), Error);
    ++refused;
  }
  CHECK(refused == static_cast<int>(bytes.size()));
  // The file reader (header first, tensors read into place) refuses the same cuts.
  fs::path d = scratch_dir("st_cut");
  const std::string cutp = (d / "cut.safetensors").string();
  for (size_t cut = 0; cut < bytes.size(); cut += 5) {
    INFO("file cut at ", cut);
    st::write_file_atomic(cutp, std::vector<uint8_t>(bytes.begin(), bytes.begin() + cut));
    CHECK_THROWS_AS(st::load(ctx, cutp), Error);
  }
  st::write_file_atomic(cutp, bytes);
  st::File whole = st::load(ctx, cutp);
  st::File mem = st::parse(ctx, bytes.data(), bytes.size(), "mem");
  REQUIRE(whole.tensors.size() == mem.tensors.size());
  for (size_t i = 0; i < mem.tensors.size(); ++i) {
    CHECK(whole.tensors[i].first == mem.tensors[i].first);
    CHECK(whole.tensors[i].second.dtype == mem.tensors[i].second.dtype);
    CHECK(whole.tensors[i].second.ints == mem.tensors[i].second.ints);
    CHECK(same_bits(whole.tensors[i].second.tensor, mem.tensors[i].second.tensor));
  }
  fs::remove_all(d);
  // Extra trailing bytes are refused too (the data section must be exactly covered).
  bytes.push_back(0);
  CHECK_THROWS_AS(st::parse(ctx, bytes.data(), bytes.size(), "long.safetensors"), Error);
}

TEST_CASE("every single-byte corruption of the header is refused or parses to a consistent file") {
  Context ctx(1, 6);
  auto good = st::serialize(sample_entries(ctx), {{"k", "v"}});
  uint64_t n;
  std::memcpy(&n, good.data(), 8);
  int refused = 0, accepted = 0;
  for (size_t pos = 0; pos < 8 + n; ++pos) {
    for (uint8_t x : {uint8_t{0x01}, uint8_t{0x20}, uint8_t{0x80}, uint8_t{0xff}}) {
      auto b = good;
      b[pos] ^= x;
      try {
        st::File f = st::parse(ctx, b.data(), b.size(), "flip");
        ++accepted;  // e.g. a changed name or metadata character: still self-consistent
        size_t total = 0;
        for (const auto& [nm, e] : f.tensors) total += e.tensor.numel() * st::file_dtype_size(e.dtype);
        CHECK(total == good.size() - 8 - n);
      } catch (const Error&) {
        ++refused;
      }
    }
  }
  MESSAGE("header byte flips: ", refused, " refused, ", accepted, " accepted as consistent");
  CHECK(refused > accepted);
}

TEST_CASE("malformed headers give a message naming the file and the field") {
  refuse({1, 2, 3}, "8-byte");
  {
    auto b = with_header("{}", 0);
    uint64_t huge = ~0ull;
    std::memcpy(b.data(), &huge, 8);
    refuse(b, "header length");
  }
  {
    auto b = with_header("{}", 0);
    uint64_t past = 100;
    std::memcpy(b.data(), &past, 8);
    refuse(b, "past the end");
  }
  refuse(with_header("[1, 2]   ", 0), "'{'");
  refuse(with_header("{\"a\": ", 0), "not valid JSON");
  refuse(with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", 16), "twice");
  refuse(with_header(R"({"a": {"dtype": "Q8", "shape": [2], "data_offsets": [0, 8]}})", 8), "'a' field 'dtype'");
  refuse(with_header(R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8), "'a' field 'shape'");
  refuse(with_header(R"({"a": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", 8), "'a' field 'shape'");
  refuse(with_header(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 8], "data_offsets": [0, 8]}})", 8), "overflow");
  refuse(with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8), "'a' field 'data_offsets'");
  refuse(with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}})", 8), "past the data section");
  refuse(with_header(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8), "needs 12");
  refuse(with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12), "overlap");
  refuse(with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}})", 16), "gap");
  refuse(with_header(R"({"a": {"dtype": "F32", "shape": [2]}})", 8), "'a' field 'data_offsets'");
  refuse(with_header(R"({"a": 5})", 0), "'a' is not an object");
  refuse(with_header(R"({"__metadata__": {"k": 3}})", 0), "'k' is not a string");
  {
    // Deep nesting must not overflow the stack (the JSON parser is iterative): refused as a bad entry.
    std::string deep = "{\"a\": " + std::string(200000, '[') + std::string(200000, ']') + "}";
    refuse(with_header(deep, 0), "'a' is not an object");
  }
  {
    auto b = with_header(R"({"a": {"dtype": "BOOL", "shape": [1], "data_offsets": [0, 1]}})", 1);
    b.back() = 7;
    refuse(b, "BOOL element");
  }
}

TEST_CASE("atomic save: replaces in place, leaves no temporary files, and fails cleanly") {
  Context ctx(1, 8);
  fs::path d = scratch_dir("st_atomic");
  std::string path = (d / "m.safetensors").string();
  NamedTensors a = {{"w", Tensor::uniform(ctx, {4, 3}, -1, 1)}};
  st::save(path, a, {{"v", "1"}});
  NamedTensors b = {{"w", Tensor::uniform(ctx, {2}, -1, 1)}, {"bn.num_batches_tracked", Tensor::full(ctx, {}, 3)}};
  st::save(path, b, {{"v", "2"}});
  st::File f = st::load(ctx, path);
  CHECK(f.metadata.at("v") == "2");
  CHECK(same_bits(f.at("w").tensor, b[0].second));
  CHECK(f.at("bn.num_batches_tracked").dtype == st::FileDType::I64);  // PyTorch's counter type kept
  int files = 0;
  for (const auto& e : fs::directory_iterator(d)) files += e.is_regular_file();
  CHECK(files == 1);
  CHECK_THROWS_AS(st::save((d / "no_such_dir" / "x.safetensors").string(), a), Error);
  CHECK_THROWS_AS(st::load(ctx, (d / "absent.safetensors").string()), Error);
  fs::remove_all(d);
}

TEST_CASE("checkpoint: model + optimiser + metadata round trip with checksum") {
  Context ctx(2, 11);
  fs::path d = scratch_dir("ckpt");
  std::string path = (d / "ckpt.safetensors").string();
  Tensor w = Tensor::uniform(ctx, {3, 4, 5}, -1, 1);
  w.set_requires_grad(true);
  Tensor nbt = Tensor::full(ctx, {}, 17);
  Adam opt({{"conv.weight", w}});
  w.set_grad(Tensor::uniform(ctx, {3, 4, 5}, -1, 1));
  opt.step();
  Checkpoint ck;
  ck.model = {{"conv.weight", w.detach()}, {"bn.num_batches_tracked", nbt}};
  ck.optimizer = opt.state();
  ck.optimizer_type = opt.type();
  ck.epoch = 2;
  ck.step = 345;
  ctx.rng().uniform();
  ck.rng_state = ctx.rng().state();
  ck.sampler_state = "perm=7,3,1;pos=12";
  ck.config_hash = fnv1a64_hex("{\"model\": {}}");
  ck.extra = {{"git", "abc"}};
  save_checkpoint(path, ck);
  std::string why;
  CHECK(verify_checkpoint(path, &why));
  Checkpoint r = load_checkpoint(ctx, path);
  CHECK(r.epoch == 2);
  CHECK(r.step == 345);
  CHECK(r.rng_state == ck.rng_state);
  CHECK(r.sampler_state == ck.sampler_state);
  CHECK(r.config_hash == ck.config_hash);
  CHECK(r.config_hash.size() == 16);
  CHECK(r.optimizer_type == "adam");
  CHECK(r.extra.at("git") == "abc");
  REQUIRE(r.model.size() == 2);
  CHECK(same_bits(r.model[0].second, w.detach()));
  CHECK(r.model[1].second.item() == 17);
  REQUIRE(r.optimizer.size() == ck.optimizer.size());
  for (size_t i = 0; i < r.optimizer.size(); ++i) {
    CHECK(r.optimizer[i].first == ck.optimizer[i].first);
    CHECK(same_bits(r.optimizer[i].second, ck.optimizer[i].second));
  }
  // The RNG resumes the same stream.
  Rng a, b;
  a.set_state(ck.rng_state);
  b.set_state(r.rng_state);
  CHECK(a.next_u64() == b.next_u64());
  // Raw safetensors view: Python sees plain tensors and string metadata.
  st::File raw = st::load(ctx, path);
  CHECK(raw.at("model.bn.num_batches_tracked").dtype == st::FileDType::I64);
  CHECK(raw.metadata.at("checksum").rfind("crc32:", 0) == 0);

  auto bytes = st::read_file_bytes(path);
  // One flipped bit anywhere in the data section: checksum mismatch.
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  for (size_t pos : {size_t(8 + n), size_t(8 + n + 37), bytes.size() - 1}) {
    auto b2 = bytes;
    b2[pos] ^= 0x10;
    std::string p2 = (d / "flip.safetensors").string();
    st::write_file_atomic(p2, b2);
    CHECK_FALSE(verify_checkpoint(p2, &why));
    CHECK(why.find("checksum") != std::string::npos);
  }
  // Truncated anywhere: refused.
  for (size_t cut : {size_t(0), size_t(7), size_t(8 + n / 2), size_t(8 + n), bytes.size() - 1}) {
    std::string p3 = (d / "cut.safetensors").string();
    st::write_file_atomic(p3, std::vector<uint8_t>(bytes.begin(), bytes.begin() + cut));
    CHECK_FALSE(verify_checkpoint(p3));
    CHECK_THROWS_AS(load_checkpoint(ctx, p3), Error);
  }
  // Metadata edited (epoch) without updating the checksum: refused.
  auto meta = raw.metadata;
  meta["epoch"] = "3";
  std::vector<st::WriteEntry> re;
  for (const auto& [nm, e] : raw.tensors) re.push_back({nm, e.tensor, e.dtype});
  std::string p4 = (d / "edited.safetensors").string();
  st::save(p4, re, meta);
  CHECK_FALSE(verify_checkpoint(p4, &why));
  CHECK(why.find("checksum") != std::string::npos);
  // A plain model file is not a checkpoint.
  std::string p5 = (d / "model.safetensors").string();
  st::save(p5, NamedTensors{{"w", w.detach()}});
  CHECK_THROWS_WITH_AS(load_checkpoint(ctx, p5), doctest::Contains("not a lowpass checkpoint"), Error);
  ck.extra = {{"checksum", "x"}};
  CHECK_THROWS_AS(save_checkpoint(path, ck), Error);
  fs::remove_all(d);
}

TEST_CASE("weights files carry the checkpoint's checksum; corrupt or non-finite weights are refused") {
  Context ctx(1, 12);
  fs::path d = scratch_dir("weights_crc");
  const std::string path = (d / "model.safetensors").string();
  Tensor w = Tensor::uniform(ctx, {3, 5}, -1, 1), nbt = Tensor::full(ctx, {}, 4);
  const NamedTensors sd = {{"conv.weight", w}, {"bn.num_batches_tracked", nbt}};
  save_weights_file(path, sd, {{"format", "lowpass-model"}, {"checksum", "stale"}});
  std::map<std::string, std::string> meta;
  auto got = load_model_weights(ctx, path, &meta);
  CHECK(meta.at("checksum").rfind("crc32:", 0) == 0);  // a stale key given is replaced
  CHECK(same_bits(got.at("conv.weight"), w));
  const auto bytes = st::read_file_bytes(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  auto flipped = bytes;
  flipped[8 + n + 5] ^= 0x01;  // one bit of conv.weight's data
  st::write_file_atomic((d / "flip.safetensors").string(), flipped);
  CHECK_THROWS_WITH_AS(load_model_weights(ctx, (d / "flip.safetensors").string()),
                       doctest::Contains("checksum mismatch"), Error);
  // Files without a checksum (PyTorch's state_dicts) load; a NaN weight does not, naming the tensor.
  st::save((d / "plain.safetensors").string(), sd);
  CHECK(same_bits(load_model_weights(ctx, (d / "plain.safetensors").string()).at("conv.weight"), w));
  Tensor bad = w.clone();
  bad.data<float>()[7] = std::numeric_limits<float>::quiet_NaN();
  st::save((d / "nan.safetensors").string(), NamedTensors{{"conv.weight", bad}});
  CHECK_THROWS_WITH_AS(load_model_weights(ctx, (d / "nan.safetensors").string()),
                       doctest::Contains("tensor 'conv.weight' holds nan at flat index 7"), Error);
  fs::remove_all(d);
}

TEST_CASE("temporaries of dead writers are removed; live, locked, recent and other files are kept") {
  fs::path d = scratch_dir("stale_tmp");
  const std::string live = "a.npz.tmp." + std::to_string(::getpid()) + ".3";
  // pid_max is at most 2^22 on Linux: pids 2147483xxx cannot be running
  const std::vector<std::string> all = {"a.npz.tmp.2147483000.0", "b.safetensors.tmp.2147483001.12", live,
                                        "c.tmp.x.1", "d.tmp.12", "e.tmp.12.3.4", "keep.npz",
                                        "f.npz.tmp.2147483002.0", "g.npz.tmp.2147483003.0"};
  for (const auto& n : all) {
    std::ofstream(d / n) << "x";
    if (n != "g.npz.tmp.2147483003.0")  // g: written just now (a live writer elsewhere, or one that just died)
      fs::last_write_time(d / n, fs::file_time_type::clock::now() - std::chrono::hours(2));
  }
  // f: a writer in another container or on another host holds its lock (its pid means nothing here)
  const int fd = ::open((d / "f.npz.tmp.2147483002.0").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  // only the names asked for: b's base name is not among them
  CHECK(st::remove_stale_temporaries(d.string(), {"a.npz"}) == std::vector<std::string>{(d / all[0]).string()});
  auto removed = st::remove_stale_temporaries(d.string());
  CHECK(removed == std::vector<std::string>{(d / all[1]).string()});
  ::close(fd);
  for (size_t i = 2; i < all.size(); ++i) CHECK(fs::exists(d / all[i]));
  fs::remove_all(d);
}
}
