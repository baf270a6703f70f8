// FASTA through htslib faidx: index creation (beside the file or in a cache folder), fetches, one-hot.
// one_hot: out[b * L + i] = 1 when base i is b (A,C,G,T), else 0; N and other letters give zero columns.
// Test: build/tests/lowpass_tests -ts=genome
#include "models/data/fasta.h"

#include <htslib/bgzf.h>
#include <htslib/faidx.h>
#include <htslib/hts.h>
#include <htslib/hts_log.h>
#include <htslib/kstring.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_set>

#include "engine/error.h"
#include "models/data/readable.h"

namespace lowpass {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// ChromSizes
void ChromSizes::add(const std::string& name, int64_t length) {
  index[name] = static_cast<int64_t>(names.size());
  names.push_back(name);
  lengths.push_back(length);
}

int64_t ChromSizes::find(const std::string& name) const {
  auto it = index.find(name);
  return it == index.end() ? -1 : it->second;
}

int64_t ChromSizes::length(const std::string& name) const {
  int64_t i = find(name);
  return i < 0 ? -1 : lengths[i];
}

std::string ChromSizes::suggest(const std::string& missing) const {
  const std::string hint = " (chromosome naming differs between files)";
  std::string twin = missing.rfind("chr", 0) == 0 ? missing.substr(3) : "chr" + missing;
  if (find(twin) >= 0) return "did you mean '" + twin + "'?" + hint;
  const auto lower = [](std::string v) {
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
  };
  // The mitochondrion is chrM in UCSC files and MT (or chrMT) in Ensembl/GENCODE ones; other names may differ in case
  // only (chrx, CHR1): each with or without the chr prefix.
  const std::string m = lower(missing), bare = m.rfind("chr", 0) == 0 ? m.substr(3) : m;
  for (int64_t i = 0; i < size(); ++i) {
    const std::string n = lower(names[i]), nb = n.rfind("chr", 0) == 0 ? n.substr(3) : n;
    if (nb == bare || ((bare == "m" || bare == "mt") && (nb == "m" || nb == "mt")))
      return "did you mean '" + names[i] + "'?" + hint;
  }
  std::string s = "known: ";
  for (int64_t i = 0; i < size() && i < 5; ++i) s += (i ? ", " : "") + names[i];
  if (size() > 5) s += ", ... (" + std::to_string(size()) + " in all)";
  if (size() == 0) s = "no chromosomes are known";
  return s;
}

// ---------------------------------------------------------------------------------------------
// One-hot encoding
void one_hot_codes(const uint8_t* codes, int64_t L, float* out, bool revcomp) {
  std::fill(out, out + 4 * L, 0.0f);
  if (!revcomp) {
    for (int64_t i = 0; i < L; ++i)
      if (codes[i] < 4) out[codes[i] * L + i] = 1.0f;
  } else {
    for (int64_t i = 0; i < L; ++i) {
      uint8_t c = codes[L - 1 - i];
      if (c < 4) out[(3 - c) * L + i] = 1.0f;
    }
  }
}

void one_hot_encode(std::string_view seq, float* out, bool revcomp) {
  std::vector<uint8_t> codes(seq.size());
  for (size_t i = 0; i < seq.size(); ++i) codes[i] = base_code(seq[i]);
  one_hot_codes(codes.data(), static_cast<int64_t>(codes.size()), out, revcomp);
}

int64_t count_non_acgt(const uint8_t* codes, int64_t n) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i) k += codes[i] == 4;
  return k;
}

int64_t count_gc(const uint8_t* codes, int64_t n) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i) k += codes[i] == 1 || codes[i] == 2;
  return k;
}

// ---------------------------------------------------------------------------------------------
// Line reader over plain, gzip or bgzip files (BGZF reads all three).
namespace {
struct LineReader {
  BGZF* fp = nullptr;
  kstring_t ks = {0, 0, nullptr};
  int64_t line = 0;
  explicit LineReader(const std::string& path) : fp(bgzf_open(path.c_str(), "r")) {}
  ~LineReader() {
    if (fp) bgzf_close(fp);
    free(ks.s);
  }
  // Returns false at end of file; throws on a read error.
  bool next(std::string& out, const std::string& path) {
    int r = bgzf_getline(fp, '\n', &ks);
    if (r == -1) return false;
    LP_CHECK(r >= 0, path, ":", line + 1, ": read error (truncated or corrupt compressed file?)");
    ++line;
    out.assign(ks.s, ks.l);
    if (!out.empty() && out.back() == '\r') out.pop_back();
    return true;
  }
};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Writable for us *and* meant to be written: root passes access(W_OK) on a folder without write
// bits (e.g. the shared read-only data folder), so the mode bits are honoured too.
bool folder_writable(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  if ((st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0) return false;
  return access(dir.c_str(), W_OK) == 0;
}

// The cache folders to try, in order, with whether each is the shared-/tmp one. An explicit folder (the argument,
// else $LOWPASS_CACHE) is the only one tried, so a message names it; the default is per user: $XDG_CACHE_HOME/lowpass
// or ~/.cache/lowpass, then /tmp/lowpass-cache-<uid>.
std::vector<std::pair<std::string, bool>> cache_dirs(const std::string& given) {
  if (!given.empty()) return {{given, false}};
  if (const char* e = std::getenv("LOWPASS_CACHE"); e && *e) return {{e, false}};
  std::vector<std::pair<std::string, bool>> dirs;
  if (const char* e = std::getenv("XDG_CACHE_HOME"); e && *e) dirs.push_back({std::string(e) + "/lowpass", false});
  else if (const char* h = std::getenv("HOME"); h && *h) dirs.push_back({std::string(h) + "/.cache/lowpass", false});
  dirs.push_back({"/tmp/lowpass-cache-" + std::to_string(geteuid()), true});
  return dirs;
}

// Makes `dir` ready for indexes; "" when it is, else why not. The /tmp folder is shared by every user, and cached
// indexes are used (once they fit the FASTA): it must be our own folder, not a link, and private (0700), so no other
// user can plant an index in it or hold its name.
std::string prepare_cache_dir(const std::string& dir, bool shared_tmp) {
  if (shared_tmp) {
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return std::strerror(errno);
    struct stat st;
    if (lstat(dir.c_str(), &st) != 0) return std::strerror(errno);
    if (!S_ISDIR(st.st_mode)) return "not a folder";
    if (st.st_uid != geteuid()) return "owned by uid " + std::to_string(st.st_uid) + ", not this user";
    if ((st.st_mode & 077) != 0 && chmod(dir.c_str(), 0700) != 0) return std::strerror(errno);
  } else {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return ec.message();
  }
  return folder_writable(dir) ? "" : "not writable";
}

bool newer_or_same(const std::string& a, const std::string& b) {  // mtime(a) >= mtime(b)
  struct stat sa, sb;
  if (stat(a.c_str(), &sa) != 0 || stat(b.c_str(), &sb) != 0) return false;
  return sa.st_mtime >= sb.st_mtime;
}

// Builds fai (and gzi) at the given paths through a temporary name + rename, so concurrent
// processes never see a half-written index. Returns false on failure.
bool build_index(const std::string& fasta, const std::string& fai, const std::string& gzi) {
  std::string tag = ".tmp" + std::to_string(getpid());
  std::string tfai = fai + tag, tgzi = gzi.empty() ? "" : gzi + tag;
  enum htsLogLevel old = hts_get_log_level();
  hts_set_log_level(HTS_LOG_OFF);  // the failure is explained by diagnose_fasta instead
  int r = fai_build3(fasta.c_str(), tfai.c_str(), tgzi.empty() ? nullptr : tgzi.c_str());
  hts_set_log_level(old);
  std::error_code ec;
  if (r != 0) {
    fs::remove(tfai, ec);
    if (!tgzi.empty()) fs::remove(tgzi, ec);
    return false;
  }
  fs::rename(tfai, fai, ec);
  if (ec) return false;
  if (!tgzi.empty()) {
    fs::rename(tgzi, gzi, ec);
    if (ec) return false;
  }
  return true;
}

// faidx divides by a record's bases per line when it fetches, so an index with a record of bases but 0 bases per
// line (htslib builds one when a record's lines hold only bytes that are not sequence letters) or fewer bytes than
// bases per line would crash the process at the first fetch (found by fuzz_fasta). Checked once, after loading:
// the error names the FASTA line that caused it (diagnose_fasta) or else the index line.
void check_index_geometry(const std::string& fasta, const std::string& fai) {
  std::ifstream in(fai);
  std::string line;
  for (int64_t ln = 1; std::getline(in, line); ++ln) {
    const size_t tab = line.find('\t');
    if (line.empty() || tab == std::string::npos) continue;  // fai_load3 has accepted the file's layout
    long long len = -1, off = -1, bases = -1, bytes = -1;
    const int got = std::sscanf(line.c_str() + tab + 1, "%lld\t%lld\t%lld\t%lld", &len, &off, &bases, &bytes);
    if (got == 4 && len >= 0 && off >= 0 && (len == 0 || (bases > 0 && bytes >= bases))) continue;
    const std::string why = diagnose_fasta(fasta);
    LP_CHECK(why.empty(), "FASTA index: ", why);
    LP_CHECK(false, "FASTA index '", fai, "' line ", ln, " (record '", line.substr(0, tab), "'): ", len,
             " bases in lines of ", bases, " bases and ", bytes, " bytes cannot be read; delete the index to rebuild",
             " it, or reformat the FASTA (e.g. 'seqkit seq -w 60')");
  }
}
// Uncompressed size of the BGZF file open as `fd` when the .gzi lists its blocks (htslib's bgzf_useek asserts, and
// so aborts the process, when it seeks through an index of another file), else -1. Walks the block headers: two small
// reads per 64 KiB block of text, about 50 ms for a human genome.
int64_t bgzf_text_size(int fd, const std::string& gzi) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -1;
  const uint64_t csize = static_cast<uint64_t>(st.st_size);
  std::ifstream in(gzi, std::ios::binary);
  auto u64 = [&in](uint64_t& v) {  // little-endian, as htslib writes it
    unsigned char b[8];
    if (!in.read(reinterpret_cast<char*>(b), 8)) return false;
    v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | b[i];
    return true;
  };
  uint64_t n = 0;
  // n is checked against the .gzi's own size before anything is sized from it (a damaged one must not allocate GBs)
  std::error_code ec;
  const uintmax_t gsize = fs::file_size(gzi, ec);
  if (!u64(n) || ec || n > csize / 18 + 1 || 8 + 16 * n != gsize) return -1;
  std::vector<std::pair<uint64_t, uint64_t>> entries(n);  // (compressed, uncompressed) block starts
  for (auto& [c, u] : entries)
    if (!u64(c) || !u64(u)) return -1;
  uint64_t c = 0, u = 0;
  size_t k = 0;
  unsigned char h[18], t[4];
  while (c < csize) {
    if (pread(fd, h, 18, static_cast<off_t>(c)) != 18) return -1;
    if (h[0] != 31 || h[1] != 139 || h[2] != 8 || !(h[3] & 4) || h[10] != 6 || h[11] != 0 || h[12] != 'B' ||
        h[13] != 'C')
      return -1;
    const uint64_t len = (static_cast<uint64_t>(h[16]) | static_cast<uint64_t>(h[17]) << 8) + 1;
    if (len < 26 || c + len > csize || pread(fd, t, 4, static_cast<off_t>(c + len - 4)) != 4) return -1;
    const uint64_t isize = t[0] | t[1] << 8 | t[2] << 16 | static_cast<uint64_t>(t[3]) << 24;
    const bool listed = k < n && entries[k].first == c;
    if (listed && entries[k].second != u) return -1;
    if (!listed && c > 0 && isize > 0) return -1;  // every block of text but the first is listed
    k += listed;
    c += len;
    u += isize;
  }
  return k == n ? static_cast<int64_t>(u) : -1;
}

// Bytes of the FASTA's text at given offsets: pread for a plain file, BGZF seeks through the .gzi for bgzip.
class TextBytes {
 public:
  TextBytes(const std::string& path, const std::string& gzi, bool bgzf) {
    fd_ = open(path.c_str(), O_RDONLY);
    if (fd_ < 0) return;
    struct stat st;
    size_ = !bgzf ? (fstat(fd_, &st) == 0 ? static_cast<int64_t>(st.st_size) : -1) : bgzf_text_size(fd_, gzi);
    if (size_ < 0 || !bgzf) return;
    bg_ = bgzf_open(path.c_str(), "r");
    if (bg_ && bgzf_index_load(bg_, gzi.c_str(), nullptr) != 0) {
      bgzf_close(bg_);
      bg_ = nullptr;
    }
    if (!bg_) size_ = -1;
  }
  ~TextBytes() {
    if (fd_ >= 0) close(fd_);
    if (bg_) bgzf_close(bg_);
  }
  bool ok() const { return size_ >= 0; }
  int64_t size() const { return size_; }
  // Up to n bytes at off (fewer at the end of the text, none past it); false on a read error.
  bool read(int64_t off, int64_t n, std::string& out) {
    n = std::max<int64_t>(0, std::min(n, size_ - off));
    out.assign(static_cast<size_t>(n), '\0');
    if (n == 0) return off >= 0;
    int64_t got = 0;
    if (!bg_) {
      while (got < n) {
        const ssize_t r = pread(fd_, out.data() + got, static_cast<size_t>(n - got), off + got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return false;
        if (r == 0) break;
        got += r;
      }
    } else {  // off < size_ and the .gzi fits the file (bgzf_text_size): the seek stays inside a block
      if (bgzf_useek(bg_, off, SEEK_SET) != 0) return false;
      const ssize_t r = bgzf_read(bg_, out.data(), static_cast<size_t>(n));
      if (r < 0) return false;
      got = r;
    }
    out.resize(static_cast<size_t>(got));
    return true;
  }

 private:
  int fd_ = -1;
  int64_t size_ = -1;
  BGZF* bg_ = nullptr;
};

// What may follow a line's bases: its line end, or trailing whitespace before it, which samtools and htslib index
// (line_bytes then counts it) and read correctly.
bool after_bases(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Why the existing index `fai` (and `gzi`) does not describe the FASTA as it is now, or "" when it fits. An index
// newer than its FASTA can still belong to an older copy of it (cp -p, rsync -a, tar x and wget -N keep the old
// mtime), and faidx would then read every later record from shifted offsets. Checked per record, with a few small
// reads instead of a pass over the file: the byte before its offset ends its '>name' header line; its first line
// and its last base end where the line geometry says; its bases end before the next record starts; and after the
// last record only line ends remain. bgzip: the .gzi must list the file's blocks (bgzf_text_size), then the same
// checks at up to 4096 records spread over the index (each read inflates a block) and the tail. Lines whose geometry
// faidx cannot read are left to check_index_geometry.
std::string index_misfit(const std::string& fasta, const std::string& fai, const std::string& gzi, bool bgzf) {
  struct Rec {
    std::string name;
    long long len, off, bases, bytes;
    long long end = -1;  // one past the last base
  };
  std::vector<Rec> recs;
  {
    std::ifstream in(fai);
    if (!in) return "cannot read the index";
    std::string line;
    while (std::getline(in, line)) {
      const size_t tab = line.find('\t');
      if (line.empty() || tab == std::string::npos) continue;
      Rec r{line.substr(0, tab), -1, -1, -1, -1};
      const int got = std::sscanf(line.c_str() + tab + 1, "%lld\t%lld\t%lld\t%lld", &r.len, &r.off, &r.bases, &r.bytes);
      if (got != 4 || r.len < 0 || r.off < 0 || (r.len > 0 && (r.bases <= 0 || r.bytes < r.bases))) continue;
      // off + (len - 1) / bases * bytes + (len - 1) % bases + 1, in int64 or not at all: a corrupt index's numbers
      // overflowed (UBSan, under fuzz_fasta given a .fai), and an end that wrapped round to the true one passed for a
      // fit with a chromosome of 8e18 bases.
      long long end = 0;
      if (r.len > 0 && (__builtin_mul_overflow((r.len - 1) / r.bases, r.bytes, &end) ||
                        __builtin_add_overflow(end, (r.len - 1) % r.bases + 1, &end)))
        end = -1;
      if (end < 0 || __builtin_add_overflow(end, r.off, &r.end))
        return "record '" + r.name + "' (offset " + std::to_string(r.off) + ", " + std::to_string(r.len) +
               " bases in lines of " + std::to_string(r.bases) + " bases and " + std::to_string(r.bytes) +
               " bytes) would end past any file";
      recs.push_back(std::move(r));
    }
  }
  if (recs.empty()) return "";  // nothing readable: fai_load3 or check_index_geometry explains it
  TextBytes text(fasta, gzi, bgzf);
  if (!text.ok()) return bgzf ? "the .gzi does not list the file's blocks" : "cannot open the FASTA";
  auto seq_end = [](const Rec& r) { return r.end; };
  const auto at = [](const Rec& r) { return "record '" + r.name + "' (offset " + std::to_string(r.off) + ")"; };
  for (size_t i = 0; i + 1 < recs.size(); ++i) {  // arithmetic only: the index's own order and extents
    if (recs[i + 1].off <= recs[i].off) return "records are not in file order at " + at(recs[i + 1]);
    if (seq_end(recs[i]) >= recs[i + 1].off) return at(recs[i]) + " runs into the next record";
  }
  const size_t n = recs.size(), step = bgzf && n > 4096 ? (n + 4095) / 4096 : 1;
  std::string b;
  for (size_t k = 0; k < n; k += step) {
    const Rec& r = recs[k + step < n ? k : n - 1];  // the last record always
    // The header line: up to 256 bytes before the offset, which must end in a line end.
    const int64_t w = std::min<int64_t>(r.off, 257);
    if (!text.read(r.off - w, w, b) || static_cast<int64_t>(b.size()) != w || w < 2 || b.back() != '\n')
      return "no line end before " + at(r);
    b.pop_back();
    if (!b.empty() && b.back() == '\r') b.pop_back();
    const size_t nl = b.rfind('\n');
    if (nl != std::string::npos || r.off - w == 0) {  // the whole header line is in the window
      std::string hdr = b.substr(nl == std::string::npos ? 0 : nl + 1);
      // htslib names a record by the first word after '>', skipping whitespace before it ("> chr1 desc" is chr1)
      size_t i = hdr.empty() || hdr[0] != '>' ? std::string::npos : 1;
      while (i != std::string::npos && i < hdr.size() && std::isspace(static_cast<unsigned char>(hdr[i]))) ++i;
      if (i == std::string::npos || hdr.compare(i, r.name.size(), r.name) != 0 ||
          (hdr.size() > i + r.name.size() && !std::isspace(static_cast<unsigned char>(hdr[i + r.name.size()]))))
        return at(r) + " does not follow its '>" + r.name + "' header line";
    }
    if (r.len == 0) continue;
    if (r.len > r.bases && (!text.read(r.off + r.bases, 1, b) || b.size() != 1 || !after_bases(b[0])))
      return at(r) + ": its first line does not end after " + std::to_string(r.bases) + " bases";
    const int64_t e = seq_end(r);
    if (!text.read(e - 1, 2, b) || b.empty() || after_bases(b[0]))
      return at(r) + ": its last base is not at byte " + std::to_string(e - 1);
    if (b.size() == 2 && !after_bases(b[1])) return at(r) + ": its last line goes on past byte " + std::to_string(e);
  }
  // After the last record's bases: line ends only (a final newline, CRLF, blank lines), so no record is unindexed.
  const int64_t tail_max = 65536;
  if (!text.read(seq_end(recs.back()), tail_max + 1, b)) return "cannot read the end of the FASTA";
  if (static_cast<int64_t>(b.size()) > tail_max || !std::all_of(b.begin(), b.end(), after_bases))
    return "the file goes on after the last indexed record '" + recs.back().name + "'";
  return "";
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Fasta
struct Fasta::Handle {
  faidx_t* fai = nullptr;
  ~Handle() {
    if (fai) fai_destroy(fai);
  }
};

Fasta::Fasta(const std::string& path, const std::string& cache_dir) : path_(path), h_(new Handle) {
  check_readable(path, "FASTA");
  // Compression: plain and bgzip can be indexed; plain gzip cannot.
  bool is_bgzf = false;
  {
    const enum htsLogLevel old = hts_get_log_level();
    hts_set_log_level(HTS_LOG_OFF);  // our messages instead of htslib's lines
    htsFile* f = hts_open(path.c_str(), "r");
    hts_set_log_level(old);
    if (f == nullptr) {  // UCSC's packed genome, which htslib refuses as "Exec format error": named by its magic
      const int err = errno;
      unsigned char m[4] = {0, 0, 0, 0};
      std::FILE* raw = std::fopen(path.c_str(), "rb");
      const size_t got = raw ? std::fread(m, 1, 4, raw) : 0;
      if (raw) std::fclose(raw);
      const uint32_t magic = static_cast<uint32_t>(m[0]) | static_cast<uint32_t>(m[1]) << 8 |
                             static_cast<uint32_t>(m[2]) << 16 | static_cast<uint32_t>(m[3]) << 24;
      LP_CHECK(got < 4 || (magic != 0x1A412743u && magic != 0x4327411Au), "FASTA '", path,
               "': a UCSC .2bit file, not FASTA; convert it with 'twoBitToFa ", path, " genome.fa'");
      throw Error(detail::concat("FASTA '", path, "': cannot open (", std::strerror(err), "; not a FASTA file?)"));
    }
    const htsFormat* fmt = hts_get_format(f);
    bool is_gzip = fmt->compression == htsCompression::gzip;
    is_bgzf = fmt->compression == htsCompression::bgzf;
    // bgzip cut at a block boundary: its index would give a shorter last chromosome and none after it
    hts_close(f);
    std::string cut;
    if (is_bgzf) {
      BGZF* z = bgzf_open(path.c_str(), "r");
      cut = z ? bgzip_truncation(z) : "cannot open it with bgzf";
      if (z) bgzf_close(z);
    }
    LP_CHECK(cut.empty(), "FASTA '", path, "': ", cut);
    LP_CHECK(!is_gzip, "FASTA '", path,
             "': compressed with plain gzip, which cannot be indexed; recompress with 'bgzip' "
             "(zcat file.gz | bgzip > file.fa.gz) or decompress it");
  }
  std::string fai = path + ".fai", gzi = is_bgzf ? path + ".gzi" : "";
  // An existing index is used only when it fits the file as it is now (index_misfit); one that does not is rebuilt
  // like one older than the FASTA: beside it, or else in the cache folder.
  std::string misfit;  // why an existing index was not used, for the message if rebuilding it fails
  auto fits = [&](const std::string& f, const std::string& z) {
    const std::string why = index_misfit(path, f, z, is_bgzf);
    if (!why.empty() && misfit.empty()) misfit = f + " does not fit the file (" + why + ")";
    return why.empty();
  };
  bool have = fs::exists(fai) && newer_or_same(fai, path) &&
              (!is_bgzf || (fs::exists(gzi) && newer_or_same(gzi, path))) && fits(fai, gzi);
  if (!have) {
    std::string dir = fs::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    // htslib indexes some malformed files without complaint (a duplicate name keeps the first record; a space in
    // a line shifts every later base of the record): the whole file is checked once, just before this process
    // builds an index. An index found ready (beside the FASTA or cached) is only checked to fit (a few reads per
    // record), so opening costs no pass.
    bool checked = false;
    auto build = [&](const std::string& f, const std::string& z) {
      if (!checked) {
        const std::string why = diagnose_fasta(path);
        LP_CHECK(why.empty(), "FASTA index: ", why, misfit.empty() ? "" : "; it was being rebuilt because ", misfit);
        checked = true;
      }
      return build_index(path, f, z);
    };
    bool built = false;
    if (folder_writable(dir)) built = build(fai, gzi);
    if (!built) {
      // Read-only folder (or a stale index we may not replace): index in the cache folder.
      std::string cdir, tried;
      for (const auto& [d, shared_tmp] : cache_dirs(cache_dir)) {
        const std::string why = prepare_cache_dir(d, shared_tmp);
        if (why.empty()) {
          cdir = d;
          break;
        }
        tried += (tried.empty() ? "'" : ", '") + d + "' (" + why + ")";
      }
      LP_CHECK(!cdir.empty(), "FASTA '", path, "': cannot write its index (.fai) beside it nor in the cache folder ",
               tried, "; give a writable folder with --cache-dir (data.genome.cache_dir) or LOWPASS_CACHE");
      struct stat st;
      stat(path.c_str(), &st);
      std::string key = fs::absolute(path).lexically_normal().string() + "|" + std::to_string(st.st_size) + "|" +
                        std::to_string(static_cast<long long>(st.st_mtime));
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(key)));
      std::string base = cdir + "/" + fs::path(path).filename().string() + "." + hex;
      fai = base + ".fai";
      gzi = is_bgzf ? base + ".gzi" : "";
      bool cached = fs::exists(fai) && (!is_bgzf || fs::exists(gzi)) && fits(fai, gzi);
      LP_CHECK(cached || build(fai, gzi), "FASTA '", path, "': could not build the index (.fai) beside it or in '",
               cdir, "' (give a writable folder with --cache-dir, data.genome.cache_dir or LOWPASS_CACHE)");
    } else if (!fs::exists(fai)) {
      LP_CHECK(false, "FASTA '", path, "': index build failed");
    }
  }
  fai_path_ = fai;
  gzi_path_ = gzi;
  {
    const enum htsLogLevel old = hts_get_log_level();
    hts_set_log_level(HTS_LOG_OFF);  // "[E::fai_read] Could not understand FASTA index" on stderr: ours instead
    h_->fai = fai_load3(path.c_str(), fai.c_str(), is_bgzf ? gzi.c_str() : nullptr, 0);
    hts_set_log_level(old);
  }
  LP_CHECK(h_->fai != nullptr, "FASTA '", path, "': cannot load the index '", fai,
           "' (damaged, or not a faidx index); delete it to rebuild it");
  check_index_geometry(path, fai);
  int n = faidx_nseq(h_->fai);
  for (int i = 0; i < n; ++i) {
    const char* name = faidx_iseq(h_->fai, i);
    sizes_.add(name, faidx_seq_len(h_->fai, name));
  }
  LP_CHECK(n > 0, "FASTA '", path, "': no sequences (expected '>name' header lines)");
}

Fasta::~Fasta() = default;

int64_t Fasta::length(const std::string& chrom) const {
  int64_t L = sizes_.length(chrom);
  LP_CHECK(L >= 0, "chromosome '", chrom, "' is not in FASTA '", path_, "'; ", sizes_.suggest(chrom));
  return L;
}

std::string Fasta::fetch(const std::string& chrom, int64_t start, int64_t end, const std::string& what) const {
  std::string where = what.empty() ? "" : what + ": ";
  int64_t L = sizes_.length(chrom);
  LP_CHECK(L >= 0, where, "chromosome '", chrom, "' is not in FASTA '", path_, "'; ", sizes_.suggest(chrom));
  LP_CHECK(0 <= start && start <= end && end <= L, where, "interval ", chrom, ":", start, "-", end,
           " is outside the chromosome (length ", L, ") in FASTA '", path_, "'");
  if (start == end) return "";
  hts_pos_t got = 0;
  char* s = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = faidx_fetch_seq64(h_->fai, chrom.c_str(), start, end - 1, &got);
  }
  LP_CHECK(s != nullptr && got == end - start, where, "FASTA '", path_, "': read of ", chrom, ":", start, "-",
           end, " returned ", (s ? static_cast<int64_t>(got) : -1), " bases (file changed or truncated?)");
  std::string out(s, static_cast<size_t>(got));
  free(s);
  return out;
}

void Fasta::fetch_codes(const std::string& chrom, int64_t start, int64_t end, uint8_t* out,
                        const std::string& what) const {
  std::string s = fetch(chrom, start, end, what);
  for (size_t i = 0; i < s.size(); ++i) out[i] = base_code(s[i]);
}

// ---------------------------------------------------------------------------------------------
std::vector<FastaRecord> read_fasta_records(const std::string& path) {
  check_readable(path, "FASTA");
  LineReader r(path);
  LP_CHECK(r.fp != nullptr, "FASTA '", path, "': cannot open");
  const std::string cut = bgzip_truncation(r.fp);
  LP_CHECK(cut.empty(), "FASTA '", path, "': ", cut);
  std::vector<FastaRecord> recs;
  std::string line;
  while (r.next(line, path)) {
    if (line.empty()) continue;
    if (line[0] == '>') {
      std::string name = line.substr(1);
      name = name.substr(0, name.find_first_of(" \t"));
      LP_CHECK(!name.empty(), path, ":", r.line, ": empty sequence name after '>'");
      if (!recs.empty())
        LP_CHECK(!recs.back().seq.empty(), path, ":", recs.back().line, ": record '", recs.back().name,
                 "' has no sequence");
      recs.push_back({name, "", r.line});
      continue;
    }
    LP_CHECK(!recs.empty(), path, ":", r.line, ": sequence before the first '>' header line (is this a FASTA file?)");
    for (char c : line) {
      LP_CHECK(std::isalpha(static_cast<unsigned char>(c)) || c == '-' || c == '*', path, ":", r.line,
               ": unexpected character '", c, "' in sequence (expected letters)");
    }
    recs.back().seq += line;
  }
  LP_CHECK(!recs.empty(), "FASTA '", path, "': no records (expected '>name' header lines)");
  LP_CHECK(!recs.back().seq.empty(), path, ":", recs.back().line, ": record '", recs.back().name, "' has no sequence");
  return recs;
}

std::string diagnose_fasta(const std::string& path) {
  LineReader r(path);
  if (!r.fp) return path + ": cannot open";
  std::string line, name;
  std::unordered_set<std::string> seen;
  int64_t line_len = -1, short_line = 0, header_line = 0, bases = 0;
  bool any = false;
  auto at = [&](int64_t ln) { return path + ":" + std::to_string(ln) + ": "; };
  // htslib drops a record without bases in the middle of a file and fails on one at its end.
  auto no_bases = [&]() { return at(header_line) + "sequence '" + name + "' has no bases"; };
  try {
    while (r.next(line, path)) {
      if (!line.empty() && line[0] == '>') {
        if (any && bases == 0) return no_bases();
        name = line.substr(1, line.find_first_of(" \t") == std::string::npos ? std::string::npos
                                                                              : line.find_first_of(" \t") - 1);
        if (name.empty()) return at(r.line) + "empty sequence name after '>'";
        if (!seen.insert(name).second) return at(r.line) + "duplicate sequence name '" + name + "'";
        line_len = -1;
        short_line = 0;
        header_line = r.line;
        bases = 0;
        any = true;
        continue;
      }
      if (!any) return at(r.line) + "text before the first '>' header line (is this a FASTA file?)";
      if (line.empty()) {
        if (short_line == 0) short_line = r.line;
        continue;
      }
      if (short_line)
        return at(r.line) + "sequence '" + name + "' continues after a shorter line " + std::to_string(short_line) +
               "; faidx needs every line of a record but the last to have the same length";
      for (unsigned char c : line)  // faidx counts only these as bases: other bytes break its line geometry
        if (!std::isgraph(c)) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(c));
          return at(r.line) + "byte " + hex + " in sequence '" + name +
                 "' is not a sequence letter; faidx cannot index such lines";
        }
      int64_t n = static_cast<int64_t>(line.size());
      bases += n;
      if (line_len < 0) line_len = n;
      else if (n > line_len)
        return at(r.line) + "line of " + std::to_string(n) + " bases in sequence '" + name + "' (header line " +
               std::to_string(header_line) + ") is longer than the record's line length " + std::to_string(line_len) +
               "; faidx needs equal line lengths (reformat, e.g. with 'seqkit seq -w 60')";
      else if (n < line_len) short_line = r.line;
    }
  } catch (const Error& e) {
    return e.what();
  }
  if (!any) return path + ": no '>' header lines (empty or not a FASTA file)";
  if (bases == 0) return no_bases();
  return "";
}

}  // namespace lowpass
