// Chromosome folds for train/validation/test, read from the ChromBPNet/bpnet-lite JSON format.
// {"train": ["chr2", ...], "valid": ["chr8", ...], "test": ["chr1"]}; each chromosome in at most one split.
// Test: build/tests/lowpass_tests -ts=genome
#pragma once
#include <string>
#include <vector>

#include "models/data/fasta.h"

namespace lowpass {

enum class Split { Train = 0, Valid = 1, Test = 2 };
const char* split_name(Split s);       // "train", "valid", "test"
Split parse_split(const std::string& s, const std::string& field);  // also accepts "validation"

struct Folds {
  std::vector<std::string> train, valid, test;
  const std::vector<std::string>& of(Split s) const;
  // Split of a chromosome, or -1 when it is in none.
  int split_of(const std::string& chrom) const;
};

// Reads a folds JSON. Errors name the file and the key: not JSON, not an object, a missing "train"
// or "test" key ("valid" may be absent or empty), a non-string entry, a chromosome listed twice.
// Unknown keys (e.g. ChromBPNet's extra fields) are ignored.
Folds read_folds(const std::string& path);
// Every listed chromosome must exist in `genome`: Error "<path>: \"test\" lists 'chr1' which is not in the FASTA; ...".
void check_folds(const Folds& f, const ChromSizes& genome, const std::string& path);

}  // namespace lowpass
