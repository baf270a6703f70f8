// VCF alleles as REF/ALT model windows (see variants.h). Test: build/tests/lowpass_tests -ts=variants
#include "models/attr/variants.h"

#include <htslib/bgzf.h>
#include <htslib/hts.h>
#include <htslib/hfile.h>
#include <htslib/hts_log.h>
#include <htslib/vcf.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/error.h"
#include "models/data/readable.h"

namespace lowpass::attr {

namespace {

bool is_sequence(const char* a) {
  if (!a || !*a) return false;
  for (const char* p = a; *p; ++p)
    if (!std::strchr("ACGTNacgtn", *p)) return false;
  return true;
}

// What htslib's error bits say about a record (its own messages are silenced).
std::string vcf_problem(int st, int errcode, bool compressed) {
  std::string r;
  auto add = [&](int bit, const char* what) {
    if (errcode & bit) r += (r.empty() ? "" : "; ") + std::string(what);
  };
  add(BCF_ERR_NCOLS, "too few tab-separated columns (CHROM POS ID REF ALT QUAL FILTER INFO, then FORMAT and one per "
                     "sample)");
  add(BCF_ERR_LIMITS, "a value past htslib's limits");
  add(BCF_ERR_CHAR, "invalid characters");
  add(BCF_ERR_CTG_INVALID, "an invalid contig name");
  add(BCF_ERR_TAG_INVALID, "an INFO/FORMAT value that does not fit its header line, or a bad genotype");
  if (!r.empty()) return r;
  return st < -1 && compressed ? "a truncated or corrupt file" : "malformed fields (e.g. a bad genotype)";
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// htslib's handles, closed on every path out (an Error included).
struct VcfReader {
  htsFile* fp = nullptr;
  bcf_hdr_t* hdr = nullptr;
  bcf1_t* rec = nullptr;
  enum htsLogLevel old_level;
  VcfReader() : old_level(hts_get_log_level()) { hts_set_log_level(HTS_LOG_OFF); }  // our messages instead
  ~VcfReader() {
    if (rec) bcf_destroy(rec);
    if (hdr) bcf_hdr_destroy(hdr);
    if (fp) hts_close(fp);
    hts_set_log_level(old_level);
  }
};

}  // namespace

IntervalSet region_intervals(const RegionFilter& filter, const ChromSizes& sizes, const std::string& fasta) {
  IntervalSet set(sizes.size());
  if (!filter.bed.empty()) {
    BedOptions o;
    o.sizes = &sizes;
    o.sizes_source = fasta;
    set.add_peaks(read_bed(filter.bed, o));
  }
  for (const std::string& spec : filter.regions) {
    const size_t colon = spec.rfind(':');
    // "chrom" alone, or a name with ':' in it that the FASTA has (e.g. HLA contigs), is a whole chromosome.
    const bool whole = colon == std::string::npos || sizes.find(spec) >= 0;
    const std::string name = whole ? spec : spec.substr(0, colon);
    const int64_t c = sizes.find(name);
    LP_CHECK(c >= 0, "--region ", spec, ": chromosome '", name, "' is not in ", fasta, "; ", sizes.suggest(name));
    const int64_t len = sizes.lengths[static_cast<size_t>(c)];
    if (whole) {
      set.add(c, 0, len);
      continue;
    }
    auto number = [&](std::string t, const char* what) {
      t.erase(std::remove(t.begin(), t.end(), ','), t.end());
      LP_CHECK(!t.empty() && t.size() <= 15 && std::all_of(t.begin(), t.end(), [](char ch) { return ch >= '0' && ch <= '9'; }),
               "--region ", spec, ": the ", what, " must be a whole number (chrom:start-end, 1-based, inclusive)");
      return static_cast<int64_t>(std::stoll(t));
    };
    const std::string range = spec.substr(colon + 1);
    const size_t dash = range.find('-');
    const int64_t start = number(range.substr(0, dash), "start");
    const int64_t end = dash == std::string::npos ? start : number(range.substr(dash + 1), "end");
    LP_CHECK(start >= 1 && start <= end, "--region ", spec, ": expected 1 <= start <= end (1-based, inclusive)");
    LP_CHECK(start <= len, "--region ", spec, ": starts past the end of ", name, " (", len, " bp in ", fasta, ")");
    set.add(c, start - 1, std::min(end, len));
  }
  set.finalize();
  return set;
}

struct VariantReader::Impl {
  VcfReader r;
  std::string vcf_file, fasta;
  bool filtered = false, done = false;
  IntervalSet regions;
  htsCompression comp = no_compression;
};

VariantReader::VariantReader(const std::string& vcf_file, const std::string& fasta, int64_t length,
                             const std::string& cache_dir, const RegionFilter& filter)
    : impl_(std::make_unique<Impl>()) {
  LP_CHECK(length >= 1, "variants: the model's input length must be >= 1");
  VariantSet& v = v_;
  v.fasta = std::make_shared<Fasta>(fasta, cache_dir);
  v.length = length;
  const ChromSizes& cs = v.fasta->chrom_sizes();
  impl_->vcf_file = vcf_file, impl_->fasta = fasta;
  impl_->filtered = !filter.empty();
  if (impl_->filtered) impl_->regions = region_intervals(filter, cs, fasta);
  VcfReader& r = impl_->r;
  r.fp = hts_open(vcf_file.c_str(), "r");
  LP_CHECK(r.fp, vcf_file, ": cannot open");
  const htsExactFormat fmt = hts_get_format(r.fp)->format;
  if (fmt != htsExactFormat::vcf && fmt != htsExactFormat::bcf) {
    char* what = hts_format_description(hts_get_format(r.fp));
    const std::string d = what ? what : "unknown";
    std::free(what);
    throw Error(vcf_file + ": not a VCF or BCF file (htslib reads it as " + d + ")");
  }
  // A bgzip file cut at a block boundary parses as a shorter file: its missing end-of-file block tells (2: cannot be
  // checked, e.g. a pipe). A plain text file cut inside its last line would score a cut allele: it must end in '\n'.
  const htsCompression comp = impl_->comp = hts_get_format(r.fp)->compression;
  if (comp == bgzf) {
    const std::string cut = bgzip_truncation(r.fp->fp.bgzf);  // the BED and FASTA readers' check
    LP_CHECK(cut.empty(), vcf_file, ": ", cut);
  } else if (comp == no_compression) {
    std::ifstream t(vcf_file, std::ios::binary | std::ios::ate);
    const std::streamoff size = t.tellg();
    char last = '\n';
    if (t && size > 0) t.seekg(size - 1), t.get(last);
    LP_CHECK(last == '\n', vcf_file, ": the last line does not end in a newline (a truncated file?)");
  }
  r.hdr = bcf_hdr_read(r.fp);
  LP_CHECK(r.hdr, vcf_file, ": cannot read the VCF header (it must start with ##fileformat=VCFv4.x and end with the "
           "#CHROM line)");
  r.rec = bcf_init();
  std::error_code ec;
  if (std::filesystem::is_regular_file(vcf_file, ec)) {
    const auto size = std::filesystem::file_size(vcf_file, ec);
    if (!ec) file_size_ = static_cast<int64_t>(size);
  }
}

VariantReader::~VariantReader() = default;

int64_t VariantReader::offset() const {
  const htsFile* fp = impl_->r.fp;
  hFILE* h = fp->format.compression == no_compression && fp->format.format == htsExactFormat::vcf ? fp->fp.hfile
                                                                                                    : fp->fp.bgzf->fp;
  const off_t o = htell(h);
  return o < 0 ? 0 : static_cast<int64_t>(o);
}

bool VariantReader::read(std::vector<Variant>& out, int64_t min_alleles) {
  if (impl_->done) return false;
  VariantSet& v = v_;
  VcfReader& r = impl_->r;
  const std::string& vcf_file = impl_->vcf_file;
  const std::string& fasta = impl_->fasta;
  const ChromSizes& cs = v.fasta->chrom_sizes();
  const bool filtered = impl_->filtered;
  const IntervalSet& regions = impl_->regions;
  const htsCompression comp = impl_->comp;
  const int64_t length = v.length;
  int64_t appended = 0;
  for (;;) {
    if (appended >= std::max<int64_t>(1, min_alleles)) return true;
    const int st = bcf_read(r.fp, r.hdr, r.rec);
    if (st == -1) {  // end of file
      impl_->done = true;
      return false;
    }
    const int64_t n = ++v.records;
    // A contig without a ##contig line, or an INFO/FORMAT tag without its ##INFO/##FORMAT line, is common and
    // harmless (htslib adds them, as bcftools does with a warning; lowpass reads neither INFO nor FORMAT).
    const int err = r.rec->errcode & ~(BCF_ERR_CTG_UNDEF | BCF_ERR_TAG_UNDEF);
    LP_CHECK(st == 0 && err == 0, vcf_file, ": record ", n, " cannot be parsed: ",
             vcf_problem(st, err, comp != no_compression));
    bcf_unpack(r.rec, BCF_UN_STR);
    const char* name = bcf_hdr_id2name(r.hdr, r.rec->rid);
    if (!*name) {  // a blank line (htslib reads it as a record with an empty CHROM): nothing, as for bcftools
      --v.records;
      continue;
    }
    const int64_t c = cs.find(name);
    const int64_t pos = r.rec->pos;
    const bool spaces = std::strpbrk(name, " \t") != nullptr;
    LP_CHECK(c >= 0, vcf_file, ": record ", n, " (", name, ":", pos + 1, "): chromosome '", name, "' is not in ",
             fasta, "; ", spaces ? "VCF fields must be separated by tabs, not spaces" : cs.suggest(name));
    LP_CHECK(pos >= 0, vcf_file, ": record ", n, " (", name, "): POS is missing or not a positive number");
    LP_CHECK(r.rec->n_allele >= 1, vcf_file, ": record ", n, " (", name, "): no REF column (a line of ",
             "CHROM POS ID REF ALT ... must hold at least 5 tab-separated fields)");
    const int64_t L = cs.lengths[static_cast<size_t>(c)];
    if (filtered && !regions.any_overlap(c, pos, pos + std::max<int64_t>(1, static_cast<int64_t>(std::strlen(r.rec->d.allele[0]))))) {
      ++v.outside;
      continue;
    }
    if (r.rec->n_allele < 2) {  // no ALT ('.'): nothing to score
      ++v.no_alt;
      continue;
    }
    const std::string ref = r.rec->d.allele[0];
    const int64_t rl = static_cast<int64_t>(ref.size());
    LP_CHECK(pos >= 0 && pos + rl <= L, vcf_file, ": record ", n, " (", name, ":", pos + 1, "): REF '", ref,
             "' runs past the end of ", name, " (", L, " bp in ", fasta, ")");
    if (!is_sequence(ref.c_str())) {  // an IUPAC or symbolic REF: none of the record's alleles can be built
      v.skipped += r.rec->n_allele - 1;
      continue;
    }
    const std::string g = upper(v.fasta->fetch(name, pos, pos + rl));
    const std::string ru = upper(ref);
    for (int64_t i = 0; i < rl; ++i)
      LP_CHECK(ru[i] == g[i] || ru[i] == 'N' || base_code(g[i]) == 4, vcf_file, ": record ", n, " (", name, ":",
               pos + 1, "): REF '", ref, "' but the genome has '", g, "' there (", fasta, "; another genome build?)");
    for (int a = 1; a < r.rec->n_allele; ++a) {
      const char* alt = r.rec->d.allele[a];
      if (!is_sequence(alt)) {
        ++v.skipped;
        continue;
      }
      const int64_t extra = std::max<int64_t>(0, rl - static_cast<int64_t>(std::strlen(alt)));
      const int64_t s = pos - length / 2;
      if (s < 0 || s + length + extra > L) {
        if (++v.dropped_edge <= 10) v.dropped.push_back(std::string(name) + ":" + std::to_string(pos + 1));
        continue;
      }
      Variant x;
      x.record = n;
      x.chrom = c;
      x.pos = pos;
      x.id = r.rec->d.id && std::strcmp(r.rec->d.id, ".") != 0 ? r.rec->d.id : "";
      x.ref = ref;
      x.alt = alt;
      out.push_back(std::move(x));
      ++appended, ++alleles_;
    }
  }
}

VariantSet read_variants(const std::string& vcf_file, const std::string& fasta, int64_t length,
                         const std::string& cache_dir, const RegionFilter& filter) {
  VariantReader reader(vcf_file, fasta, length, cache_dir, filter);
  std::vector<Variant> all;
  while (reader.read(all, int64_t{1} << 20)) {
  }
  VariantSet v = reader.totals();
  v.alleles = std::move(all);
  return v;  // possibly empty: a header-only shard of a split VCF is not an error
}

void variant_rows(Context& ctx, const VariantSet& v, int64_t s, int64_t n, DType dtype, Tensor& ref, Tensor& alt) {
  LP_CHECK(s >= 0 && n >= 0 && s + n <= v.size(), "variant_rows: rows [", s, ", ", s + n, ") of ", v.size());
  const int64_t L = v.length;
  std::vector<float> xr(static_cast<size_t>(n * 4 * L)), xa(static_cast<size_t>(n * 4 * L));
  std::vector<uint8_t> codes, alt_codes(static_cast<size_t>(L));
  const ChromSizes& cs = v.fasta->chrom_sizes();
  for (int64_t i = 0; i < n; ++i) {
    const Variant& x = v.alleles[static_cast<size_t>(s + i)];
    const int64_t start = v.window_start(s + i), rl = static_cast<int64_t>(x.ref.size());
    const int64_t al = static_cast<int64_t>(x.alt.size()), extra = std::max<int64_t>(0, rl - al);
    codes.resize(static_cast<size_t>(L + extra));
    v.fasta->fetch_codes(cs.names[x.chrom], start, start + L + extra, codes.data());
    one_hot_codes(codes.data(), L, xr.data() + i * 4 * L);
    // ALT: the bases before pos, the allele, then the bases after the REF allele, up to L.
    const int64_t off = x.pos - start;  // = L / 2
    int64_t k = 0;
    for (; k < off; ++k) alt_codes[k] = codes[k];
    for (int64_t j = 0; j < al && k < L; ++j, ++k) alt_codes[k] = base_code(x.alt[static_cast<size_t>(j)]);
    for (int64_t j = off + rl; k < L; ++j, ++k) alt_codes[k] = codes[j];
    one_hot_codes(alt_codes.data(), L, xa.data() + i * 4 * L);
  }
  ref = Tensor::from_vector(ctx, {n, 4, L}, xr);
  alt = Tensor::from_vector(ctx, {n, 4, L}, xa);
  if (dtype != DType::F32) ref = ref.to(dtype), alt = alt.to(dtype);
}

void align_profiles(const Variant& v, int64_t L, const double* ref, const double* alt, int64_t O,
                    std::vector<double>& ref_out, std::vector<double>& alt_out) {
  // The alleles in their shortest form first: an untrimmed CAT>CT (a multi-allelic record's) is the same haplotype as
  // CA>C, and must pair the same bases. Strip the common suffix, then the common prefix (which moves the start).
  int64_t r = static_cast<int64_t>(v.ref.size()), a = static_cast<int64_t>(v.alt.size()), p = 0;
  const auto same = [](char x, char y) { return std::toupper(static_cast<unsigned char>(x)) ==
                                                std::toupper(static_cast<unsigned char>(y)); };
  while (r > 0 && a > 0 && same(v.ref[static_cast<size_t>(r - 1)], v.alt[static_cast<size_t>(a - 1)])) --r, --a;
  while (p < r && p < a && same(v.ref[static_cast<size_t>(p)], v.alt[static_cast<size_t>(p)])) ++p;
  r -= p, a -= p;
  const int64_t c = L / 2 - (L - O) / 2 + p;  // the first changed REF base, in output coordinates
  const int64_t m = std::min(r, a);
  ref_out.clear(), alt_out.clear();
  double sr = 0, sa = 0;
  const auto pair = [&](int64_t q, int64_t j) {
    if (q < 0 || q >= O || j < 0 || j >= O) return;
    ref_out.push_back(ref[q]), alt_out.push_back(alt[j]);
    sr += ref[q], sa += alt[j];
  };
  for (int64_t q = 0; q < std::min(c + m, O); ++q) pair(q, q);  // before the variant, and the paired allele bases
  for (int64_t q = std::max<int64_t>(c + r, 0); q < O; ++q) pair(q, q - r + a);  // after: shifted by the change
  if (sr > 0)
    for (double& x : ref_out) x /= sr;
  if (sa > 0)
    for (double& x : alt_out) x /= sa;
}

RegionWindows variant_windows(const VariantSet& v) {
  RegionWindows r;
  r.fasta = v.fasta;
  r.length = v.length;
  for (int64_t i = 0; i < v.size(); ++i) {
    r.chrom.push_back(v.alleles[static_cast<size_t>(i)].chrom);
    r.start.push_back(v.window_start(i));
    r.line.push_back(v.alleles[static_cast<size_t>(i)].record);
  }
  return r;
}

}  // namespace lowpass::attr
