// safetensors read/write: validation of every header field, dtype conversion, atomic writes.
// Layout: u64 LE N | N bytes JSON header (space-padded) | data section indexed by data_offsets.
// Test: build/tests/lowpass_tests -ts=safetensors
#include "engine/safetensors.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

namespace lowpass::safetensors {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeader = 100ull << 20;  // 100 MB, as Python's safetensors
constexpr size_t kMaxDims = 64;

struct DTypeInfo {
  FileDType t;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {FileDType::F64, "F64", 8}, {FileDType::F32, "F32", 4}, {FileDType::F16, "F16", 2},
    {FileDType::BF16, "BF16", 2}, {FileDType::I64, "I64", 8}, {FileDType::I32, "I32", 4},
    {FileDType::I16, "I16", 2}, {FileDType::I8, "I8", 1}, {FileDType::U8, "U8", 1},
    {FileDType::BOOL, "BOOL", 1},
};

float half_to_float(uint16_t h) {
  uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float v;
  if (exp == 0) v = std::ldexp(static_cast<float>(man), -24);
  else if (exp == 31) v = man ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else v = std::ldexp(static_cast<float>(man | 0x400), static_cast<int>(exp) - 25);
  return sign ? -v : v;
}

uint16_t float_to_half(float f) {  // round to nearest even
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t ax = x & 0x7fffffff;
  if (ax >= 0x7f800000) return static_cast<uint16_t>(sign | 0x7c00 | (ax > 0x7f800000 ? 0x200 : 0));
  if (ax >= 0x477ff000) return static_cast<uint16_t>(sign | 0x7c00);  // rounds to >= 65520: inf
  if (ax < 0x38800000) {  // subnormal half (or zero)
    float a;
    std::memcpy(&a, &ax, 4);
    float scaled = a * 16777216.0f;  // 2^24: units of the smallest subnormal
    uint32_t m = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t e = ((ax >> 23) - 112) << 10;
  uint32_t m = ax & 0x7fffff;
  uint32_t h = e | (m >> 13);
  uint32_t rest = m & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((x >> 16) | 0x40);
  uint32_t lsb = (x >> 16) & 1;
  x += 0x7fff + lsb;
  return static_cast<uint16_t>(x >> 16);
}

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // host is little-endian (checked at compile time below)
  return v;
}
static_assert(std::endian::native == std::endian::little, "lowpass assumes a little-endian host");

std::string errno_str() { return std::strerror(errno); }

}  // namespace

const char* file_dtype_name(FileDType t) {
  for (const auto& d : kDTypes)
    if (d.t == t) return d.name;
  return "?";
}
size_t file_dtype_size(FileDType t) {
  for (const auto& d : kDTypes)
    if (d.t == t) return d.size;
  return 0;
}
bool file_dtype_is_int(FileDType t) {
  return t == FileDType::I64 || t == FileDType::I32 || t == FileDType::I16 || t == FileDType::I8 ||
         t == FileDType::U8 || t == FileDType::BOOL;
}
FileDType file_dtype_of(DType t) { return t == DType::F64 ? FileDType::F64 : FileDType::F32; }

bool File::contains(const std::string& name) const {
  for (const auto& [n, e] : tensors)
    if (n == name) return true;
  return false;
}

const Entry& File::at(const std::string& name) const {
  for (const auto& [n, e] : tensors)
    if (n == name) return e;
  throw Error(detail::concat(path, ": no tensor named '", name, "' (the file has ", tensors.size(), " tensors)"));
}

NamedTensors File::named() const {
  NamedTensors r;
  for (const auto& [n, e] : tensors) r.emplace_back(n, e.tensor);
  return r;
}

std::map<std::string, Tensor> File::map() const {
  std::map<std::string, Tensor> r;
  for (const auto& [n, e] : tensors) r[n] = e.tensor;
  return r;
}

std::vector<WriteEntry> entries_from(const NamedTensors& tensors, const std::string& prefix) {
  std::vector<WriteEntry> r;
  static const std::string nbt = "num_batches_tracked";
  for (const auto& [n, t] : tensors) {
    bool counter = n.size() >= nbt.size() && n.compare(n.size() - nbt.size(), nbt.size(), nbt) == 0 &&
                   (n.size() == nbt.size() || n[n.size() - nbt.size() - 1] == '.');
    r.push_back({prefix + n, t, counter ? FileDType::I64 : file_dtype_of(t.dtype())});
  }
  return r;
}

size_t data_section_offset(const uint8_t* bytes, size_t size, const std::string& what) {
  LP_CHECK(size >= 8, what, ": not a safetensors file: ", size, " bytes, fewer than the 8-byte header length");
  uint64_t n = load_le<uint64_t>(bytes);
  LP_CHECK(n <= kMaxHeader, what, ": header length ", n, " exceeds the 100 MB limit (corrupt file?)");
  LP_CHECK(n <= size - 8, what, ": header length ", n, " runs past the end of the file (", size,
           " bytes): truncated or corrupt");
  return static_cast<size_t>(8 + n);
}

namespace {
struct Pending {
  std::string name;
  FileDType dt;
  Shape shape;
  uint64_t begin, end;
};

struct Index {
  std::vector<Pending> tensors;  // sorted by data offset, contiguous, covering the data section
  std::map<std::string, std::string> metadata;
};

// Validates the JSON header (hdr, header_len) against a data section of data_size bytes.
Index parse_index(const char* hdr, size_t header_len, uint64_t data_size, const std::string& what) {
  LP_CHECK(header_len >= 2 && hdr[0] == '{', what, ": header does not start with '{' (not a safetensors file?)");
  // Parse, refusing duplicate keys in any object (the JSON library would keep the last silently).
  std::vector<std::set<std::string>> keys_at_depth;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) {
      if (static_cast<size_t>(depth) >= keys_at_depth.size()) keys_at_depth.resize(depth + 1);
      keys_at_depth[depth].clear();
    } else if (ev == json::parse_event_t::key) {
      size_t d = static_cast<size_t>(depth > 0 ? depth - 1 : 0);
      if (d >= keys_at_depth.size()) keys_at_depth.resize(d + 1);
      std::string k = parsed.get<std::string>();
      LP_CHECK(keys_at_depth[d].insert(k).second, what, ": header has the key '", k, "' twice");
    }
    return true;
  };
  json h;
  try {
    h = json::parse(hdr, hdr + header_len, cb);
  } catch (const json::exception& e) {
    throw Error(detail::concat(what, ": header is not valid JSON: ", e.what()));
  }
  LP_CHECK(h.is_object(), what, ": header is not a JSON object");

  Index idx;

  std::vector<Pending>& pend = idx.tensors;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      LP_CHECK(v.is_object(), what, ": __metadata__ is not an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        LP_CHECK(m.value().is_string(), what, ": __metadata__ field '", m.key(), "' is not a string");
        idx.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto where = [&](const char* field) { return detail::concat(what, ": tensor '", name, "' field '", field, "'"); };
    LP_CHECK(v.is_object(), what, ": tensor '", name, "' is not an object");
    LP_CHECK(v.contains("dtype") && v["dtype"].is_string(), where("dtype"), " is missing or not a string");
    LP_CHECK(v.contains("shape") && v["shape"].is_array(), where("shape"), " is missing or not an array");
    LP_CHECK(v.contains("data_offsets") && v["data_offsets"].is_array() && v["data_offsets"].size() == 2,
             where("data_offsets"), " is missing or not a pair [begin, end]");
    Pending p;
    p.name = name;
    std::string dts = v["dtype"].get<std::string>();
    bool known = false;
    for (const auto& d : kDTypes)
      if (dts == d.name) p.dt = d.t, known = true;
    LP_CHECK(known, where("dtype"), ": unsupported dtype '", dts, "' (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    const json& sh = v["shape"];
    LP_CHECK(sh.size() <= kMaxDims, where("shape"), ": ", sh.size(), " dimensions (at most ", kMaxDims, ")");
    uint64_t numel = 1;
    for (const auto& d : sh) {
      LP_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), where("shape"),
               ": ", d.dump(), " is not a non-negative integer");
      uint64_t dv = d.get<uint64_t>();
      LP_CHECK(dv <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where("shape"), ": ", dv, " too large");
      LP_CHECK(!__builtin_mul_overflow(numel, dv, &numel) && numel <= (1ull << 62), where("shape"),
               ": element count overflows");
      p.shape.push_back(static_cast<int64_t>(dv));
    }
    uint64_t nbytes;
    LP_CHECK(!__builtin_mul_overflow(numel, static_cast<uint64_t>(file_dtype_size(p.dt)), &nbytes),
             where("shape"), ": byte size overflows");
    for (int k = 0; k < 2; ++k)
      LP_CHECK(v["data_offsets"][k].is_number_unsigned() ||
                   (v["data_offsets"][k].is_number_integer() && v["data_offsets"][k].get<int64_t>() >= 0),
               where("data_offsets"), ": ", v["data_offsets"][k].dump(), " is not a non-negative integer");
    p.begin = v["data_offsets"][0].get<uint64_t>();
    p.end = v["data_offsets"][1].get<uint64_t>();
    LP_CHECK(p.begin <= p.end, where("data_offsets"), ": begin ", p.begin, " > end ", p.end);
    LP_CHECK(p.end <= data_size, where("data_offsets"), ": end ", p.end, " is past the data section (",
             data_size, " bytes): truncated or corrupt file");
    LP_CHECK(p.end - p.begin == nbytes, where("data_offsets"), ": spans ", p.end - p.begin, " bytes but ", dts, " ",
             shape_str(p.shape), " needs ", nbytes);
    pend.push_back(std::move(p));
  }
  std::stable_sort(pend.begin(), pend.end(), [](const Pending& a, const Pending& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  std::string prev = "(start of data)";
  for (const auto& p : pend) {
    LP_CHECK(p.begin >= pos, what, ": tensor '", p.name, "' data_offsets [", p.begin, ", ", p.end,
             "] overlap tensor '", prev, "' (which ends at ", pos, ")");
    LP_CHECK(p.begin == pos, what, ": tensor '", p.name, "' starts at ", p.begin, " leaving a gap after '", prev,
             "' (ends at ", pos, "): corrupt file");
    pos = p.end;
    prev = p.name;
  }
  LP_CHECK(pos == data_size, what, ": data section has ", data_size, " bytes but the tensors cover ", pos,
           ": corrupt file or trailing bytes");

  return idx;
}

// Tensor of one index entry from its bytes (src holds p.end - p.begin bytes).
Entry decode(Context& ctx, const Pending& p, const uint8_t* src, const std::string& what) {
  Entry e;
  e.dtype = p.dt;
  int64_t n = shape_numel(p.shape);
  bool ints = file_dtype_is_int(p.dt);
  DType out_t = (p.dt == FileDType::F64 || ints) ? DType::F64 : DType::F32;
  e.tensor = Tensor::empty(ctx, p.shape, out_t);
  if (ints) e.ints.resize(static_cast<size_t>(n));
  if (p.dt == FileDType::F64 || p.dt == FileDType::F32) {  // bit copy (host is little-endian)
    if (n > 0) std::memcpy(e.tensor.raw(), src, p.end - p.begin);
    return e;
  }
    for (int64_t i = 0; i < n; ++i) {
    switch (p.dt) {
      case FileDType::F64: e.tensor.data<double>()[i] = load_le<double>(src + 8 * i); break;
      case FileDType::F32: e.tensor.data<float>()[i] = load_le<float>(src + 4 * i); break;
      case FileDType::F16: e.tensor.data<float>()[i] = half_to_float(load_le<uint16_t>(src + 2 * i)); break;
      case FileDType::BF16: {
        uint32_t b = static_cast<uint32_t>(load_le<uint16_t>(src + 2 * i)) << 16;
        float fv;
        std::memcpy(&fv, &b, 4);
        e.tensor.data<float>()[i] = fv;
        break;
      }
      case FileDType::I64: e.ints[i] = load_le<int64_t>(src + 8 * i); break;
      case FileDType::I32: e.ints[i] = load_le<int32_t>(src + 4 * i); break;
      case FileDType::I16: e.ints[i] = load_le<int16_t>(src + 2 * i); break;
      case FileDType::I8: e.ints[i] = static_cast<int8_t>(src[i]); break;
      case FileDType::U8: e.ints[i] = src[i]; break;
      case FileDType::BOOL:
        LP_CHECK(src[i] <= 1, what, ": tensor '", p.name, "' BOOL element ", i, " has byte value ", int(src[i]));
        e.ints[i] = src[i];
        break;
    }
    if (ints) e.tensor.data<double>()[i] = static_cast<double>(e.ints[i]);
  }
  return e;
}
}  // namespace

File parse(Context& ctx, const uint8_t* bytes, size_t size, const std::string& what) {
  size_t data_begin = data_section_offset(bytes, size, what);
  Index idx = parse_index(reinterpret_cast<const char*>(bytes + 8), data_begin - 8, size - data_begin, what);
  File f;
  f.path = what;
  f.metadata = std::move(idx.metadata);
  for (const auto& p : idx.tensors) f.tensors.emplace_back(p.name, decode(ctx, p, bytes + data_begin + p.begin, what));
  return f;
}

void check_fits_in_memory(uint64_t bytes, const std::string& what) {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return;  // unknown: let the allocator decide
  const uint64_t have = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
  auto gib = [](uint64_t b) {
    char s[32];
    std::snprintf(s, sizeof s, "%.1f", static_cast<double>(b) / (1ull << 30));
    return std::string(s);
  };
  LP_CHECK(bytes <= have, what, " needs ", bytes, " bytes (", gib(bytes), " GiB) but this machine has ", have,
           " bytes (", gib(have), " GiB) of memory");
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  LP_CHECK(in.good(), path, ": cannot open for reading: ", errno_str());
  std::streamoff n = in.tellg();
  LP_CHECK(n >= 0, path, ": cannot determine the file size");
  check_fits_in_memory(static_cast<uint64_t>(n), path + ": reading the whole file");
  std::vector<uint8_t> buf(static_cast<size_t>(n));
  in.seekg(0);
  if (n > 0) in.read(reinterpret_cast<char*>(buf.data()), n);
  LP_CHECK(in.good() || (n == 0), path, ": read failed after ", in.gcount(), " of ", n, " bytes");
  return buf;
}

File load(Context& ctx, const std::string& path) {
  // Header first, then each tensor read straight into its storage (no whole-file copy).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  LP_CHECK(fd >= 0, path, ": cannot open for reading: ", errno_str());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  LP_CHECK(::fstat(fd, &st) == 0 && S_ISREG(st.st_mode), path, ": not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  auto read_at = [&](uint64_t off, size_t n, void* dst) {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd, static_cast<char*>(dst) + done, n - done, static_cast<off_t>(off + done));
      if (r < 0 && errno == EINTR) continue;
      LP_CHECK(r > 0, path, ": read failed at byte ", off + done, r == 0 ? " (file shrank while reading)" : "");
      done += static_cast<size_t>(r);
    }
  };
  uint8_t head[8] = {0};
  const size_t head_n = static_cast<size_t>(std::min<uint64_t>(size, 8));
  read_at(0, head_n, head);
  LP_CHECK(size >= 8, path, ": not a safetensors file: ", size, " bytes, fewer than the 8-byte header length");
  uint64_t n = load_le<uint64_t>(head);
  LP_CHECK(n <= kMaxHeader, path, ": header length ", n, " exceeds the 100 MB limit (corrupt file?)");
  LP_CHECK(n <= size - 8, path, ": header length ", n, " runs past the end of the file (", size,
           " bytes): truncated or corrupt");
  std::string hdr(static_cast<size_t>(n), '\0');
  read_at(8, hdr.size(), hdr.data());
  Index idx = parse_index(hdr.data(), hdr.size(), size - 8 - n, path);
  File f;
  f.path = path;
  f.metadata = std::move(idx.metadata);
  std::vector<uint8_t> tmp;
  for (const auto& p : idx.tensors) {
    const size_t nb = static_cast<size_t>(p.end - p.begin);
    const uint64_t off = 8 + n + p.begin;
    if (p.dt == FileDType::F32 || p.dt == FileDType::F64) {
      Entry e;
      e.dtype = p.dt;
      e.tensor = Tensor::empty(ctx, p.shape, p.dt == FileDType::F64 ? DType::F64 : DType::F32);
      read_at(off, nb, e.tensor.raw());
      f.tensors.emplace_back(p.name, std::move(e));
    } else {
      tmp.resize(nb);
      read_at(off, nb, tmp.data());
      f.tensors.emplace_back(p.name, decode(ctx, p, tmp.data(), path));
    }
  }
  return f;
}

namespace {
struct Plan {
  std::string header;        // JSON, space-padded to a multiple of 8
  std::vector<Tensor> host;  // host copies of the tensors
  uint64_t data_bytes = 0;
};

Plan make_plan(const std::vector<WriteEntry>& entries, const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  Plan plan;
  std::set<std::string> names;
  uint64_t off = 0;
  for (const auto& e : entries) {
    LP_CHECK(e.tensor.defined(), "safetensors write: tensor '", e.name, "' is undefined");
    LP_CHECK(e.name != "__metadata__", "safetensors write: '__metadata__' is reserved and cannot name a tensor");
    LP_CHECK(names.insert(e.name).second, "safetensors write: tensor name '", e.name, "' appears twice");
    Tensor t = e.tensor.is_cpu() ? e.tensor : e.tensor.to(Device{});
    plan.host.push_back(t);
    uint64_t nb = static_cast<uint64_t>(t.numel()) * file_dtype_size(e.dtype);
    h[e.name] = {{"dtype", file_dtype_name(e.dtype)}, {"shape", t.shape()}, {"data_offsets", {off, off + nb}}};
    off += nb;
  }
  try {
    plan.header = h.dump();
  } catch (const json::exception& ex) {
    throw Error(detail::concat("safetensors write: a tensor name or metadata string is not valid UTF-8: ", ex.what()));
  }
  while (plan.header.size() % 8 != 0) plan.header.push_back(' ');
  plan.data_bytes = off;
  return plan;
}

// Bytes of tensor t stored as dt, into dst (numel * size bytes).
void encode(const Tensor& t, FileDType dt, const std::string& name, uint8_t* dst) {
  const int64_t n_el = t.numel();
  auto get = [&](int64_t i) -> double {
    return t.dtype() == DType::F32 ? static_cast<double>(t.data<float>()[i]) : t.data<double>()[i];
  };
  for (int64_t i = 0; i < n_el; ++i) {
    if (file_dtype_is_int(dt)) {
      double v = get(i);
      double lo = 0, hi = 0;
      switch (dt) {
        case FileDType::I64: lo = -9223372036854775808.0, hi = 9223372036854775807.0; break;
        case FileDType::I32: lo = -2147483648.0, hi = 2147483647.0; break;
        case FileDType::I16: lo = -32768, hi = 32767; break;
        case FileDType::I8: lo = -128, hi = 127; break;
        case FileDType::U8: lo = 0, hi = 255; break;
        default: lo = 0, hi = 1; break;
      }
      LP_CHECK(std::isfinite(v) && v == std::trunc(v) && v >= lo && v < hi + 1, "safetensors write: tensor '", name,
               "' element ", i, " = ", v, " is not a valid ", file_dtype_name(dt));
      int64_t iv = static_cast<int64_t>(v);
      std::memcpy(dst, &iv, file_dtype_size(dt));  // little-endian truncation is exact in range
      dst += file_dtype_size(dt);
      continue;
    }
    switch (dt) {
      case FileDType::F64: {
        double v = get(i);
        std::memcpy(dst, &v, 8);
        dst += 8;
        break;
      }
      case FileDType::F32: {
        float v = t.dtype() == DType::F32 ? t.data<float>()[i] : static_cast<float>(t.data<double>()[i]);
        std::memcpy(dst, &v, 4);
        dst += 4;
        break;
      }
      case FileDType::F16:
      case FileDType::BF16: {
        float v = static_cast<float>(get(i));
        uint16_t b = dt == FileDType::F16 ? float_to_half(v) : float_to_bf16(v);
        std::memcpy(dst, &b, 2);
        dst += 2;
        break;
      }
      default: break;
    }
  }
}

// Calls sink(bytes, n) with the data section in order: tensor memory itself when the file type is
// the tensor's own, else an encoded copy of that tensor.
void emit_data(const std::vector<WriteEntry>& entries, const Plan& plan,
               const std::function<void(const uint8_t*, size_t)>& sink) {
  std::vector<uint8_t> tmp;
  for (size_t k = 0; k < entries.size(); ++k) {
    const Tensor& t = plan.host[k];
    const FileDType dt = entries[k].dtype;
    const size_t nb = static_cast<size_t>(t.numel()) * file_dtype_size(dt);
    if (nb == 0) continue;
    if (file_dtype_of(t.dtype()) == dt) {
      sink(static_cast<const uint8_t*>(t.raw()), nb);
    } else {
      tmp.resize(nb);
      encode(t, dt, entries[k].name, tmp.data());
      sink(tmp.data(), nb);
    }
  }
}
}  // namespace

std::vector<uint8_t> serialize(const std::vector<WriteEntry>& entries, const std::map<std::string, std::string>& metadata) {
  Plan plan = make_plan(entries, metadata);
  std::vector<uint8_t> out;
  out.reserve(8 + plan.header.size() + plan.data_bytes);
  uint64_t n = plan.header.size();
  out.insert(out.end(), reinterpret_cast<const uint8_t*>(&n), reinterpret_cast<const uint8_t*>(&n) + 8);
  out.insert(out.end(), plan.header.begin(), plan.header.end());
  emit_data(entries, plan, [&](const uint8_t* p, size_t len) { out.insert(out.end(), p, p + len); });
  LP_ASSERT(out.size() == 8 + plan.header.size() + plan.data_bytes, "safetensors serialize size mismatch");
  return out;
}

void visit_data(const std::vector<WriteEntry>& entries, const std::function<void(const uint8_t*, size_t)>& sink) {
  Plan plan = make_plan(entries, {});
  emit_data(entries, plan, sink);
}

std::vector<std::string> remove_stale_temporaries(const std::string& dir, const std::vector<std::string>& names) {
  namespace fs = std::filesystem;
  std::vector<std::string> removed;
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    // NAME.tmp.<pid>.<n>: digits after the last ".tmp.", a dot, digits
    const size_t t = n.rfind(".tmp.");
    if (t == std::string::npos) continue;
    if (!names.empty() && std::find(names.begin(), names.end(), n.substr(0, t)) == names.end()) continue;
    const std::string rest = n.substr(t + 5);
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos || dot + 1 == rest.size() ||
        rest.find_first_not_of("0123456789.") != std::string::npos || rest.find('.', dot + 1) != std::string::npos)
      continue;
    // The writer is gone when (1) its pid runs no process here and (2) nobody holds the flock every AtomicFile takes
    // on its temporary: a pid means nothing in another container or on another host sharing the folder, the lock
    // does (one kernel, and NFSv4 clients). (3) An hour without a write also guards writers of lowpass versions
    // before that lock.
    const long pid = std::strtol(rest.c_str(), nullptr, 10);
    if (pid <= 0 || pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::error_code te;
    const auto mtime = fs::last_write_time(it->path(), te);
    if (te || now - mtime < std::chrono::hours(1)) continue;
    const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;  // unsupported (ENOLCK...) counts as held: keep it
    std::error_code rm;
    if (free && fs::remove(it->path(), rm)) removed.push_back(it->path().string());
    ::close(fd);
  }
  return removed;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  static std::atomic<uint64_t> counter{0};
  tmp_ = detail::concat(path_, ".tmp.", ::getpid(), ".", counter++);
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  LP_CHECK(fd_ >= 0, path_, ": cannot create the temporary file ", tmp_, ": ", errno_str());
  // Held while the file is written (released when fd_ closes): remove_stale_temporaries leaves locked ones alone.
  // Where flock is unsupported this fails, and reaping then keeps every temporary.
  (void)::flock(fd_, LOCK_EX | LOCK_NB);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  pwrite(data, n, size_);
  size_ += n;
}

void AtomicFile::pwrite(const void* data, size_t n, uint64_t offset) {
  LP_CHECK(fd_ >= 0, path_, ": write after commit");
  const char* p = static_cast<const char*>(data);
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::pwrite(fd_, p + done, n - done, static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    LP_CHECK(w > 0, path_, ": write failed at byte ", offset + done, ": ", errno_str());
    done += static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  LP_CHECK(fd_ >= 0, path_, ": commit twice");
  int fd = fd_;
  fd_ = -1;
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    std::string why = errno_str();
    ::unlink(tmp_.c_str());
    throw Error(detail::concat(path_, ": fsync/close of the temporary file failed: ", why));
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::string why = errno_str();
    ::unlink(tmp_.c_str());
    throw Error(detail::concat(path_, ": cannot rename the temporary file into place: ", why));
  }
  std::string dir = ".";
  auto slash = path_.find_last_of('/');
  if (slash != std::string::npos) dir = slash == 0 ? "/" : path_.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {  // make the rename durable; failure here is not fatal (some network filesystems)
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void write_file_atomic(const std::string& path, std::string_view text) {
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

void save(const std::string& path, const std::vector<WriteEntry>& entries, const std::map<std::string, std::string>& metadata) {
  Plan plan = make_plan(entries, metadata);  // validates before the file is created
  AtomicFile f(path);
  uint64_t n = plan.header.size();
  f.write(&n, 8);
  f.write(plan.header.data(), plan.header.size());
  emit_data(entries, plan, [&](const uint8_t* p, size_t len) { f.write(p, len); });
  f.commit();
}

void save(const std::string& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  save(path, entries_from(tensors), metadata);
}

}  // namespace lowpass::safetensors
