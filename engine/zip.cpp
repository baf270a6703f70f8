// The zip container of .npz files (engine/zip.h): central directory (zip64 aware), member extraction (stored or raw
// deflate through zlib, CRC-32 checked), pread-backed file source, stored-member local header.
// Test: build/tests/lowpass_tests -ts=npz
#include "engine/zip.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "engine/safetensors.h"

namespace lowpass::npy::zip {

uint32_t crc_update(uint32_t crc, const uint8_t* p, size_t n) {
  if (n == 0) return crc;  // crc32_z(crc, NULL, 0) would return the initial value, not crc
  return static_cast<uint32_t>(crc32_z(crc, p, n));
}

FileSource::FileSource(const std::string& p) : path(p) {
  fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  LP_CHECK(fd >= 0, p, ": cannot open for reading: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(detail::concat(p, ": not a regular file"));
  }
  n = static_cast<uint64_t>(st.st_size);
}

FileSource::~FileSource() {
  if (fd >= 0) ::close(fd);
}

void FileSource::read(uint64_t off, size_t len, uint8_t* dst) const {
  LP_ASSERT(off <= n && len <= n - off, "npz FileSource read out of bounds");
  size_t done = 0;
  while (done < len) {
    ssize_t r = ::pread(fd, dst + done, len - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    LP_CHECK(r > 0, path, ": read failed at byte ", off + done, r == 0 ? " (file shrank while reading)" : ": ",
             r == 0 ? "" : std::strerror(errno));
    done += static_cast<size_t>(r);
  }
}

std::vector<ZipEntry> read_central_directory(const Source& src, const std::string& what) {
  const uint64_t n = src.size();
  LP_CHECK(n >= 22, what, ": not a zip/npz file (", n, " bytes)");
  const uint64_t tail_off = n > 22 + 65535 ? n - 22 - 65535 : 0;
  const std::vector<uint8_t> tail = src.bytes(tail_off, static_cast<size_t>(n - tail_off));
  const uint8_t* t = tail.data();
  const size_t tn = tail.size();
  size_t eocd_t = SIZE_MAX;
  for (size_t p = tn - 22 + 1; p-- > 0;) {
    if (rd<uint32_t>(t + p) == 0x06054b50 && p + 22 + rd<uint16_t>(t + p + 20) <= tn) {
      eocd_t = p;
      break;
    }
  }
  LP_CHECK(eocd_t != SIZE_MAX, what, ": no zip end-of-central-directory record (truncated or not an npz file)");
  const uint64_t eocd = tail_off + eocd_t;
  uint64_t entries = rd<uint16_t>(t + eocd_t + 10);
  uint64_t cd_size = rd<uint32_t>(t + eocd_t + 12);
  uint64_t cd_off = rd<uint32_t>(t + eocd_t + 16);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) {
    LP_CHECK(eocd >= 20, what, ": zip64 end-of-central-directory locator missing");
    auto loc = src.bytes(eocd - 20, 20);
    LP_CHECK(rd<uint32_t>(loc.data()) == 0x07064b50, what, ": zip64 end-of-central-directory locator missing");
    uint64_t z = rd<uint64_t>(loc.data() + 8);
    LP_CHECK(n >= 56 && z <= n - 56, what, ": zip64 end-of-central-directory record out of bounds");
    auto rec = src.bytes(z, 56);
    LP_CHECK(rd<uint32_t>(rec.data()) == 0x06064b50, what, ": zip64 end-of-central-directory record corrupt");
    entries = rd<uint64_t>(rec.data() + 32);
    cd_size = rd<uint64_t>(rec.data() + 40);
    cd_off = rd<uint64_t>(rec.data() + 48);
  }
  LP_CHECK(cd_off <= n && cd_size <= n - cd_off, what, ": central directory [", cd_off, ", +", cd_size,
           ") is outside the file (", n, " bytes): truncated or corrupt");
  LP_CHECK(entries <= cd_size / 46, what, ": central directory claims ", entries, " entries in ", cd_size, " bytes");
  const std::vector<uint8_t> cd = src.bytes(cd_off, static_cast<size_t>(cd_size));
  const uint8_t* b = cd.data();
  std::vector<ZipEntry> out;
  size_t p = 0, end = cd.size();
  for (uint64_t k = 0; k < entries; ++k) {
    LP_CHECK(p + 46 <= end && rd<uint32_t>(b + p) == 0x02014b50, what, ": central directory entry ", k, " is corrupt");
    ZipEntry e;
    e.flags = rd<uint16_t>(b + p + 8);
    e.method = rd<uint16_t>(b + p + 10);
    e.crc = rd<uint32_t>(b + p + 16);
    e.csize = rd<uint32_t>(b + p + 20);
    e.usize = rd<uint32_t>(b + p + 24);
    size_t nl = rd<uint16_t>(b + p + 28), xl = rd<uint16_t>(b + p + 30), cl = rd<uint16_t>(b + p + 32);
    e.offset = rd<uint32_t>(b + p + 42);
    LP_CHECK(p + 46 + nl + xl + cl <= end, what, ": central directory entry ", k, " runs past the directory");
    e.name.assign(reinterpret_cast<const char*>(b + p + 46), nl);
    size_t x = p + 46 + nl, xe = x + xl;
    while (x + 4 <= xe) {  // extra fields: look for zip64 (id 1)
      uint16_t id = rd<uint16_t>(b + x), len = rd<uint16_t>(b + x + 2);
      LP_CHECK(x + 4 + len <= xe, what, ": member '", e.name, "' has a corrupt extra field");
      if (id == 1) {
        size_t q = x + 4, qe = x + 4 + len;
        auto next = [&](uint64_t& v) {
          if (v != 0xFFFFFFFF) return;
          LP_CHECK(q + 8 <= qe, what, ": member '", e.name, "' zip64 field too short");
          v = rd<uint64_t>(b + q);
          q += 8;
        };
        next(e.usize);
        next(e.csize);
        next(e.offset);
      }
      x += 4 + len;
    }
    out.push_back(std::move(e));
    p += 46 + nl + xl + cl;
  }
  return out;
}

// Offset of a member's data after its checked local header; `w` names the member in messages.
uint64_t member_start(const ZipEntry& e, const Source& s, const std::string& w) {
  const uint64_t n = s.size();
  LP_CHECK(!(e.flags & 1), w, " is encrypted");
  LP_CHECK(e.method == 0 || e.method == 8, w, " uses zip compression method ", e.method, " (only stored and deflate)");
  LP_CHECK(e.offset <= n && n - e.offset >= 30, w, ": local header at ", e.offset, " is outside the file");
  const auto lh = s.bytes(e.offset, 30);
  LP_CHECK(rd<uint32_t>(lh.data()) == 0x04034b50, w, ": local header at ", e.offset, " is missing");
  const size_t lname = rd<uint16_t>(lh.data() + 26);
  LP_CHECK(lname == e.name.size() && e.offset + 30 + lname <= n &&
               std::memcmp(s.bytes(e.offset + 30, lname).data(), e.name.data(), lname) == 0,
           w, ": local header names a different member (corrupt file)");
  uint64_t start = e.offset + 30 + lname + rd<uint16_t>(lh.data() + 28);
  LP_CHECK(start <= n && e.csize <= n - start, w, ": data [", start, ", +", e.csize, ") runs past the end of the file (",
           n, " bytes): truncated");
  return start;
}

std::vector<uint8_t> extract(const ZipEntry& e, const Source& s, const std::string& what) {
  std::string w = detail::concat(what, ": member '", e.name, "'");
  const uint64_t start = member_start(e, s, w);
  std::vector<uint8_t> out;
  if (e.method == 0) {
    LP_CHECK(e.csize == e.usize, w, ": stored member with compressed size ", e.csize, " != size ", e.usize);
    out = s.bytes(start, static_cast<size_t>(e.csize));
  } else {
    // deflate expands at most ~1032:1; a larger claim is corrupt (and would exhaust memory)
    LP_CHECK(e.usize <= e.csize * 1032 + 1024, w, ": claims ", e.usize, " bytes from ", e.csize, " compressed");
    safetensors::check_fits_in_memory(e.usize, w + ": inflating");
    const std::vector<uint8_t> comp = s.bytes(start, static_cast<size_t>(e.csize));
    const uint8_t* src = comp.data();
    out.resize(e.usize);
    z_stream zs{};
    LP_CHECK(inflateInit2(&zs, -MAX_WBITS) == Z_OK, w, ": zlib init failed");
    uint64_t in_done = 0, out_done = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
      uint64_t in_chunk = std::min<uint64_t>(e.csize - in_done, 1u << 30);
      uint64_t out_chunk = std::min<uint64_t>(e.usize - out_done, 1u << 30);
      zs.next_in = const_cast<Bytef*>(src + in_done);
      zs.avail_in = static_cast<uInt>(in_chunk);
      zs.next_out = out.data() + out_done;
      zs.avail_out = static_cast<uInt>(out_chunk);
      rc = inflate(&zs, Z_NO_FLUSH);
      in_done += in_chunk - zs.avail_in;
      out_done += out_chunk - zs.avail_out;
      if (rc == Z_BUF_ERROR && (in_done == e.csize || out_done == e.usize)) break;
      if (rc == Z_OK && in_chunk == zs.avail_in && out_chunk == zs.avail_out) break;  // no progress
    }
    inflateEnd(&zs);
    LP_CHECK(rc == Z_STREAM_END && out_done == e.usize, w, ": corrupt deflate data (zlib code ", rc, ", ", out_done,
             " of ", e.usize, " bytes)");
  }
  uint32_t crc = crc_update(0, out.data(), out.size());
  LP_CHECK(crc == e.crc, w, ": CRC-32 mismatch (corrupt file)");
  return out;
}

// npy from a member buffer, reusing its memory for the payload (no second copy).

std::vector<uint8_t> local_header(const std::string& name, uint32_t crc, uint64_t size, bool z64) {
  std::vector<uint8_t> h;
  put<uint32_t>(h, 0x04034b50);
  put<uint16_t>(h, z64 ? 45 : 20);
  put<uint16_t>(h, 0);       // flags
  put<uint16_t>(h, 0);       // stored
  put<uint16_t>(h, 0);       // time
  put<uint16_t>(h, 0x21);    // date 1980-01-01
  put<uint32_t>(h, crc);
  put<uint32_t>(h, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(size));
  put<uint32_t>(h, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(size));
  put<uint16_t>(h, static_cast<uint16_t>(name.size()));
  put<uint16_t>(h, z64 ? 20 : 0);
  h.insert(h.end(), name.begin(), name.end());
  if (z64) {
    put<uint16_t>(h, 1);
    put<uint16_t>(h, 16);
    put<uint64_t>(h, size);
    put<uint64_t>(h, size);
  }
  return h;
}

}  // namespace lowpass::npy::zip
