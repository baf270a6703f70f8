// Zoom levels built as a bigWig's items are written; see bigwig_zoom.h.
#include "models/data/bigwig_zoom.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "engine/error.h"

namespace lowpass::bwzoom {

namespace {
constexpr uint32_t kBigWigMagic = 0x888FFC26u, kIndexMagic = 0x2468ACE0u;

template <typename T>
void put(std::vector<unsigned char>& b, T v) {
  const auto* p = reinterpret_cast<const unsigned char*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}
}  // namespace

ZoomWriter::ZoomWriter(const std::string& spill_dir, std::string what) : dir_(spill_dir), what_(std::move(what)) {
  uint64_t r = kFirst;
  for (Level& l : levels_) {
    l.reduction = static_cast<uint32_t>(r);
    r *= 4;
  }
}

ZoomWriter::~ZoomWriter() {
  if (spill_) std::fclose(spill_);
}

void ZoomWriter::add(uint32_t chrom, uint32_t start, uint32_t end, float value) {
  if (end <= start) return;
  if (chroms_.empty() || chroms_.back() != chrom) chroms_.push_back(chrom);
  ++items_;
  span_sum_ += end - start;
  const uint32_t r = levels_[0].reduction;
  for (uint32_t a = start; a < end;) {  // the pieces of [start, end) in each finest window
    const uint64_t window_end = (static_cast<uint64_t>(a) / r + 1) * r;
    const uint32_t b = static_cast<uint32_t>(std::min<uint64_t>(end, window_end));
    const double n = b - a, v = value;
    merge(0, chrom, a, b, b - a, v, v, n * v, n * v * v);
    a = b;
  }
}

void ZoomWriter::merge(int k, uint32_t chrom, uint32_t start, uint32_t end, uint64_t count, double mn, double mx,
                       double sum, double sumsq) {
  Level& l = levels_[k];
  const uint32_t window = start / l.reduction;
  if (l.cur.open && (l.cur.chrom != chrom || l.cur.window != window)) emit(k);
  Record& c = l.cur;
  if (!c.open) {
    c = Record{chrom, start, end, window, count, mn, mx, sum, sumsq, true};
    return;
  }
  c.end = std::max(c.end, end);
  c.count += count;
  c.min = std::min(c.min, mn);
  c.max = std::max(c.max, mx);
  c.sum += sum;
  c.sumsq += sumsq;
}

void ZoomWriter::emit(int k) {
  Level& l = levels_[k];
  const Record c = l.cur;
  l.cur.open = false;
  if (l.buf.empty()) l.chrom0 = c.chrom, l.start0 = c.start;
  put<uint32_t>(l.buf, c.chrom);
  put<uint32_t>(l.buf, c.start);
  put<uint32_t>(l.buf, c.end);
  put<uint32_t>(l.buf, static_cast<uint32_t>(c.count));  // at most the reduction (< 2^32)
  put<float>(l.buf, static_cast<float>(c.min));
  put<float>(l.buf, static_cast<float>(c.max));
  put<float>(l.buf, static_cast<float>(c.sum));
  put<float>(l.buf, static_cast<float>(c.sumsq));
  ++l.records;
  if (l.buf.size() >= size_t{32} * kRecordsPerBlock) flush_block(k);
  if (k + 1 < kLevels) merge(k + 1, c.chrom, c.start, c.end, c.count, c.min, c.max, c.sum, c.sumsq);
}

void ZoomWriter::flush_block(int k) {
  Level& l = levels_[k];
  if (l.buf.empty()) return;
  if (!spill_) {
    std::string tmpl = (dir_.empty() ? std::string(".") : dir_) + "/.lowpass-zoom-XXXXXX";
    const int fd = mkstemp(tmpl.data());
    LP_CHECK(fd >= 0, "bigWig '", what_, "': cannot create a spill file for the zoom levels in ", dir_, ": ",
             std::strerror(errno));
    unlink(tmpl.c_str());  // gone with the process, whatever happens
    spill_ = fdopen(fd, "w+b");
    if (spill_ == nullptr) close(fd);
    LP_CHECK(spill_ != nullptr, "bigWig '", what_, "': cannot open the zoom levels' spill file");
  }
  uLongf size = compressBound(static_cast<uLong>(l.buf.size()));
  std::vector<unsigned char> z(size);
  // zlib's fastest level: zoom records (float sums) hardly compress at level 6 either (a 40-Mb dense track: 0.25 %
  // larger file, 7.18 -> 5.08 s to write, most of it deflate).
  LP_CHECK(compress2(z.data(), &size, l.buf.data(), static_cast<uLong>(l.buf.size()), Z_BEST_SPEED) == Z_OK,
           "bigWig '", what_, "': deflating a zoom block failed");
  LP_CHECK(std::fwrite(z.data(), 1, size, spill_) == size, "bigWig '", what_,
           "': writing the zoom levels' spill file failed (a full disk or a file size limit?)");
  uint32_t end1 = 0, chrom1 = 0;
  std::memcpy(&chrom1, l.buf.data() + l.buf.size() - 32, 4);
  std::memcpy(&end1, l.buf.data() + l.buf.size() - 24, 4);
  l.blocks.push_back({l.chrom0, l.start0, chrom1, end1, spilled_, size});
  spilled_ += size;
  l.buf.clear();
}

void ZoomWriter::finish() {
  if (finished_) return;
  finished_ = true;
  for (int k = 0; k < kLevels; ++k) {  // a level's last record merges into the next level before that closes
    if (levels_[k].cur.open) emit(k);
    flush_block(k);
  }
}

namespace {
// Writes an R-tree (UCSC's cirTree) over `items` (in order) at the file's current end; returns its offset.
struct Out {
  std::FILE* f;
  const std::string& what;
  std::vector<unsigned char> b;
  void flush() {
    LP_CHECK(std::fwrite(b.data(), 1, b.size(), f) == b.size(), "bigWig '", what,
             "': writing the zoom levels failed (a full disk or a file size limit?)");
    b.clear();
  }
};
}  // namespace

void ZoomWriter::append(const std::string& path, const std::vector<uint32_t>& chrom_lengths) {
  finish();
  if (items_ == 0) return;
  const double mean = span_sum_ / static_cast<double>(items_);
  int first = 0;
  while (first < kLevels && levels_[first].reduction < 4 * mean) ++first;
  if (first == kLevels) return;  // items longer than a million bases: no zoom level helps (as libBigWig)
  uint32_t longest = 0;
  for (uint32_t c : chroms_) longest = std::max(longest, c < chrom_lengths.size() ? chrom_lengths[c] : 0u);
  int last = first;
  while (last + 1 < kLevels && levels_[last + 1].reduction <= longest) ++last;

  std::FILE* f = std::fopen(path.c_str(), "r+b");
  LP_CHECK(f != nullptr, "bigWig '", what_, "': cannot reopen ", path, " for its zoom levels: ", std::strerror(errno));
  struct Closer {
    std::FILE* f;
    ~Closer() {
      if (f) std::fclose(f);
    }
  } closer{f};
  const auto fail = [&](const char* what) {
    throw Error(detail::concat("bigWig '", what_, "': ", what, " failed (a full disk or a file size limit?)"));
  };
  if (fseeko(f, 0, SEEK_END) != 0) fail("seeking the end of the file");
  Out out{f, what_, {}};
  uint64_t pos = static_cast<uint64_t>(ftello(f));
  std::vector<uint64_t> data_at, index_at;
  std::vector<unsigned char> chunk(compressBound(size_t{32} * kRecordsPerBlock));  // a block at most
  for (int k = first; k <= last; ++k) {
    Level& l = levels_[k];
    data_at.push_back(pos);
    put<uint32_t>(out.b, static_cast<uint32_t>(std::min<uint64_t>(l.records, UINT32_MAX)));  // UCSC: record count
    out.flush();
    pos += 4;
    if (std::fflush(spill_) != 0) fail("reading the zoom levels' spill file");
    for (BlockEntry& b : l.blocks) {  // the level's blocks, in order (ascending in the spill file, among others')
      if (b.size > chunk.size()) chunk.resize(b.size);
      if (fseeko(spill_, static_cast<off_t>(b.offset), SEEK_SET) != 0 ||
          std::fread(chunk.data(), 1, b.size, spill_) != b.size)
        fail("reading the zoom levels' spill file");
      if (std::fwrite(chunk.data(), 1, b.size, f) != b.size) fail("writing the zoom levels");
      b.offset = pos;  // now its place in the bigWig
      pos += b.size;
    }
    // The index: header, then the nodes level by level from the root (every node but a level's last is full).
    const uint64_t N = l.blocks.size(), B = kIndexBlockSize;
    std::vector<uint64_t> count{(N + B - 1) / B};  // nodes per tree level, leaves first
    while (count.back() > 1) count.push_back((count.back() + B - 1) / B);
    const int H = static_cast<int>(count.size());
    std::vector<uint64_t> span(H), level_at(H);  // items under one full node of a level; the level's first node
    span[0] = B;
    for (int h = 1; h < H; ++h) span[h] = span[h - 1] * B;
    const auto node_bytes = [&](int h, uint64_t children) { return 4 + (h == 0 ? 32 : 24) * children; };
    const auto children = [&](int h, uint64_t j) {
      const uint64_t below = h == 0 ? N : count[h - 1];
      return std::min(B, below - j * B);
    };
    index_at.push_back(pos);
    uint64_t at = pos + 48;
    for (int h = H - 1; h >= 0; --h) {
      level_at[h] = at;
      at += (count[h] - 1) * node_bytes(h, B) + node_bytes(h, children(h, count[h] - 1));
    }
    const BlockEntry &b0 = l.blocks.front(), &bn = l.blocks.back();
    put<uint32_t>(out.b, kIndexMagic);
    put<uint32_t>(out.b, static_cast<uint32_t>(B));
    put<uint64_t>(out.b, N);
    put<uint32_t>(out.b, b0.chrom0);
    put<uint32_t>(out.b, b0.start0);
    put<uint32_t>(out.b, bn.chrom1);
    put<uint32_t>(out.b, bn.end1);
    put<uint64_t>(out.b, pos);  // the end of the data the index covers
    put<uint32_t>(out.b, kRecordsPerBlock);
    put<uint32_t>(out.b, 0);
    for (int h = H - 1; h >= 0; --h) {
      for (uint64_t j = 0; j < count[h]; ++j) {
        const uint64_t n = children(h, j);
        put<uint8_t>(out.b, h == 0 ? 1 : 0);
        put<uint8_t>(out.b, 0);
        put<uint16_t>(out.b, static_cast<uint16_t>(n));
        for (uint64_t c = 0; c < n; ++c) {
          const uint64_t child = j * B + c;  // in the level below (items for leaves)
          const uint64_t a = h == 0 ? child : child * span[h - 1];
          const uint64_t e = h == 0 ? child + 1 : std::min(N, (child + 1) * span[h - 1]);
          put<uint32_t>(out.b, l.blocks[a].chrom0);
          put<uint32_t>(out.b, l.blocks[a].start0);
          put<uint32_t>(out.b, l.blocks[e - 1].chrom1);
          put<uint32_t>(out.b, l.blocks[e - 1].end1);
          if (h == 0) {
            put<uint64_t>(out.b, l.blocks[a].offset);
            put<uint64_t>(out.b, l.blocks[a].size);
          } else {
            put<uint64_t>(out.b, level_at[h - 1] + child * node_bytes(h - 1, B));
          }
        }
        if (out.b.size() >= (1u << 20)) out.flush();
      }
    }
    out.flush();
    pos = at;
  }
  put<uint32_t>(out.b, kBigWigMagic);  // the format ends with the magic number
  out.flush();
  // The header: the zoom count, then the zoom headers bwCreateHdr reserved (reduction, reserved, data, index).
  const auto levels = static_cast<uint16_t>(data_at.size());
  if (fseeko(f, 6, SEEK_SET) != 0) fail("writing the header");
  put<uint16_t>(out.b, levels);
  out.flush();
  if (fseeko(f, 64, SEEK_SET) != 0) fail("writing the zoom headers");
  for (int i = 0; i < levels; ++i) {
    put<uint32_t>(out.b, levels_[first + i].reduction);
    put<uint32_t>(out.b, 0);
    put<uint64_t>(out.b, data_at[i]);
    put<uint64_t>(out.b, index_at[i]);
  }
  out.flush();
  closer.f = nullptr;
  if (std::fclose(f) != 0) fail("closing the file after its zoom levels");
}

}  // namespace lowpass::bwzoom
