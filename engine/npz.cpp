// .npy/.npz parsing and writing: npy header dict parser, arrays as tensors, npz reading (whole or row by row) and
// writing over the zip container of engine/zip.h. Every field bounds-checked.
// Test: build/tests/lowpass_tests -ts=npz
#include "engine/npz.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "engine/zip.h"

namespace lowpass::npy {
using namespace zip;  // the container (engine/zip.h)
namespace {

struct Info {
  NpyDType t;
  const char* descr;
  size_t size;
};
constexpr Info kInfo[] = {
    {NpyDType::B1, "|b1", 1}, {NpyDType::U1, "|u1", 1}, {NpyDType::I1, "|i1", 1}, {NpyDType::U2, "<u2", 2},
    {NpyDType::I2, "<i2", 2}, {NpyDType::U4, "<u4", 4}, {NpyDType::I4, "<i4", 4}, {NpyDType::U8, "<u8", 8},
    {NpyDType::I8, "<i8", 8}, {NpyDType::F4, "<f4", 4}, {NpyDType::F8, "<f8", 8},
};


// ---- minimal parser for the Python dict literal of an npy header ----
struct HeaderParser {
  const std::string& s;
  const std::string& what;
  size_t i = 0;
  void ws() {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  [[noreturn]] void fail(const std::string& msg) {
    throw Error(detail::concat(what, ": npy header ", msg, " (header: ", s.substr(0, 200), ")"));
  }
  void expect(char c) {
    ws();
    if (i >= s.size() || s[i] != c) fail(detail::concat("expected '", c, "' at offset ", i));
    ++i;
  }
  bool peek(char c) {
    ws();
    return i < s.size() && s[i] == c;
  }
  std::string str() {
    ws();
    if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) fail(detail::concat("expected a string at offset ", i));
    char q = s[i++];
    size_t b = i;
    while (i < s.size() && s[i] != q) ++i;
    if (i >= s.size()) fail("has an unterminated string");
    return s.substr(b, i++ - b);
  }
  bool boolean() {
    ws();
    if (s.compare(i, 4, "True") == 0) return i += 4, true;
    if (s.compare(i, 5, "False") == 0) return i += 5, false;
    fail(detail::concat("expected True or False at offset ", i));
  }
  Shape tuple() {
    expect('(');
    Shape r;
    while (!peek(')')) {
      ws();
      size_t b = i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      if (b == i || i - b > 18) fail(detail::concat("shape entry at offset ", b, " is not a non-negative integer"));
      if (i < s.size() && s[i] == 'L') ++i;  // Python 2 long suffix
      r.push_back(std::stoll(s.substr(b, i - b)));
      if (r.size() > 64) fail("shape has more than 64 dimensions");
      if (!peek(')')) expect(',');
    }
    expect(')');
    return r;
  }
};

struct Header {
  NpyDType dtype;
  Shape shape;
  size_t data_offset;
};

Header parse_header(const uint8_t* bytes, size_t size, const std::string& what) {
  static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  LP_CHECK(size >= 10 && std::memcmp(bytes, magic, 6) == 0, what, ": not an npy array (bad magic)");
  uint8_t major = bytes[6];
  LP_CHECK(major >= 1 && major <= 3, what, ": npy format version ", int(major), " is not supported (1-3)");
  size_t hlen, hstart;
  if (major == 1) {
    hlen = rd<uint16_t>(bytes + 8);
    hstart = 10;
  } else {
    LP_CHECK(size >= 12, what, ": truncated npy header");
    hlen = rd<uint32_t>(bytes + 8);
    hstart = 12;
  }
  LP_CHECK(hlen <= size - hstart, what, ": npy header length ", hlen, " runs past the end (", size, " bytes)");
  std::string h(reinterpret_cast<const char*>(bytes + hstart), hlen);
  HeaderParser p{h, what};
  p.expect('{');
  std::optional<std::string> descr;
  std::optional<bool> fortran;
  std::optional<Shape> shape;
  while (!p.peek('}')) {
    std::string key = p.str();
    p.expect(':');
    if (key == "descr") {
      if (p.peek('[')) p.fail("describes a structured dtype, which is not supported");
      descr = p.str();
    } else if (key == "fortran_order") {
      fortran = p.boolean();
    } else if (key == "shape") {
      shape = p.tuple();
    } else {
      p.fail(detail::concat("has an unexpected key '", key, "'"));
    }
    if (!p.peek('}')) p.expect(',');
  }
  p.expect('}');
  if (!descr || !fortran || !shape) p.fail("lacks one of 'descr', 'fortran_order', 'shape'");
  LP_CHECK(!*fortran, what, ": array is in Fortran order; save it in C order (np.ascontiguousarray) first");
  std::string d = *descr;
  LP_CHECK(d.size() >= 3, what, ": unsupported dtype '", d, "'");
  char order = d[0];
  std::string code = d.substr(1);
  if (code == "?1" || code == "b1") code = "b1";
  Header r;
  bool found = false;
  for (const auto& in : kInfo) {
    if (code == in.descr + 1) {
      r.dtype = in.t;
      found = true;
      LP_CHECK(order == '<' || order == '|' || order == '=' || in.size == 1, what, ": dtype '", d,
               "' is big-endian; convert it with arr.astype('<", code, "') first");
    }
  }
  LP_CHECK(found, what, ": unsupported dtype '", d, "' (supported: bool, u1, i1, u2, i2, u4, i4, u8, i8, f4, f8)");
  r.shape = *shape;
  r.data_offset = hstart + hlen;
  return r;
}

// Checks that a payload of `have` bytes is what the header's dtype and shape need.
void check_payload_size(const Header& h, uint64_t have, const std::string& what) {
  // Every running product (the order shape_numel multiplies in) must fit in int64: a later 0 would make the
  // payload empty while shape_numel's int64 arithmetic had already overflowed (found by fuzz_npz).
  uint64_t numel = 1;
  for (int64_t d : h.shape)
    LP_CHECK(!__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel) && numel <= (1ull << 62), what,
             ": shape ", shape_str(h.shape), " overflows");
  uint64_t need;
  LP_CHECK(!__builtin_mul_overflow(numel, static_cast<uint64_t>(npy_size(h.dtype)), &need), what, ": shape ",
           shape_str(h.shape), " overflows");
  LP_CHECK(have == need, what, ": payload has ", have, " bytes but ", npy_descr(h.dtype), " ", shape_str(h.shape),
           " needs ", need, have < need ? " (truncated file)" : " (trailing bytes)");
}

Array read_payload(const Header& h, const uint8_t* bytes, size_t size, const std::string& what, bool copy = true) {
  const uint64_t have = size - h.data_offset;
  check_payload_size(h, have, what);
  Array a;
  a.dtype = h.dtype;
  a.shape = h.shape;
  if (copy) a.bytes.assign(bytes + h.data_offset, bytes + size);
  if (a.dtype == NpyDType::B1)
    for (size_t i = 0; i < have; ++i)
      LP_CHECK(bytes[h.data_offset + i] <= 1, what, ": bool element ", i, " has byte value ", int(bytes[h.data_offset + i]));
  return a;
}

Array npy_from_buffer(std::vector<uint8_t>&& buf, const std::string& what) {
  Header h = parse_header(buf.data(), buf.size(), what);
  Array a = read_payload(h, buf.data(), buf.size(), what, /*copy=*/false);
  buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(h.data_offset));
  a.bytes = std::move(buf);
  return a;
}


}  // namespace

const char* npy_descr(NpyDType t) {
  for (const auto& in : kInfo)
    if (in.t == t) return in.descr;
  return "?";
}
size_t npy_size(NpyDType t) {
  for (const auto& in : kInfo)
    if (in.t == t) return in.size;
  return 0;
}
bool npy_is_int(NpyDType t) { return t != NpyDType::F4 && t != NpyDType::F8; }

template <typename F>
static void visit(const Array& a, F&& f) {  // f(index, value as double or int64)
  const uint8_t* p = a.bytes.data();
  const int64_t n = a.numel();
  switch (a.dtype) {
    case NpyDType::B1:
    case NpyDType::U1: for (int64_t i = 0; i < n; ++i) f(i, static_cast<int64_t>(p[i])); break;
    case NpyDType::I1: for (int64_t i = 0; i < n; ++i) f(i, static_cast<int64_t>(static_cast<int8_t>(p[i]))); break;
    case NpyDType::U2: for (int64_t i = 0; i < n; ++i) f(i, static_cast<int64_t>(rd<uint16_t>(p + 2 * i))); break;
    case NpyDType::I2: for (int64_t i = 0; i < n; ++i) f(i, static_cast<int64_t>(rd<int16_t>(p + 2 * i))); break;
    case NpyDType::U4: for (int64_t i = 0; i < n; ++i) f(i, static_cast<int64_t>(rd<uint32_t>(p + 4 * i))); break;
    case NpyDType::I4: for (int64_t i = 0; i < n; ++i) f(i, static_cast<int64_t>(rd<int32_t>(p + 4 * i))); break;
    case NpyDType::U8: for (int64_t i = 0; i < n; ++i) f(i, static_cast<int64_t>(rd<uint64_t>(p + 8 * i))); break;
    case NpyDType::I8: for (int64_t i = 0; i < n; ++i) f(i, rd<int64_t>(p + 8 * i)); break;
    case NpyDType::F4: for (int64_t i = 0; i < n; ++i) f(i, static_cast<double>(rd<float>(p + 4 * i))); break;
    case NpyDType::F8: for (int64_t i = 0; i < n; ++i) f(i, rd<double>(p + 8 * i)); break;
  }
}

Tensor Array::to_tensor(Context& ctx, std::optional<DType> as, const std::string& what) const {
  DType t = as ? *as : (dtype == NpyDType::F8 ? DType::F64 : DType::F32);
  LP_ASSERT(bytes.size() == static_cast<size_t>(numel()) * npy_size(dtype), "npy Array byte size");
  Tensor out = Tensor::empty(ctx, shape, t);
  if ((t == DType::F32 && dtype == NpyDType::F4) || (t == DType::F64 && dtype == NpyDType::F8)) {
    if (!bytes.empty()) std::memcpy(out.raw(), bytes.data(), bytes.size());
    return out;
  }
  if (dtype == NpyDType::U1 || dtype == NpyDType::B1 || dtype == NpyDType::I1) {  // one-hot x: exact, vectorised
    dispatch_dtype(t, [&]<typename T>() {
      T* o = out.data<T>();
      const int64_t n = numel();
      if (dtype == NpyDType::I1) {
        const int8_t* s = reinterpret_cast<const int8_t*>(bytes.data());
        for (int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(s[i]);
      } else {
        const uint8_t* s = bytes.data();
        for (int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(s[i]);
      }
      return 0;
    });
    return out;
  }
  if (dtype == NpyDType::U8) {  // uint64 above 2^63 would wrap in the int64 visitor
    for (int64_t i = 0; i < numel(); ++i)
      LP_CHECK(rd<uint64_t>(bytes.data() + 8 * i) <= (1ull << 53), what, ": uint64 element ", i, " is too large for a float");
  }
  dispatch_dtype(t, [&]<typename T>() {
    T* o = out.data<T>();
    visit(*this, [&](int64_t i, auto v) {
      if constexpr (std::is_same_v<decltype(v), int64_t>) {
        const int64_t lim = std::is_same_v<T, float> ? (int64_t{1} << 24) : (int64_t{1} << 53);
        LP_CHECK(v <= lim && v >= -lim, what, ": integer element ", i, " = ", v, " is not exact in ",
                 dtype_name(t), std::is_same_v<T, float> ? " (load it as float64)" : "");
      }
      o[i] = static_cast<T>(v);
    });
    return 0;
  });
  return out;
}

std::vector<int64_t> Array::to_int64(const std::string& what) const {
  LP_CHECK(npy_is_int(dtype), what, ": dtype ", npy_descr(dtype), " is not an integer type");
  std::vector<int64_t> r(static_cast<size_t>(numel()));
  visit(*this, [&](int64_t i, auto v) {
    if constexpr (std::is_same_v<decltype(v), int64_t>) r[i] = v;
  });
  return r;
}

Array from_tensor(const Tensor& t_in, std::optional<NpyDType> as, const std::string& what) {
  Tensor t = t_in.is_cpu() ? t_in : t_in.to(Device{});
  Array a;
  a.dtype = as ? *as : (t.dtype() == DType::F64 ? NpyDType::F8 : NpyDType::F4);
  a.shape = t.shape();
  const int64_t n = t.numel();
  const size_t es = npy_size(a.dtype);
  a.bytes.resize(static_cast<size_t>(n) * es);
  if ((a.dtype == NpyDType::F4 && t.dtype() == DType::F32) || (a.dtype == NpyDType::F8 && t.dtype() == DType::F64)) {
    if (n > 0) std::memcpy(a.bytes.data(), t.raw(), a.bytes.size());
    return a;
  }
  dispatch_dtype(t.dtype(), [&]<typename T>() {
    const T* s = t.data<T>();
    uint8_t* d = a.bytes.data();
    for (int64_t i = 0; i < n; ++i) {
      double v = static_cast<double>(s[i]);
      if (a.dtype == NpyDType::F4) {
        float f = static_cast<float>(v);
        std::memcpy(d + 4 * i, &f, 4);
      } else if (a.dtype == NpyDType::F8) {
        std::memcpy(d + 8 * i, &v, 8);
      } else {
        double lo, hi;
        switch (a.dtype) {
          case NpyDType::B1: lo = 0, hi = 1; break;
          case NpyDType::U1: lo = 0, hi = 255; break;
          case NpyDType::I1: lo = -128, hi = 127; break;
          case NpyDType::U2: lo = 0, hi = 65535; break;
          case NpyDType::I2: lo = -32768, hi = 32767; break;
          case NpyDType::U4: lo = 0, hi = 4294967295.0; break;
          case NpyDType::I4: lo = -2147483648.0, hi = 2147483647.0; break;
          case NpyDType::U8: lo = 0, hi = 9223372036854775807.0; break;
          default: lo = -9223372036854775808.0, hi = 9223372036854775807.0; break;
        }
        LP_CHECK(std::isfinite(v) && v == std::trunc(v) && v >= lo && v < hi + 1, what, ": element ", i, " = ", v,
                 " is not a valid ", npy_descr(a.dtype));
        int64_t iv = static_cast<int64_t>(v);
        std::memcpy(d + es * i, &iv, es);
      }
    }
    return 0;
  });
  return a;
}

Array parse_npy(const uint8_t* bytes, size_t size, const std::string& what) {
  return read_payload(parse_header(bytes, size, what), bytes, size, what);
}

Array load_npy(const std::string& path) {
  auto b = safetensors::read_file_bytes(path);
  return parse_npy(b.data(), b.size(), path);
}

std::vector<uint8_t> npy_header(NpyDType t, const Shape& shape) {
  std::string sh = "(";
  for (size_t i = 0; i < shape.size(); ++i) sh += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? ", " : "");
  if (shape.size() == 1) sh.pop_back();  // "(5,)"
  sh += ")";
  std::string d = detail::concat("{'descr': '", npy_descr(t), "', 'fortran_order': False, 'shape': ", sh, ", }");
  size_t total = 10 + d.size() + 1;
  size_t padded = (total + 63) / 64 * 64;
  d.append(padded - total, ' ');
  d.push_back('\n');
  LP_CHECK(d.size() <= 65535, "npy header too long for shape ", shape_str(shape));
  std::vector<uint8_t> h = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  put<uint16_t>(h, static_cast<uint16_t>(d.size()));
  h.insert(h.end(), d.begin(), d.end());
  return h;
}

void save_npy(const std::string& path, const Array& a) {
  safetensors::AtomicFile f(path);
  auto h = npy_header(a.dtype, a.shape);
  f.write(h.data(), h.size());
  f.write(a.bytes.data(), a.bytes.size());
  f.commit();
}

static std::map<std::string, Array> read_npz(const Source& src, const std::string& what,
                                             const std::vector<std::string>& only) {
  auto entries = read_central_directory(src, what);
  std::map<std::string, Array> out;
  std::set<std::string> keys;
  for (const auto& e : entries) {
    if (e.name.size() < 4 || e.name.compare(e.name.size() - 4, 4, ".npy") != 0) continue;
    std::string key = e.name.substr(0, e.name.size() - 4);
    LP_CHECK(keys.insert(key).second, what, ": member '", e.name, "' appears twice");
    if (!only.empty() && std::find(only.begin(), only.end(), key) == only.end()) continue;
    out[key] = npy_from_buffer(extract(e, src, what), detail::concat(what, ": array '", key, "'"));
  }
  for (const auto& k : only) {
    if (!out.count(k)) {
      std::string have;
      for (const auto& x : keys) have += (have.empty() ? "" : ", ") + x;
      throw Error(detail::concat(what, ": no array named '", k, "' (arrays: ", have.empty() ? "none" : have, ")"));
    }
  }
  return out;
}

std::map<std::string, Array> parse_npz(const uint8_t* b, size_t n, const std::string& what,
                                       const std::vector<std::string>& only) {
  return read_npz(MemSource(b, n), what, only);
}

std::map<std::string, Array> load_npz(const std::string& path, const std::vector<std::string>& only) {
  return read_npz(FileSource(path), path, only);
}

// ---- NpzWriter ----
NpzWriter::NpzWriter(const std::string& path, bool force_zip64) : file_(path), path_(path), force64_(force_zip64) {}
NpzWriter::~NpzWriter() = default;

void NpzWriter::begin(const std::string& key, NpyDType dtype, const Shape& shape) {
  LP_CHECK(!open_, path_, ": begin('", key, "') while another array is open");
  LP_CHECK(!key.empty() && key.size() < 60000, path_, ": bad array name '", key, "'");
  for (const auto& m : members_) LP_CHECK(m.name != key + ".npy", path_, ": array '", key, "' written twice");
  for (int64_t d : shape) LP_CHECK(d >= 0, path_, ": array '", key, "' has a negative dimension");
  auto hdr = npy_header(dtype, shape);
  uint64_t size = hdr.size() + static_cast<uint64_t>(shape_numel(shape)) * npy_size(dtype);
  Member m{key + ".npy", file_.size(), size, 0};
  bool z64 = force64_ || size >= k32;
  auto lh = local_header(m.name, 0, size, z64);
  file_.write(lh.data(), lh.size());
  header_at_ = m.offset;
  members_.push_back(m);
  crc_ = crc_update(0, hdr.data(), hdr.size());
  file_.write(hdr.data(), hdr.size());
  dtype_ = dtype;
  expect_ = size - hdr.size();
  got_ = 0;
  open_ = true;
}

void NpzWriter::append_raw(const void* data, size_t bytes) {
  LP_CHECK(open_, path_, ": append without begin()");
  LP_CHECK(got_ + bytes <= expect_, path_, ": array '", members_.back().name, "' receives more than its ", expect_,
           " declared bytes");
  crc_ = crc_update(crc_, static_cast<const uint8_t*>(data), bytes);
  file_.write(data, bytes);
  got_ += bytes;
}

void NpzWriter::append(const Tensor& chunk) {
  Array a = from_tensor(chunk, dtype_, detail::concat(path_, ": array '", members_.empty() ? "" : members_.back().name, "'"));
  append_raw(a.bytes.data(), a.bytes.size());
}

void NpzWriter::end() {
  LP_CHECK(open_, path_, ": end without begin()");
  LP_CHECK(got_ == expect_, path_, ": array '", members_.back().name, "' got ", got_, " of ", expect_, " bytes");
  members_.back().crc = crc_;
  uint8_t c[4];
  std::memcpy(c, &crc_, 4);
  file_.pwrite(c, 4, header_at_ + 14);  // CRC field of the local header
  open_ = false;
}

void NpzWriter::add(const std::string& key, const Array& a) {
  begin(key, a.dtype, a.shape);
  append_raw(a.bytes.data(), a.bytes.size());
  end();
}

void NpzWriter::close() {
  LP_CHECK(!open_, path_, ": close() with array '", members_.back().name, "' still open");
  uint64_t cd_off = file_.size();
  std::vector<uint8_t> cd;
  for (const auto& m : members_) {
    bool z64 = force64_ || m.size >= k32 || m.offset >= k32;
    put<uint32_t>(cd, 0x02014b50);
    put<uint16_t>(cd, z64 ? 45 : 20);  // made by
    put<uint16_t>(cd, z64 ? 45 : 20);  // needed
    put<uint16_t>(cd, 0);
    put<uint16_t>(cd, 0);
    put<uint16_t>(cd, 0);
    put<uint16_t>(cd, 0x21);
    put<uint32_t>(cd, m.crc);
    put<uint32_t>(cd, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(m.size));
    put<uint32_t>(cd, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(m.size));
    put<uint16_t>(cd, static_cast<uint16_t>(m.name.size()));
    put<uint16_t>(cd, z64 ? 28 : 0);
    put<uint16_t>(cd, 0);  // comment
    put<uint16_t>(cd, 0);  // disk
    put<uint16_t>(cd, 0);  // internal attrs
    put<uint32_t>(cd, 0x81A40000);  // external attrs: -rw-r--r--
    put<uint32_t>(cd, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(m.offset));
    cd.insert(cd.end(), m.name.begin(), m.name.end());
    if (z64) {
      put<uint16_t>(cd, 1);
      put<uint16_t>(cd, 24);
      put<uint64_t>(cd, m.size);
      put<uint64_t>(cd, m.size);
      put<uint64_t>(cd, m.offset);
    }
  }
  uint64_t cd_size = cd.size();
  bool z64 = force64_ || members_.size() >= 0xFFFF || cd_off >= k32 || cd_size >= k32;
  if (z64) {
    uint64_t z_off = cd_off + cd_size;
    put<uint32_t>(cd, 0x06064b50);
    put<uint64_t>(cd, 44);
    put<uint16_t>(cd, 45);
    put<uint16_t>(cd, 45);
    put<uint32_t>(cd, 0);
    put<uint32_t>(cd, 0);
    put<uint64_t>(cd, members_.size());
    put<uint64_t>(cd, members_.size());
    put<uint64_t>(cd, cd_size);
    put<uint64_t>(cd, cd_off);
    put<uint32_t>(cd, 0x07064b50);
    put<uint32_t>(cd, 0);
    put<uint64_t>(cd, z_off);
    put<uint32_t>(cd, 1);
  }
  put<uint32_t>(cd, 0x06054b50);
  put<uint16_t>(cd, 0);
  put<uint16_t>(cd, 0);
  uint16_t ne = z64 ? 0xFFFF : static_cast<uint16_t>(members_.size());
  put<uint16_t>(cd, ne);
  put<uint16_t>(cd, ne);
  put<uint32_t>(cd, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(cd_size));
  put<uint32_t>(cd, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(cd_off));
  put<uint16_t>(cd, 0);
  file_.write(cd.data(), cd.size());
  file_.commit();
}

void save_npz(const std::string& path, const std::vector<std::pair<std::string, Array>>& arrays, bool force_zip64) {
  NpzWriter w(path, force_zip64);
  for (const auto& [k, a] : arrays) w.add(k, a);
  w.close();
}

void save_npz(const std::string& path, const NamedTensors& tensors) {
  std::vector<std::pair<std::string, Array>> arrays;
  for (const auto& [k, t] : tensors) arrays.emplace_back(k, from_tensor(t, std::nullopt, detail::concat(path, ": ", k)));
  save_npz(path, arrays);
}

// ---- NpzRowReader ----
struct NpzRowReader::Member {
  ZipEntry entry;
  bool opened = false;
  Header header{};
  uint64_t data_at = 0;      // stored: file offset of the payload
  uint64_t payload = 0;      // payload bytes
  uint64_t row_bytes = 0;    // bytes of one row (leading axis)
  Array inflated;            // deflate: the whole array, inflated when first used
  uint32_t crc = 0;          // stored: CRC-32 of the header and payload[0, crc_at), read in order
  uint64_t crc_at = 0;
};

struct NpzRowReader::Impl {
  FileSource src;
  std::string path;
  std::map<std::string, Member> members;
  explicit Impl(const std::string& p) : src(p), path(p) {}

  Member& open(const std::string& key) {
    auto it = members.find(key);
    if (it == members.end()) {
      std::string have;
      for (const auto& [k, m] : members) have += (have.empty() ? "" : ", ") + k;
      throw Error(detail::concat(path, ": no array named '", key, "' (arrays: ", have.empty() ? "none" : have, ")"));
    }
    Member& m = it->second;
    if (m.opened) return m;
    const std::string what = detail::concat(path, ": array '", key, "'");
    if (m.entry.method == 8) {  // deflate (np.savez_compressed): inflated whole, as load_npz does
      m.inflated = npy_from_buffer(extract(m.entry, src, path), what);
      m.header.dtype = m.inflated.dtype;
      m.header.shape = m.inflated.shape;
      m.payload = m.inflated.bytes.size();
    } else {
      const std::string w = detail::concat(path, ": member '", m.entry.name, "'");
      const uint64_t start = member_start(m.entry, src, w);
      LP_CHECK(m.entry.csize == m.entry.usize, w, ": stored member with compressed size ", m.entry.csize, " != size ",
               m.entry.usize);
      const uint64_t size = m.entry.usize;
      std::vector<uint8_t> head = src.bytes(start, static_cast<size_t>(std::min<uint64_t>(size, 12)));
      if (head.size() >= 12) {  // the header's length, then the whole header
        const uint64_t hlen = head[6] == 1 ? 10 + rd<uint16_t>(head.data() + 8) : 12 + rd<uint32_t>(head.data() + 8);
        head = src.bytes(start, static_cast<size_t>(std::min(size, hlen)));
      }
      m.header = parse_header(head.data(), head.size(), what);
      check_payload_size(m.header, size - m.header.data_offset, what);
      m.data_at = start + m.header.data_offset;
      m.payload = size - m.header.data_offset;
      m.crc = crc_update(0, head.data(), static_cast<size_t>(m.header.data_offset));
      if (m.payload == 0) LP_CHECK(m.crc == m.entry.crc, w, ": CRC-32 mismatch (corrupt file)");
    }
    LP_CHECK(!m.header.shape.empty(), what, ": a scalar has no rows");
    m.row_bytes = m.header.shape[0] > 0 ? m.payload / static_cast<uint64_t>(m.header.shape[0]) : 0;
    m.opened = true;
    return m;
  }
};

NpzRowReader::NpzRowReader(const std::string& path) : impl_(std::make_unique<Impl>(path)) {
  for (auto& e : read_central_directory(impl_->src, path)) {
    if (e.name.size() < 4 || e.name.compare(e.name.size() - 4, 4, ".npy") != 0) continue;
    std::string key = e.name.substr(0, e.name.size() - 4);
    Member m;
    m.entry = std::move(e);
    LP_CHECK(impl_->members.emplace(key, std::move(m)).second, path, ": member '", key, ".npy' appears twice");
  }
}
NpzRowReader::~NpzRowReader() = default;
NpzRowReader::NpzRowReader(NpzRowReader&&) noexcept = default;

const std::string& NpzRowReader::path() const { return impl_->path; }
bool NpzRowReader::has(const std::string& key) const { return impl_->members.count(key) > 0; }
std::vector<std::string> NpzRowReader::keys() const {
  std::vector<std::string> k;
  for (const auto& [key, m] : impl_->members) k.push_back(key);
  return k;
}
const Shape& NpzRowReader::shape(const std::string& key) { return impl_->open(key).header.shape; }
NpyDType NpzRowReader::dtype(const std::string& key) { return impl_->open(key).header.dtype; }

Array NpzRowReader::rows(const std::string& key, int64_t start, int64_t n) {
  Member& m = impl_->open(key);
  const Shape& sh = m.header.shape;
  LP_CHECK(start >= 0 && n >= 0 && start <= sh[0] && n <= sh[0] - start, impl_->path, ": array '", key, "': rows [",
           start, ", ", start + n, ") outside ", shape_str(sh));
  Array a;
  a.dtype = m.header.dtype;
  a.shape = sh;
  a.shape[0] = n;
  const uint64_t off = static_cast<uint64_t>(start) * m.row_bytes, len = static_cast<uint64_t>(n) * m.row_bytes;
  if (m.entry.method == 8) {
    a.bytes.assign(m.inflated.bytes.begin() + static_cast<std::ptrdiff_t>(off),
                   m.inflated.bytes.begin() + static_cast<std::ptrdiff_t>(off + len));
    return a;
  }
  a.bytes.resize(static_cast<size_t>(len));
  if (len) impl_->src.read(m.data_at + off, static_cast<size_t>(len), a.bytes.data());
  const std::string what = detail::concat(impl_->path, ": array '", key, "'");
  if (a.dtype == NpyDType::B1)
    for (size_t i = 0; i < a.bytes.size(); ++i)
      LP_CHECK(a.bytes[i] <= 1, what, ": bool element ", off + i, " has byte value ", int(a.bytes[i]));
  if (off == m.crc_at && len > 0) {  // read in order: the member's CRC-32 is checked when its last byte arrives
    m.crc = crc_update(m.crc, a.bytes.data(), a.bytes.size());
    m.crc_at += len;
    if (m.crc_at == m.payload)
      LP_CHECK(m.crc == m.entry.crc, impl_->path, ": member '", m.entry.name, "': CRC-32 mismatch (corrupt file)");
  }
  return a;
}

}  // namespace lowpass::npy
