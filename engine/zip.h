// The zip container of .npz files, internal to engine/npz*.cpp: the central directory (zip64 aware), a member's
// start and its bytes (stored or raw deflate, CRC-32 checked), random-access sources (memory, pread on a file) and
// the stored-member local header the writer emits. Every field bounds-checked. Test: build/tests/lowpass_tests -ts=npz
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/error.h"

namespace lowpass::npy::zip {

template <typename T>
T rd(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

// CRC-32 of p[0, n) continued from crc (0 to start).
uint32_t crc_update(uint32_t crc, const uint8_t* p, size_t n);

struct ZipEntry {
  std::string name;
  uint16_t flags, method;
  uint32_t crc;
  uint64_t csize, usize, offset;
};

// Random-access bytes of an npz: an in-memory image or a file read with pread (no whole-file copy).
struct Source {
  virtual ~Source() = default;
  virtual uint64_t size() const = 0;
  virtual void read(uint64_t off, size_t n, uint8_t* dst) const = 0;  // caller checked off + n <= size()
  std::vector<uint8_t> bytes(uint64_t off, size_t n) const {
    std::vector<uint8_t> b(n);
    if (n) read(off, n, b.data());
    return b;
  }
};

struct MemSource final : Source {
  const uint8_t* b;
  size_t n;
  MemSource(const uint8_t* bytes, size_t size) : b(bytes), n(size) {}
  uint64_t size() const override { return n; }
  void read(uint64_t off, size_t len, uint8_t* dst) const override {
    LP_ASSERT(off <= n && len <= n - off, "npz MemSource read out of bounds");
    std::memcpy(dst, b + off, len);
  }
};

struct FileSource final : Source {
  int fd = -1;
  uint64_t n = 0;
  std::string path;
  explicit FileSource(const std::string& p);  // a regular file, else Error naming it
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  uint64_t size() const override { return n; }
  void read(uint64_t off, size_t len, uint8_t* dst) const override;
};

// The members of the zip in `src` (what: the file, for messages).
std::vector<ZipEntry> read_central_directory(const Source& src, const std::string& what);
// Offset of member e's data (after its local header); w names the member in messages.
uint64_t member_start(const ZipEntry& e, const Source& s, const std::string& w);
// Member e's bytes, inflated when deflated, CRC-32 checked.
std::vector<uint8_t> extract(const ZipEntry& e, const Source& s, const std::string& what);

constexpr uint64_t k32 = 0xFFFFFFFF;
// The local header of a stored member (zip64 fields when z64).
std::vector<uint8_t> local_header(const std::string& name, uint32_t crc, uint64_t size, bool z64);

}  // namespace lowpass::npy::zip
