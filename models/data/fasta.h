// FASTA reference genome through htslib faidx (plain or bgzip), chromosome sizes, one-hot encoding.
// one_hot: column i of the (4, L) block is e_A/e_C/e_G/e_T for base i (case-insensitive), all zero otherwise.
// Test: build/tests/lowpass_tests -ts=genome
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lowpass {

// Chromosome names and lengths, in file order, with lookup by name.
struct ChromSizes {
  std::vector<std::string> names;
  std::vector<int64_t> lengths;
  std::unordered_map<std::string, int64_t> index;  // name -> position in names

  void add(const std::string& name, int64_t length);
  int64_t find(const std::string& name) const;      // -1 when absent
  int64_t length(const std::string& name) const;    // -1 when absent
  int64_t size() const { return static_cast<int64_t>(names.size()); }
  // A hint for a missing name: the 'chr'-prefix twin when present ("did you mean 'chr1'?"), else a
  // short list of the known names. Used in every unknown-chromosome message.
  std::string suggest(const std::string& missing) const;
};

// Base codes used everywhere in models/data: 0 A, 1 C, 2 G, 3 T, 4 anything else (N, IUPAC, gap).
inline uint8_t base_code(char c) {
  switch (c) {
    case 'A': case 'a': return 0;
    case 'C': case 'c': return 1;
    case 'G': case 'g': return 2;
    case 'T': case 't': return 3;
    default: return 4;
  }
}

// One-hot (4, L) row-major into out[4 * L] (row b = base b); out is fully overwritten.
// With revcomp, position i gets the complement of base L-1-i (flips the position and base axes).
void one_hot_encode(std::string_view seq, float* out, bool revcomp = false);
void one_hot_codes(const uint8_t* codes, int64_t length, float* out, bool revcomp = false);
// Count of codes == 4 (non-ACGT) and of G/C among codes.
int64_t count_non_acgt(const uint8_t* codes, int64_t length);
int64_t count_gc(const uint8_t* codes, int64_t length);

// An indexed FASTA file. Opening builds the .fai (and .gzi for bgzip) when missing: next to the FASTA
// when that folder is writable, otherwise in `cache_dir` (default $LOWPASS_CACHE, then
// $XDG_CACHE_HOME/lowpass, then ~/.cache/lowpass, then /tmp/lowpass-cache), keyed by the FASTA's
// absolute path, size and modification time so a changed FASTA never uses a stale index.
// Fetches are thread-safe (one htslib handle behind a mutex).
class Fasta {
 public:
  explicit Fasta(const std::string& path, const std::string& cache_dir = "");
  ~Fasta();
  Fasta(const Fasta&) = delete;
  Fasta& operator=(const Fasta&) = delete;

  const std::string& path() const { return path_; }
  const std::string& index_path() const { return fai_path_; }  // where the .fai actually lives
  const ChromSizes& chrom_sizes() const { return sizes_; }
  int64_t length(const std::string& chrom) const;  // throws Error naming the FASTA for unknown names

  // Sequence of [start, end) as stored (case kept). Throws Error for unknown chromosomes and
  // coordinates outside [0, length]; `what` names the caller's field/line for the message.
  std::string fetch(const std::string& chrom, int64_t start, int64_t end, const std::string& what = "") const;
  // Base codes of [start, end) into out[end - start].
  void fetch_codes(const std::string& chrom, int64_t start, int64_t end, uint8_t* out,
                   const std::string& what = "") const;

 private:
  std::string path_, fai_path_, gzi_path_;
  ChromSizes sizes_;
  struct Handle;
  std::unique_ptr<Handle> h_;
  mutable std::mutex mu_;
};

// Reads every record of a (small) FASTA file of sequences, e.g. positives/negatives for binary tasks.
// Errors name the file and line (missing '>' header, empty record, empty name).
struct FastaRecord {
  std::string name;
  std::string seq;
  int64_t line = 0;  // line of the '>' header
};
std::vector<FastaRecord> read_fasta_records(const std::string& path);

// Scans a plain or bgzip FASTA for the problems faidx rejects and returns the first one as
// "<path>:<line>: <what>", or "" when none is found. Used to explain an index build failure.
std::string diagnose_fasta(const std::string& path);

}  // namespace lowpass
