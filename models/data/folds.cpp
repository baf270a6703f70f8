// Folds JSON reader and checks.
// split_of(c) = the split whose list contains c, else -1.
// Test: build/tests/lowpass_tests -ts=genome
#include "models/data/folds.h"

#include <nlohmann/json.hpp>
#include <unordered_map>

#include "engine/error.h"
#include "models/data/json_file.h"
#include "models/data/readable.h"

namespace lowpass {

const char* split_name(Split s) {
  switch (s) {
    case Split::Train: return "train";
    case Split::Valid: return "valid";
    default: return "test";
  }
}

Split parse_split(const std::string& s, const std::string& field) {
  if (s == "train") return Split::Train;
  if (s == "valid" || s == "validation") return Split::Valid;
  if (s == "test") return Split::Test;
  LP_CHECK(false, field, ": unknown split '", s, "' (expected \"train\", \"valid\" or \"test\")");
  return Split::Train;
}

const std::vector<std::string>& Folds::of(Split s) const {
  return s == Split::Train ? train : s == Split::Valid ? valid : test;
}

int Folds::split_of(const std::string& chrom) const {
  for (int s = 0; s < 3; ++s)
    for (auto& c : of(static_cast<Split>(s)))
      if (c == chrom) return s;
  return -1;
}

Folds read_folds(const std::string& path) {
  check_readable(path, "folds");
  const nlohmann::json j = parse_json_file(path, "folds '" + path + "'");  // a repeated key is an error too
  LP_CHECK(j.is_object(), "folds '", path, "': expected an object {\"train\": [...], \"valid\": [...], \"test\": [...]}");
  Folds f;
  std::unordered_map<std::string, std::string> where;
  for (Split s : {Split::Train, Split::Valid, Split::Test}) {
    std::string key = split_name(s);
    if (!j.contains(key) && s == Split::Valid && j.contains("validation")) key = "validation";
    if (!j.contains(key)) {
      LP_CHECK(s == Split::Valid, "folds '", path, "': missing key \"", key, "\" (a list of chromosomes)");
      continue;
    }
    const auto& a = j[key];
    LP_CHECK(a.is_array(), "folds '", path, "': \"", key, "\" must be a list of chromosome names");
    std::vector<std::string>& out = s == Split::Train ? f.train : s == Split::Valid ? f.valid : f.test;
    for (size_t i = 0; i < a.size(); ++i) {
      LP_CHECK(a[i].is_string(), "folds '", path, "': \"", key, "\"[", i, "] is not a string");
      std::string c = a[i].get<std::string>();
      auto [it, fresh] = where.emplace(c, key);
      LP_CHECK(fresh, "folds '", path, "': chromosome '", c, "' is in both \"", it->second, "\" and \"", key, "\"");
      out.push_back(c);
    }
  }
  LP_CHECK(!f.train.empty(), "folds '", path, "': \"train\" is empty");
  return f;
}

void check_folds(const Folds& f, const ChromSizes& genome, const std::string& path) {
  for (Split s : {Split::Train, Split::Valid, Split::Test})
    for (auto& c : f.of(s))
      LP_CHECK(genome.find(c) >= 0, "folds '", path, "': \"", split_name(s), "\" lists '", c,
               "' which is not in the FASTA; ", genome.suggest(c));
}

}  // namespace lowpass
