// BED3+ / narrowPeak parsing with line-numbered errors; merged interval sets for overlap queries.
// overlap(c, s, e) = sum over merged intervals [a, b) of max(0, min(b, e) - max(a, s)).
// Test: build/tests/lowpass_tests -ts=genome
#include "models/data/bed.h"

#include <cctype>
#include <htslib/bgzf.h>
#include <htslib/kstring.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cerrno>
#include <string>
#include <unordered_set>

#include "engine/error.h"
#include "models/data/readable.h"

namespace lowpass {

namespace {
std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> f;
  const auto blank = [](char c) { return c == '\t' || c == ' '; };
  while (!line.empty() && blank(line.front())) line.remove_prefix(1);
  while (!line.empty() && blank(line.back())) line.remove_suffix(1);
  if (line.empty()) return f;
  if (line.find('\t') != std::string_view::npos) {
    // BED is tab-separated: a tab ends a field, so an empty field (a name column left blank) keeps its place and a
    // space stays inside its field ("peak 1"); splitting at spaces too moved the summit column of such a narrowPeak
    // line out of place, and it was read as a BED (windows centred, not on the summit) without a word.
    size_t i = 0;
    while (true) {
      const size_t j = std::min(line.find('\t', i), line.size());
      std::string_view v = line.substr(i, j - i);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      f.push_back(v);
      if (j == line.size()) break;
      i = j + 1;
    }
    if (f.size() >= 3) return f;
    f.clear();  // fewer than 3 tab-separated fields ("chr1 10 30<TAB>p1", hand-made): blanks separate, as below
  }
  // A line without a tab: fields separated by runs of blanks (many hand-made files use spaces).
  for (size_t i = 0, n = line.size(); i < n;) {
    while (i < n && blank(line[i])) ++i;
    size_t j = i;
    while (j < n && !blank(line[j])) ++j;
    if (j > i) f.push_back(line.substr(i, j - i));
    i = j;
  }
  return f;
}

// File content quoted in a message: bytes other than printable ASCII as \xNN (a binary file given as a BED must not
// put raw bytes or line breaks into the one-line error), at most 40 characters of it.
std::string shown(std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string r;
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) r += static_cast<char>(c);
    else r += std::string("\\x") + hex[c >> 4] + hex[c & 15];
  }
  if (s.size() > 40) r += "...";
  return r;
}

bool parse_int(std::string_view s, int64_t& v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_double(std::string_view s, double& v) {
  std::string t(s);  // from_chars for double is fine in GCC 11+, strtod keeps it portable
  char* end = nullptr;
  errno = 0;
  v = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size() && !t.empty() && errno != ERANGE;
}
}  // namespace

std::vector<Peak> read_bed(const std::string& path, const BedOptions& opt) {
  check_readable(path, "BED");
  BGZF* fp = bgzf_open(path.c_str(), "r");
  LP_CHECK(fp != nullptr, "BED '", path, "': cannot open");
  if (const std::string cut = bgzip_truncation(fp); !cut.empty()) {
    bgzf_close(fp);
    throw Error("BED '" + path + "': " + cut);
  }
  kstring_t ks = {0, 0, nullptr};
  std::vector<Peak> peaks;
  std::unordered_set<std::string> finished_chroms;  // for the sortedness check
  std::string cur_chrom;
  int64_t cur_start = -1, lineno = 0;
  std::string lower = path;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto ends = [&](const std::string& sfx) {
    return lower.size() >= sfx.size() && lower.compare(lower.size() - sfx.size(), sfx.size(), sfx) == 0;
  };
  const bool named_narrow = ends(".narrowpeak") || ends(".narrowpeak.gz");
  try {
    while (true) {
      int r = bgzf_getline(fp, '\n', &ks);
      if (r == -1) break;
      LP_CHECK(r >= 0, path, ":", lineno + 1, ": read error (truncated or corrupt compressed file?)");
      ++lineno;
      std::string_view line(ks.s, ks.l);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      // A UTF-8 byte-order mark (a BED saved by Excel or Notepad) is no part of the first chromosome's name.
      if (lineno == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
      auto f = split_fields(line);
      if (f.empty() || f[0][0] == '#') continue;
      // "track"/"browser" is the first word, whether a space or a tab follows it
      const std::string_view word = f[0].substr(0, f[0].find(' '));
      if (word == "track" || word == "browser") continue;
      auto at = [&]() { return path + ":" + std::to_string(lineno) + ": "; };
      LP_CHECK(f.size() >= 3, at(), "expected at least 3 columns (chrom, start, end), found ", f.size());
      Peak p;
      p.chrom = std::string(f[0]);
      p.line = lineno;
      // A column-name line ("chrom start end") first: BED has no header; tools skip '#', "track" and "browser" lines.
      LP_CHECK(parse_int(f[1], p.start), at(), "column 2 (start) '", shown(f[1]), "' is not an integer",
               peaks.empty() && !parse_int(f[2], p.end) ? " (a header line? BED has none: start it with '#')" : "");
      LP_CHECK(parse_int(f[2], p.end), at(), "column 3 (end) '", shown(f[2]), "' is not an integer");
      LP_CHECK(p.start >= 0, at(), "column 2 (start) is negative (", p.start, ")");
      LP_CHECK(p.start < p.end, at(), "start ", p.start, " >= end ", p.end, " (expected start < end)");
      if (opt.sizes) {
        p.chrom_index = opt.sizes->find(p.chrom);
        LP_CHECK(p.chrom_index >= 0, at(), "chromosome '", shown(p.chrom), "' is not in ", opt.sizes_source, "; ",
                 opt.sizes->suggest(p.chrom));
        int64_t L = opt.sizes->lengths[p.chrom_index];
        LP_CHECK(p.end <= L, at(), "end ", p.end, " is past the end of ", shown(p.chrom), " (length ", L, " in ",
                 opt.sizes_source, ")");
      }
      // Auto: exactly 10 columns, or 10 or more in a file named *.narrowPeak[.gz] (some pipelines append columns).
      bool narrow = opt.format == BedFormat::NarrowPeak ||
                    (opt.format == BedFormat::Auto && (f.size() == 10 || (named_narrow && f.size() > 10)));
      if (opt.format == BedFormat::NarrowPeak)
        LP_CHECK(f.size() >= 10, at(), "narrowPeak needs 10 columns, found ", f.size());
      int64_t off = -1;
      if (narrow) {
        LP_CHECK(parse_double(f[6], p.signal), at(), "column 7 (signalValue) '", shown(f[6]), "' is not a number");
        p.has_signal = true;
        LP_CHECK(parse_int(f[9], off), at(), "column 10 (summit offset) '", shown(f[9]), "' is not an integer");
        LP_CHECK(off == -1 || (off >= 0 && off < p.end - p.start), at(), "summit offset ", off,
                 " is outside the peak (expected -1 or 0..", p.end - p.start - 1, ")");
      } else if (f.size() >= 5 && f[4] != "." && !f[4].empty()) {
        LP_CHECK(parse_double(f[4], p.signal), at(), "column 5 (score) '", shown(f[4]), "' is not a number");
        p.has_signal = true;
      }
      p.summit = off >= 0 ? p.start + off : p.start + (p.end - p.start) / 2;
      if (opt.require_sorted) {
        if (p.chrom != cur_chrom) {
          LP_CHECK(!finished_chroms.count(p.chrom), at(), "file is not sorted: chromosome '", shown(p.chrom),
                   "' appears again after other chromosomes (sort with 'sort -k1,1 -k2,2n')");
          if (!cur_chrom.empty()) finished_chroms.insert(cur_chrom);
          cur_chrom = p.chrom;
        } else {
          LP_CHECK(p.start >= cur_start, at(), "file is not sorted: start ", p.start, " follows start ", cur_start,
                   " on ", shown(p.chrom), " (sort with 'sort -k1,1 -k2,2n')");
        }
        cur_start = p.start;
      }
      peaks.push_back(std::move(p));
    }
  } catch (...) {
    bgzf_close(fp);
    free(ks.s);
    throw;
  }
  bgzf_close(fp);
  free(ks.s);
  LP_CHECK(opt.allow_empty || !peaks.empty(), "BED '", path, "': no records (", lineno,
           " lines, all blank, comments or track/browser headers)");
  return peaks;
}

// ---------------------------------------------------------------------------------------------
void IntervalSet::add(int64_t c, int64_t start, int64_t end) {
  LP_ASSERT(c >= 0 && c < chroms(), "chromosome index ", c);
  if (end > start) by_chrom_[c].push_back({start, end});
}

void IntervalSet::add_peaks(const std::vector<Peak>& peaks) {
  for (const auto& p : peaks) add(p.chrom_index, p.start, p.end);
}

void IntervalSet::finalize() {
  for (auto& v : by_chrom_) {
    std::sort(v.begin(), v.end());
    std::vector<std::pair<int64_t, int64_t>> m;
    for (auto& iv : v) {
      if (!m.empty() && iv.first <= m.back().second) m.back().second = std::max(m.back().second, iv.second);
      else m.push_back(iv);
    }
    v.swap(m);
  }
}

int64_t IntervalSet::overlap(int64_t c, int64_t start, int64_t end) const {
  if (c < 0 || c >= chroms()) return 0;
  const auto& v = by_chrom_[c];
  // first interval whose end > start
  auto it = std::upper_bound(v.begin(), v.end(), start,
                             [](int64_t s, const std::pair<int64_t, int64_t>& iv) { return s < iv.second; });
  int64_t k = 0;
  for (; it != v.end() && it->first < end; ++it) k += std::min(it->second, end) - std::max(it->first, start);
  return k;
}

int64_t IntervalSet::total_bases() const {
  int64_t k = 0;
  for (auto& v : by_chrom_)
    for (auto& iv : v) k += iv.second - iv.first;
  return k;
}

int64_t IntervalSet::intervals() const {
  int64_t k = 0;
  for (auto& v : by_chrom_) k += static_cast<int64_t>(v.size());
  return k;
}

}  // namespace lowpass
