// FASTA through htslib faidx: index creation (beside the file or in a cache folder), fetches, one-hot.
// one_hot: out[b * L + i] = 1 when base i is b (A,C,G,T), else 0; N and other letters give zero columns.
// Test: build/tests/lowpass_tests -ts=genome
#include "models/data/fasta.h"

#include <htslib/bgzf.h>
#include <htslib/faidx.h>
#include <htslib/hts.h>
#include <htslib/hts_log.h>
#include <htslib/kstring.h>
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
  std::string twin = missing.rfind("chr", 0) == 0 ? missing.substr(3) : "chr" + missing;
  if (find(twin) >= 0) return "did you mean '" + twin + "'? (chromosome naming differs between files)";
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

std::string default_cache_dir() {
  if (const char* e = std::getenv("LOWPASS_CACHE"); e && *e) return e;
  if (const char* e = std::getenv("XDG_CACHE_HOME"); e && *e) return std::string(e) + "/lowpass";
  if (const char* e = std::getenv("HOME"); e && *e) return std::string(e) + "/.cache/lowpass";
  return "/tmp/lowpass-cache";
}

// Writable for us *and* meant to be written: root passes access(W_OK) on a folder without write
// bits (e.g. the shared read-only data folder), so the mode bits are honoured too.
bool folder_writable(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  if ((st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0) return false;
  return access(dir.c_str(), W_OK) == 0;
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
    htsFile* f = hts_open(path.c_str(), "r");
    LP_CHECK(f != nullptr, "FASTA '", path, "': cannot open");
    const htsFormat* fmt = hts_get_format(f);
    bool is_gzip = fmt->compression == htsCompression::gzip;
    is_bgzf = fmt->compression == htsCompression::bgzf;
    hts_close(f);
    LP_CHECK(!is_gzip, "FASTA '", path,
             "': compressed with plain gzip, which cannot be indexed; recompress with 'bgzip' "
             "(zcat file.gz | bgzip > file.fa.gz) or decompress it");
  }
  std::string fai = path + ".fai", gzi = is_bgzf ? path + ".gzi" : "";
  bool have = fs::exists(fai) && newer_or_same(fai, path) && (!is_bgzf || (fs::exists(gzi) && newer_or_same(gzi, path)));
  if (!have) {
    std::string dir = fs::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    // htslib indexes some malformed files without complaint (a duplicate name keeps the first record; a space in
    // a line shifts every later base of the record): the whole file is checked once, just before this process
    // builds an index. An index found ready (beside the FASTA or cached) is trusted, so opening costs no pass.
    bool checked = false;
    auto build = [&](const std::string& f, const std::string& z) {
      if (!checked) {
        const std::string why = diagnose_fasta(path);
        LP_CHECK(why.empty(), "FASTA index: ", why);
        checked = true;
      }
      return build_index(path, f, z);
    };
    bool built = false;
    if (folder_writable(dir)) built = build(fai, gzi);
    if (!built) {
      // Read-only folder (or a stale index we may not replace): index in the cache folder.
      std::string cdir = cache_dir.empty() ? default_cache_dir() : cache_dir;
      std::error_code ec;
      fs::create_directories(cdir, ec);
      if (!folder_writable(cdir)) {
        cdir = "/tmp/lowpass-cache";
        fs::create_directories(cdir, ec);
      }
      struct stat st;
      stat(path.c_str(), &st);
      std::string key = fs::absolute(path).lexically_normal().string() + "|" + std::to_string(st.st_size) + "|" +
                        std::to_string(static_cast<long long>(st.st_mtime));
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(key)));
      std::string base = cdir + "/" + fs::path(path).filename().string() + "." + hex;
      fai = base + ".fai";
      gzi = is_bgzf ? base + ".gzi" : "";
      bool cached = fs::exists(fai) && (!is_bgzf || fs::exists(gzi));
      LP_CHECK(cached || build(fai, gzi), "FASTA '", path, "': could not build the index (.fai) beside it or in '",
               cdir, "' (set LOWPASS_CACHE to a writable folder)");
    } else if (!fs::exists(fai)) {
      LP_CHECK(false, "FASTA '", path, "': index build failed");
    }
  }
  fai_path_ = fai;
  gzi_path_ = gzi;
  h_->fai = fai_load3(path.c_str(), fai.c_str(), is_bgzf ? gzi.c_str() : nullptr, 0);
  LP_CHECK(h_->fai != nullptr, "FASTA '", path, "': cannot load the index '", fai, "'");
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
