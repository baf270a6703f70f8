// NumPy .npy / .npz read and write. npy: "\x93NUMPY" v1-3 header dict {descr, fortran_order, shape}
// + C-order little-endian payload; npz: zip of `name.npy` members (read stored + deflate, write stored).
// Every size and offset is bounds-checked before use. Test: build/tests/lowpass_tests -ts=npz
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/safetensors.h"
#include "engine/tensor.h"

namespace lowpass::npy {

// Element types read and written ('|b1' is bool). Big-endian and structured dtypes are refused.
enum class NpyDType : uint8_t { B1, U1, I1, U2, I2, U4, I4, U8, I8, F4, F8 };
const char* npy_descr(NpyDType t);  // "<f4", "|u1", ...
size_t npy_size(NpyDType t);
bool npy_is_int(NpyDType t);  // everything but F4/F8

// One array: its dtype, shape and raw little-endian C-order bytes.
struct Array {
  NpyDType dtype = NpyDType::F4;
  Shape shape;
  std::vector<uint8_t> bytes;  // numel * npy_size(dtype)

  int64_t numel() const { return shape_numel(shape); }
  // Host tensor. Default type: F64 for f8, F32 otherwise. Integer values that a float32 cannot hold
  // exactly (|v| > 2^24) throw Error suggesting DType::F64; `what` names the array in messages.
  Tensor to_tensor(Context& ctx, std::optional<DType> as = std::nullopt, const std::string& what = "array") const;
  // Values as int64 (integer/bool dtypes only; Error otherwise).
  std::vector<int64_t> to_int64(const std::string& what = "array") const;
};

// Array from a tensor (host copy), stored as `as`: floats keep their type by default; integer types
// require integral in-range values (Error naming `what` and the element otherwise).
Array from_tensor(const Tensor& t, std::optional<NpyDType> as = std::nullopt, const std::string& what = "array");

// ---- .npy ----
Array parse_npy(const uint8_t* bytes, size_t size, const std::string& what);
Array load_npy(const std::string& path);
std::vector<uint8_t> npy_header(NpyDType t, const Shape& shape);  // magic + v1 header, 64-byte aligned
void save_npy(const std::string& path, const Array& a);           // atomic

// ---- .npz ----
// Members named `<key>.npy` (other members are ignored). `only` (when non-empty) selects keys; a
// requested key that is missing is an Error listing the keys present.
std::map<std::string, Array> parse_npz(const uint8_t* bytes, size_t size, const std::string& what,
                                       const std::vector<std::string>& only = {});
std::map<std::string, Array> load_npz(const std::string& path, const std::vector<std::string>& only = {});
// Atomic write of stored (uncompressed) members; zip64 records when sizes need them (or forced).
void save_npz(const std::string& path, const std::vector<std::pair<std::string, Array>>& arrays,
              bool force_zip64 = false);
void save_npz(const std::string& path, const NamedTensors& tensors);  // float32/float64 as is

// Rows of the arrays of an npz, read on demand instead of loading the file: each array's npy header is parsed when
// the array is first asked for, then rows(key, start, n) returns rows [start, start + n) of its leading axis as an
// Array of shape (n, ...). Stored members (what lowpass and np.savez write) are read in place with pread at any
// row, so memory is one request's rows; a deflate member (np.savez_compressed) is inflated whole when first used,
// as load_npz would. A stored member's CRC-32 is checked when its rows have been read in order to the last one.
// Errors name the file and the array (a missing key lists the arrays present), as load_npz's.
class NpzRowReader {
 public:
  explicit NpzRowReader(const std::string& path);
  ~NpzRowReader();
  NpzRowReader(NpzRowReader&&) noexcept;
  const std::string& path() const;
  bool has(const std::string& key) const;
  std::vector<std::string> keys() const;  // the arrays' names, sorted (load_npz's map order)
  const Shape& shape(const std::string& key);
  NpyDType dtype(const std::string& key);
  Array rows(const std::string& key, int64_t start, int64_t n);

 private:
  struct Member;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Streaming writer for arrays too large to hold twice (e.g. attributions over many regions):
//   NpzWriter w(path); w.begin("attr", NpyDType::F4, {N, 4, L}); w.append(chunk)...; w.end(); w.close();
// Chunks are written in C order; end() checks that exactly the declared element count arrived.
class NpzWriter {
 public:
  explicit NpzWriter(const std::string& path, bool force_zip64 = false);
  ~NpzWriter();  // without close() the temp file is removed and `path` is untouched
  void add(const std::string& key, const Array& a);
  void begin(const std::string& key, NpyDType dtype, const Shape& shape);
  void append(const Tensor& chunk);                     // any shape; converted to the declared dtype
  void append_raw(const void* data, size_t bytes);      // already in the declared dtype
  void end();
  void close();  // central directory, fsync, rename

 private:
  struct Member {
    std::string name;
    uint64_t offset, size;
    uint32_t crc;
  };
  safetensors::AtomicFile file_;
  std::string path_;
  bool force64_;
  std::vector<Member> members_;
  bool open_ = false;
  NpyDType dtype_ = NpyDType::F4;
  uint64_t expect_ = 0, got_ = 0, header_at_ = 0;
  uint32_t crc_ = 0;
};

}  // namespace lowpass::npy
