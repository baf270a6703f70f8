// Variant effect scoring (`lowpass variants`): every ALT allele of a VCF against its REF, each in the model's input
// window centred on the variant. window = [pos - L/2, pos - L/2 + L) (pos = the first REF base, 0-based); the REF
// window is the genome's; the ALT window is the genome's bases before pos, the ALT allele, then the genome's bases
// after the REF allele, cut to L (an insertion pushes the window's end out, a deletion pulls more genome in).
// Test: build/tests/lowpass_tests -ts=variants
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "models/attr/genome_regions.h"
#include "models/data/bed.h"
#include "models/data/fasta.h"

namespace lowpass::attr {

struct Variant {
  int64_t record = 0;  // 1-based position among the VCF's data records
  int64_t chrom = 0;   // chromosome index in the FASTA
  int64_t pos = 0;     // 0-based position of the first REF base
  std::string id, ref, alt;
};

struct VariantSet {
  std::shared_ptr<Fasta> fasta;
  int64_t length = 0;             // L
  std::vector<Variant> alleles;   // one per (record, ALT allele) scored, in file order
  int64_t records = 0;            // data records read
  int64_t no_alt = 0;             // records without an ALT allele ('.'), ignored
  int64_t skipped = 0;            // alleles that cannot be built: a non-sequence ALT (<DEL>, *, breakends, IUPAC
                                  // codes other than N) or REF (every ALT of that record)
  int64_t outside = 0;            // records outside the regions asked for (RegionFilter), not scored
  int64_t dropped_edge = 0;       // alleles whose window runs off the chromosome
  std::vector<std::string> dropped;  // chrom:pos of the first (at most 10) of them, for the message
  int64_t size() const { return static_cast<int64_t>(alleles.size()); }
  int64_t window_start(int64_t i) const { return alleles[static_cast<size_t>(i)].pos - length / 2; }
};

// Which records to score (`lowpass variants --regions/--region`): those whose REF bases overlap a BED file's intervals
// or a region "chrom", "chrom:start-end" or "chrom:pos" (1-based, inclusive, as samtools and bcftools write them;
// thousands separators allowed). Empty: every record.
struct RegionFilter {
  std::string bed;                   // BED3+ / narrowPeak, plain or gzip
  std::vector<std::string> regions;  // "chrom[:start[-end]]"
  bool empty() const { return bed.empty() && regions.empty(); }
};

// The filter's intervals on the FASTA's chromosomes. Errors name the BED file and line, or the region: an unknown
// chromosome (with the chr-prefix hint), a malformed or empty range, a start past the chromosome's end (an end past it
// is cut to it).
IntervalSet region_intervals(const RegionFilter& filter, const ChromSizes& sizes, const std::string& fasta);

// Reads a VCF or BCF (plain or bgzip, through htslib) against the FASTA. Errors name the file and the record: a
// chromosome the FASTA lacks (with the chr-prefix hint), a REF that differs from the genome (another genome
// build?), a record htslib cannot parse (what is wrong, from its error bits). Contigs and INFO/FORMAT tags without
// header lines are accepted. Non-sequence alleles are skipped and counted; the result may be empty. With a filter,
// records whose REF bases [POS − 1, POS − 1 + |REF|) miss its intervals are counted (`outside`) and not checked
// further (their chromosome still must be in the FASTA); the file is read through (record numbers stay the file's).
VariantSet read_variants(const std::string& vcf_file, const std::string& fasta, int64_t length,
                         const std::string& cache_dir = "", const RegionFilter& filter = {});

// read_variants a chunk at a time (`lowpass variants` streams: memory follows the chunk, not the file). The
// constructor opens and checks the file and reads its header (the same errors); read() appends the alleles of the
// next records until it has appended at least `min_alleles` (>= 1; a record's ALT alleles are never split) or the file
// ends, with the same checks and errors; totals() holds the counters (records, no_alt, skipped, outside,
// dropped_edge, dropped) of the records read so far, and the FASTA and L; its `alleles` stay empty.
class VariantReader {
 public:
  VariantReader(const std::string& vcf_file, const std::string& fasta, int64_t length, const std::string& cache_dir = "",
                const RegionFilter& filter = {});
  ~VariantReader();
  VariantReader(const VariantReader&) = delete;
  VariantReader& operator=(const VariantReader&) = delete;
  // Appends to `out`; false once the end of the file is reached (nothing more to read).
  bool read(std::vector<Variant>& out, int64_t min_alleles);
  const VariantSet& totals() const { return v_; }
  int64_t alleles_read() const { return alleles_; }  // alleles appended by read() so far
  // Bytes of the file read so far (compressed bytes for bgzip/BCF) and the file's size (-1: unknown, e.g. a pipe).
  int64_t offset() const;
  int64_t file_size() const { return file_size_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  VariantSet v_;
  int64_t alleles_ = 0, file_size_ = -1;
};

// One-hot REF and ALT windows (n, 4, L) of alleles [s, s + n), as `dtype`.
void variant_rows(Context& ctx, const VariantSet& v, int64_t s, int64_t n, DType dtype, Tensor& ref, Tensor& alt);

// The REF and ALT output profiles (O probabilities each, the output window centred in the L-base input window) on
// the positions they share, each renormalised. The alleles are first trimmed of their common suffix, then prefix (so
// CAT>CT pairs as CA>C); then the first min(|REF|, |ALT|) changed bases pair up, the bases after the alleles pair
// with a shift of |ALT| − |REF|; a deletion's extra REF bases, an insertion's extra ALT bases and the
// positions whose partner falls outside the other window are left out. For an SNV (any |REF| = |ALT|) both come back
// unchanged. jsd_aligned compares these, so that an indel's score is not the shift of the whole downstream profile.
void align_profiles(const Variant& v, int64_t L, const double* ref, const double* alt, int64_t O,
                    std::vector<double>& ref_out, std::vector<double>& alt_out);

// The REF windows as region windows (same chromosomes and starts), for the model's control tracks
// (attach_controls / region_control_rows).
RegionWindows variant_windows(const VariantSet& v);

}  // namespace lowpass::attr
