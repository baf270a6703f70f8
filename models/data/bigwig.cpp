// bigWig reading/writing through libBigWig (the zoom levels of written files: bigwig_zoom.h); stranded Track windows
// with reverse-complement flips.
// Track::window with revcomp: out[s][i] = raw[S-1-s][L-1-i].
// Test: build/tests/lowpass_tests -ts=genome
#include "models/data/bigwig.h"

extern "C" {
#include <bigWig.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "models/data/bigwig_zoom.h"
#include "models/data/readable.h"

namespace lowpass {

namespace {
std::once_flag bw_init_once;
void bw_init() {
  // libBigWig keeps its buffer size in a library global; set it once per process.
  std::call_once(bw_init_once, [] { bwInit(1 << 17); });
}
bigWigFile_t* as_bw(void* p) { return static_cast<bigWigFile_t*>(p); }

// ---- layout check before libBigWig sees the file ----
// libBigWig trusts every offset and count it reads: a truncated download or a flipped byte made it read past its
// buffers and crash (fuzz_bigwig). So the file's structure (little-endian bigWig, UCSC's bbi layout) is walked
// here first with every read bounded by the file size: the header, zoom headers, total summary, the chromosome
// B+ tree and the R-tree indexes (main and per zoom level) with every data block they point at.
class BoundedFile {
 public:
  BoundedFile(const std::string& path) : path_(path), f_(path, std::ios::binary) {
    f_.seekg(0, std::ios::end);
    size_ = static_cast<uint64_t>(std::max<std::streamoff>(f_.tellg(), 0));
  }
  uint64_t size() const { return size_; }
  // Throws unless [off, off + n) lies inside the file.
  void require(uint64_t off, uint64_t n, const char* what) const {
    LP_CHECK(off <= size_ && n <= size_ - off, "bigWig '", path_, "': the ", what, " at byte ", off, " (", n,
             " bytes) runs past the end of the file (", size_, " bytes): truncated or corrupt file");
  }
  template <typename T>
  T get(uint64_t off, const char* what) {
    T v{};
    read(off, &v, sizeof(T), what);
    return v;
  }
  // n bytes at off (bounded), read at once: a tree node's items.
  std::vector<char> bytes(uint64_t off, uint64_t n, const char* what) {
    require(off, n, what);
    std::vector<char> b(static_cast<size_t>(n));
    read(off, b.data(), n, what);
    return b;
  }
  const std::string& path() const { return path_; }

 private:
  void read(uint64_t off, void* dst, uint64_t n, const char* what) {
    require(off, n, what);
    f_.seekg(static_cast<std::streamoff>(off));
    f_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    LP_CHECK(f_.gcount() == static_cast<std::streamsize>(n), "bigWig '", path_, "': read of the ", what, " at byte ",
             off, " failed");
  }
  std::string path_;
  std::ifstream f_;
  uint64_t size_ = 0;
};

// Walks a bbi tree (the chromosome B+ tree and the R-tree indexes share the node layout: isLeaf u8, reserved u8,
// count u16, then `count` items) from the node at `root`, with every node inside the file, the depth bounded and a
// node budget that a cycle exhausts. An inner item of `inner_item` bytes holds its child's offset at `child_at`;
// visit(item bytes, item's file offset) sees every leaf item of `leaf_item` bytes.
template <typename Visit>
void walk_tree(BoundedFile& f, uint64_t root, const char* what, uint64_t leaf_item, uint64_t inner_item,
               uint64_t child_at, Visit visit) {
  constexpr int kMaxTreeDepth = 64;
  int64_t budget = static_cast<int64_t>(f.size() / 4) + 1;  // a node takes >= 4 bytes: more visits means a cycle
  std::vector<std::pair<uint64_t, int>> stack{{root, 0}};
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    LP_CHECK(depth <= kMaxTreeDepth && --budget >= 0, "bigWig '", f.path(), "': the ", what,
             " is deeper than any real one or loops (corrupt file)");
    const bool leaf = f.get<uint8_t>(node, what) != 0;
    const uint16_t count = f.get<uint16_t>(node + 2, what);
    const uint64_t item = leaf ? leaf_item : inner_item;
    const std::vector<char> items = f.bytes(node + 4, item * count, what);
    for (uint16_t i = 0; i < count; ++i) {
      const char* p = items.data() + item * i;
      if (leaf) {
        visit(p, node + 4 + item * i);
      } else {
        uint64_t child = 0;
        std::memcpy(&child, p + child_at, 8);
        stack.push_back({child, depth + 1});
      }
    }
  }
}

// An R-tree index (bbi "cirTree") at `off`: every node inside the file, every leaf's data block inside the file.
// Items: start chrom, start base, end chrom, end base (u32 each), data offset (u64), and for leaves data size (u64).
void check_rtree(BoundedFile& f, uint64_t off, const char* what) {
  LP_CHECK(f.get<uint32_t>(off, what) == 0x2468ACE0u, "bigWig '", f.path(), "': the ", what, " at byte ", off,
           " has a bad magic number (corrupt file)");
  f.require(off, 48, what);
  walk_tree(f, off + 48, what, 32, 24, 16, [&](const char* p, uint64_t) {
    uint64_t data = 0, size = 0;
    std::memcpy(&data, p + 16, 8);
    std::memcpy(&size, p + 24, 8);
    f.require(data, size, "data block");
  });
}

// The chromosome B+ tree at `off`: nodes inside the file, each id below the item count exactly once, key and value
// sizes sane. Items: key (key_size bytes), then a leaf's chromosome id and size (u32 each) or an inner child (u64).
void check_chrom_tree(BoundedFile& f, uint64_t off) {
  const char* what = "chromosome list";
  LP_CHECK(f.get<uint32_t>(off, what) == 0x78CA8C91u, "bigWig '", f.path(), "': the chromosome list at byte ", off,
           " has a bad magic number (corrupt file)");
  const uint32_t key_size = f.get<uint32_t>(off + 8, what), val_size = f.get<uint32_t>(off + 12, what);
  const uint64_t items = f.get<uint64_t>(off + 16, what);
  LP_CHECK(key_size >= 1 && key_size <= 1024 && val_size == 8 && items <= f.size(), "bigWig '", f.path(),
           "': the chromosome list header is corrupt (key size ", key_size, ", value size ", val_size, ", ", items,
           " chromosomes)");
  std::vector<bool> named(items, false);  // each id exactly once: libBigWig leaves an unnamed id's name null
  uint64_t names = 0;
  walk_tree(f, off + 32, what, key_size + 8, key_size + 8, key_size, [&](const char* p, uint64_t at) {
    uint32_t id = 0;
    std::memcpy(&id, p + key_size, 4);
    LP_CHECK(id < items && !named[id], "bigWig '", f.path(), "': chromosome id ", id, " at byte ", at + key_size,
             id < items ? " appears twice" : " is not below the number of chromosomes the list declares", " (",
             items, " declared; corrupt file)");
    named[id] = true;
    ++names;
  });
  LP_CHECK(names == items, "bigWig '", f.path(), "': the chromosome list declares ", items, " chromosomes but names ",
           names, " (corrupt file)");
}

// The magic number, then the layout (above). Returns whether the file has a data index (a track with no nonzero
// value has none: index offset 0).
bool check_layout(const std::string& path) {
  BoundedFile f(path);
  LP_CHECK(f.size() >= 4, "bigWig '", path, "': file is shorter than a bigWig header");
  const uint32_t magic = f.get<uint32_t>(0, "header");
  LP_CHECK(magic != 0x8789F2EBu, "bigWig '", path, "': this is a bigBed file, expected a bigWig signal track");
  LP_CHECK(magic == 0x888FFC26u, "bigWig '", path,
           "': not a bigWig file (bad magic number; bedGraph or wig must be converted with bedGraphToBigWig)");
  f.require(0, 64, "header");
  const uint16_t zooms = f.get<uint16_t>(6, "header");
  const uint64_t chrom_tree = f.get<uint64_t>(8, "header"), data = f.get<uint64_t>(16, "header");
  const uint64_t index = f.get<uint64_t>(24, "header"), summary = f.get<uint64_t>(44, "header");
  // libBigWig allocates this much for every block it inflates; writers use tens of KiB (UCSC's default is 32 KiB).
  const uint32_t inflate_buffer = f.get<uint32_t>(52, "header");
  LP_CHECK(inflate_buffer <= (64u << 20), "bigWig '", path, "': its header asks for a ", inflate_buffer,
           "-byte decompression buffer, more than any real bigWig uses (corrupt file)");
  f.require(data, 4, "data count");
  for (uint16_t z = 0; z < zooms; ++z) {
    const uint64_t at = 64 + 24 * static_cast<uint64_t>(z);
    f.require(at, 24, "zoom header");
    const uint64_t zoom_data = f.get<uint64_t>(at + 8, "zoom header");
    const uint64_t zoom_index = f.get<uint64_t>(at + 16, "zoom header");
    f.require(zoom_data, 4, "zoom data");
    if (zoom_index != 0) check_rtree(f, zoom_index, "zoom index");
  }
  if (summary != 0) f.require(summary, 40, "total summary");
  check_chrom_tree(f, chrom_tree);
  if (index != 0) check_rtree(f, index, "data index");  // 0: no data at all (a track of zeros), as libBigWig writes
  return index != 0;
}

// A bigWig that BigWigWriter closed at `temp`, for `path`: libBigWig writes the indexes, the zoom levels and the
// closing magic number in bwClose and ignores a write that fails there (a full disk: it prints a warning and leaves
// a truncated file). The layout check and the magic number the format ends with catch such a file before commit()
// could rename it over `path`.
void check_closed(const std::string& temp, const std::string& path) {
  try {
    check_layout(temp);
    BoundedFile f(temp);
    LP_CHECK(f.size() >= 68 && f.get<uint32_t>(f.size() - 4, "end") == 0x888FFC26u, "bigWig '", temp,
             "': no magic number at its end (", f.size(), " bytes)");
  } catch (const Error& e) {
    throw Error(detail::concat("bigWig '", path, "': writing failed, the file came out incomplete (a full disk or a "
                               "file size limit?); the earlier file, if any, is kept. ", e.what()));
  }
}
}  // namespace

BigWig::BigWig(const std::string& path) : path_(path) {
  check_readable(path, "bigWig");
  has_data_ = check_layout(path);  // magic and layout, before libBigWig, which trusts every offset it reads
  bw_init();
  fp_ = bwOpen(path.c_str(), nullptr, "r");
  LP_CHECK(fp_ != nullptr, "bigWig '", path, "': libBigWig could not open it (corrupt or truncated file?)");
  bigWigFile_t* fp = as_bw(fp_);
  LP_CHECK(fp->cl != nullptr, "bigWig '", path, "': no chromosome list");
  for (int64_t i = 0; i < fp->cl->nKeys; ++i) {
    LP_CHECK(fp->cl->chrom[i] != nullptr, "bigWig '", path, "': chromosome ", i, " has no name (corrupt file)");
    sizes_.add(fp->cl->chrom[i], fp->cl->len[i]);
  }
}

BigWig::~BigWig() {
  if (fp_) bwClose(as_bw(fp_));
}

void BigWig::check_against(const ChromSizes& genome, const std::vector<std::string>& needed, bool strict) {
  missing_.clear();
  for (const auto& c : needed) {
    int64_t L = sizes_.length(c);
    if (L < 0) {
      missing_.push_back(c);
      continue;
    }
    int64_t G = genome.length(c);
    LP_CHECK(G < 0 || G == L, "bigWig '", path_, "': chromosome '", c, "' has length ", L, " but ", G,
             " in the FASTA (different genome assembly?)");
  }
  if (missing_.empty()) return;
  // A chromosome the file holds under another name (chrM as MT or chrMT, chrX as X) is not a sparse track's absent
  // chromosome: reading it as zeros would train on empty profiles there (the yeast peaks on chrM, say) without a word.
  for (const auto& c : missing_) {
    const std::string s = sizes_.suggest(c);
    LP_CHECK(s.rfind("did you mean", 0) != 0 || missing_.size() == needed.size(), "bigWig '", path_,
             "': chromosome '", c, "' is not in the file; ", s, "; rename it in the file or the FASTA (a chromosome ",
             "that is absent from a track reads as zeros, one named differently is an error)");
  }
  LP_CHECK(missing_.size() < needed.size(), "bigWig '", path_, "': none of the needed chromosomes is in the file (",
           missing_[0], ": ", sizes_.suggest(missing_[0]), ")");
  LP_CHECK(!strict, "bigWig '", path_, "': chromosome '", missing_[0], "' is not in the file; ",
           sizes_.suggest(missing_[0]));
}

void BigWig::values(const std::string& chrom, int64_t start, int64_t end, float* out) const {
  int64_t L = sizes_.length(chrom);
  int64_t n = end - start;
  LP_CHECK(n >= 0, "bigWig '", path_, "': window ", chrom, ":", start, "-", end, " has end < start");
  if (L < 0) {
    bool known_missing = false;
    for (auto& m : missing_) known_missing |= m == chrom;
    LP_CHECK(known_missing, "bigWig '", path_, "': chromosome '", chrom, "' is not in the file; ",
             sizes_.suggest(chrom));
    std::fill(out, out + n, 0.0f);
    return;
  }
  LP_CHECK(start >= 0 && end <= L, "bigWig '", path_, "': window ", chrom, ":", start, "-", end,
           " is outside the chromosome (length ", L, ")");
  std::fill(out, out + n, 0.0f);
  if (n == 0 || !has_data_) return;  // without a data index libBigWig's read fails: every value is 0
  bwOverlappingIntervals_t* o = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    o = bwGetOverlappingIntervals(as_bw(fp_), chrom.c_str(), static_cast<uint32_t>(start), static_cast<uint32_t>(end));
  }
  LP_CHECK(o != nullptr, "bigWig '", path_, "': read of ", chrom, ":", start, "-", end, " failed (corrupt file?)");
  for (uint32_t k = 0; k < o->l; ++k) {
    int64_t a = std::max<int64_t>(o->start[k], start), b = std::min<int64_t>(o->end[k], end);
    float v = o->value[k];
    if (counts_ && !(v >= 0.0f && v <= kMaxCount)) {  // once per interval, not per base; NaN fails both tests
      bwDestroyOverlappingIntervals(o);
      bad_count(chrom, a, v);
    }
    if (std::isnan(v)) v = 0.0f;
    for (int64_t i = a; i < b; ++i) out[i - start] = v;
  }
  bwDestroyOverlappingIntervals(o);
}

void BigWig::bad_count(const std::string& chrom, int64_t pos, float v) const {
  const char* what = std::isnan(v) ? "is NaN" : std::isinf(v) ? "is infinite" : v < 0 ? "is negative" : nullptr;
  LP_CHECK(what == nullptr, "bigWig '", path_, "': value ", v, " at ", chrom, ":", pos + 1, " ", what,
           "; profile models need counts >= 0 (not a fold-change, p-value or background-subtracted track)");
  throw Error(detail::concat("bigWig '", path_, "': value ", v, " at ", chrom, ":", pos + 1, " is above ", kMaxCount,
                             ", not a plausible count per base; profile models need read counts"));
}

// ---------------------------------------------------------------------------------------------
Track::Track(const std::vector<std::string>& files) {
  LP_CHECK(!files.empty(), "signal track: no bigWig files given");
  for (const auto& f : files) {
    files_.push_back(std::make_shared<BigWig>(f));
    files_.back()->require_counts();
  }
}

void Track::window(const std::string& chrom, int64_t start, int64_t end, float* out, bool revcomp) const {
  int64_t S = strands(), L = end - start;
  for (int64_t s = 0; s < S; ++s) {
    int64_t row = revcomp ? S - 1 - s : s;
    files_[s]->values(chrom, start, end, out + row * L);
    if (revcomp) std::reverse(out + row * L, out + (row + 1) * L);
  }
}

void Track::check_against(const ChromSizes& genome, const std::vector<std::string>& needed, bool strict) {
  for (auto& f : files_) f->check_against(genome, needed, strict);
}

// ---------------------------------------------------------------------------------------------
struct BigWigWriter::Impl {
  std::string path;
  ChromSizes sizes;
  safetensors::AtomicFile file;
  bigWigFile_t* fp = nullptr;
  bool ok = true;
  int64_t chrom = -1, next = 0;  // chromosome of the buffered intervals; position after the last add() there
  int64_t run_start = 0, run_end = 0;  // the pending run [run_start, run_end) of value run_v (empty: equal ends)
  float run_v = 0;
  std::vector<uint32_t> st, en;  // buffered intervals of `chrom`
  std::vector<float> va;
  // The zoom levels, built as the items are written (libBigWig's own, built at close, held ~14 bytes per base).
  bwzoom::ZoomWriter zoom;

  Impl(const std::string& p, const ChromSizes& s)
      : path(p), sizes(s), file(p), zoom(std::filesystem::path(file.temp_path()).parent_path().string(), p) {}
  ~Impl() {
    if (fp) bwClose(fp);  // uncommitted: the AtomicFile then removes the temporary
  }
  void end_run() {
    if (run_end > run_start && run_v != 0.0f) {  // NaN is written, as != 0
      st.push_back(static_cast<uint32_t>(run_start));
      en.push_back(static_cast<uint32_t>(run_end));
      va.push_back(run_v);
    }
    run_start = run_end;
  }
  // Writes the buffered intervals: a stretch of at least kDense contiguous one-base intervals (per-base values that
  // all differ, e.g. a predicted profile) as a fixed-step block (4 bytes per base), the rest as bedGraph intervals
  // (12 bytes each). Read back, both give the same per-base values.
  static constexpr size_t kDense = 32;
  void flush() {
    const size_t n = st.size();
    for (size_t i = 0; i < n; ++i) zoom.add(static_cast<uint32_t>(chrom), st[i], en[i], va[i]);
    size_t a = 0;  // start of the pending bedGraph stretch
    for (size_t i = 0; i < n && ok;) {
      size_t j = i;
      while (j < n && en[j] - st[j] == 1 && (j == i || st[j] == en[j - 1])) ++j;
      if (j - i < kDense) {
        i = std::max(j, i + 1);
        continue;
      }
      intervals(a, i);
      if (ok) {
        ok = bwAddIntervalSpanSteps(fp, sizes.names[chrom].c_str(), st[i], 1, 1, va.data() + i,
                                    static_cast<uint32_t>(j - i)) == 0;
        last = Block::Fixed;
      }
      a = i = j;
    }
    if (ok) intervals(a, n);
    st.clear(), en.clear(), va.clear();
  }
  enum class Block { None, Intervals, Fixed } last = Block::None;  // the kind of the block written last on `chrom`
  void intervals(size_t a, size_t b) {  // [a, b) of the buffer as bedGraph intervals
    if (a >= b) return;
    const auto n = static_cast<uint32_t>(b - a);
    if (last != Block::Intervals) {  // a new block (bwAppendIntervals may only follow bwAddIntervals)
      std::vector<const char*> cn(n, sizes.names[chrom].c_str());
      ok = bwAddIntervals(fp, cn.data(), st.data() + a, en.data() + a, va.data() + a, n) == 0;
      last = Block::Intervals;
    } else {
      ok = bwAppendIntervals(fp, st.data() + a, en.data() + a, va.data() + a, n) == 0;
    }
  }
};

BigWigWriter::BigWigWriter(const std::string& path, const ChromSizes& sizes)
    : impl_(std::make_unique<Impl>(path, sizes)) {
  bw_init();
  Impl& m = *impl_;
  m.fp = bwOpen(m.file.temp_path().c_str(), nullptr, "w");
  LP_CHECK(m.fp != nullptr, "bigWig '", path, "': cannot open ", m.file.temp_path(), " for writing");
  bool ok = bwCreateHdr(m.fp, 10) == 0;
  std::vector<const char*> names;
  std::vector<uint32_t> lens;
  for (int64_t c = 0; c < sizes.size(); ++c) {
    LP_CHECK(sizes.lengths[c] >= 0 && sizes.lengths[c] <= int64_t{UINT32_MAX}, "bigWig '", path, "': chromosome ",
             sizes.names[c], " of length ", sizes.lengths[c], " (the format holds 32-bit positions)");
    names.push_back(m.sizes.names[c].c_str());
    lens.push_back(static_cast<uint32_t>(sizes.lengths[c]));
  }
  if (ok) {
    m.fp->cl = bwCreateChromList(names.data(), lens.data(), static_cast<int64_t>(names.size()));
    ok = m.fp->cl != nullptr && bwWriteHdr(m.fp) == 0;
  }
  LP_CHECK(ok, "bigWig '", path, "': cannot write the header");
}

BigWigWriter::~BigWigWriter() = default;

void BigWigWriter::add(int64_t c, int64_t start, const float* v, int64_t n) {
  Impl& m = *impl_;
  LP_CHECK(c >= 0 && c < m.sizes.size() && c >= m.chrom && (c > m.chrom || start >= m.next) && start >= 0 &&
               n >= 0 && start + n <= m.sizes.lengths[c],
           "bigWig '", m.path, "': values at chromosome index ", c, " [", start, ", ", start + n,
           ") out of order or past its end");
  if (n == 0) return;
  if (c != m.chrom) {
    m.end_run();
    m.flush();
    m.chrom = c, m.last = Impl::Block::None, m.run_start = m.run_end = start;
  } else if (start != m.run_end) {  // a gap: no value there, as zeros
    m.end_run();
    m.run_start = m.run_end = start;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (m.run_end > m.run_start && v[i] != m.run_v) m.end_run();
    if (m.run_end == m.run_start) m.run_v = v[i];
    ++m.run_end;
  }
  m.next = start + n;
  if (m.st.size() >= (1u << 16)) m.flush();
  LP_CHECK(m.ok, "bigWig '", m.path, "': write failed (a full disk or a file size limit?)");
}

void BigWigWriter::finish() {
  Impl& m = *impl_;
  if (m.fp == nullptr) return;
  m.end_run();
  m.flush();
  m.fp->hdr->nLevels = 0;  // libBigWig builds no zoom levels at close: m.zoom appends them (bigwig_zoom.h)
  bwClose(m.fp);
  m.fp = nullptr;
  LP_CHECK(m.ok, "bigWig '", m.path, "': write failed (a full disk or a file size limit?)");
  std::vector<uint32_t> lengths;
  for (int64_t c = 0; c < m.sizes.size(); ++c) lengths.push_back(static_cast<uint32_t>(m.sizes.lengths[c]));
  try {
    m.zoom.append(m.file.temp_path(), lengths);
  } catch (const Error& e) {
    throw Error(detail::concat(e.what(), "; the earlier file, if any, is kept"));
  }
  check_closed(m.file.temp_path(), m.path);
}

void BigWigWriter::commit() {
  finish();
  impl_->file.commit();
}

void write_bigwig(const std::string& path, const ChromSizes& sizes, const std::vector<std::vector<float>>& values) {
  LP_CHECK(static_cast<int64_t>(values.size()) == sizes.size(), "write_bigwig '", path, "': ", values.size(),
           " value arrays for ", sizes.size(), " chromosomes");
  for (int64_t c = 0; c < sizes.size(); ++c)
    LP_CHECK(static_cast<int64_t>(values[c].size()) == sizes.lengths[c], "write_bigwig '", path, "': chromosome ",
             sizes.names[c], " has ", values[c].size(), " values for length ", sizes.lengths[c]);
  BigWigWriter w(path, sizes);
  for (int64_t c = 0; c < sizes.size(); ++c) w.add(c, 0, values[c].data(), sizes.lengths[c]);
  w.commit();
}

}  // namespace lowpass
