// data.genome / data.sequences config sections: resolved = defaults ⊕ user, unknown keys named by path.
// Folds come from a JSON file (ChromBPNet format) or inline {"train": [...], "valid": [...], "test": [...]}.
// Test: build/tests/lowpass_tests -ts=genome_train
#include "models/train/config_genome.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "engine/error.h"
#include "engine/suggest.h"
#include "models/arch/model.h"
#include "models/data/folds.h"

namespace lowpass {

using nlohmann::json;
namespace fs = std::filesystem;

json default_genome_data() {
  GenomeDataSettings g;
  return {{"fasta", nullptr},          {"peaks", nullptr},
          {"ambiguous", json::array()}, {"bigwigs", json::array()},
          {"controls", json::array()},  {"folds", nullptr},
          {"chrom_sizes", nullptr},     {"blacklist", nullptr},
          {"cache_dir", nullptr},       {"negatives", g.negatives},
          {"exclude_peaks", g.exclude_peaks}, {"jitter", g.jitter},
          {"max_n_fraction", g.max_n_fraction}, {"peak_retention", g.peak_retention},
          {"bin", g.bin}, {"stride", g.stride}, {"flank", g.flank},
          {"min_overlap", g.min_overlap}, {"partial_ambiguous", g.partial_ambiguous},
          {"gc_pool_factor", g.gc_pool_factor}, {"gc_bins", g.gc_bins},
          {"memory_budget_mb", g.memory_budget_mb}, {"workers", g.workers}, {"prefetch", g.prefetch}};
}

std::string resolve_data_path(const std::string& p, const std::string& base_dir, const std::string& what) {
  std::string s = p;
  const std::string var = "$LOWPASS_DATA";
  if (s.rfind(var, 0) == 0 || s.rfind("${LOWPASS_DATA}", 0) == 0) {
    const char* env = std::getenv("LOWPASS_DATA");
    LP_CHECK(env != nullptr && *env, what, ": \"", p, "\" uses $LOWPASS_DATA, which is not set (export LOWPASS_DATA=",
             "the folder holding the data, e.g. ../shared/data)");
    s = std::string(env) + s.substr(s[1] == '{' ? var.size() + 2 : var.size());
  }
  fs::path q(s);
  if (q.is_relative() && !base_dir.empty()) q = fs::path(base_dir) / q;
  const std::string r = fs::absolute(q).lexically_normal().string();
  // A shell would expand these; a config file does not (the path would be read as a folder named '~' or '$HOME').
  std::error_code ec;
  const bool shell = s.rfind('~', 0) == 0 || s.find('$') != std::string::npos;
  LP_CHECK(!shell || fs::exists(r, ec), what, ": \"", p, "\" (", r, ") does not exist; a config's paths are not ",
           "expanded as a shell does ('~' and variables other than $LOWPASS_DATA stay as written): give the full path");
  return r;
}

namespace {

std::string kind(const json& v) {
  return v.is_null() ? "null" : v.is_boolean() ? "a boolean" : v.is_number() ? "a number" : v.is_string() ? "a string"
         : v.is_array() ? "an array" : "an object";
}

struct Sec {
  json& j;
  const std::string& src;
  std::string path;
  std::string key(const char* k) const { return path + "." + k; }
  double num(const char* k, double lo, double hi) const {
    const json& v = j[k];
    LP_CHECK(v.is_number() && std::isfinite(v.get<double>()), src, ": '", key(k), "' must be a number, got ", kind(v));
    double d = v.get<double>();
    LP_CHECK(d >= lo && d <= hi, src, ": '", key(k), "' must be in [", lo, ", ", hi, "], got ", d);
    return d;
  }
  // hi: where a larger value can only be a mistake and would overflow what is computed from it (positions plus a
  // jitter or stride, thread counts held as int).
  int64_t integer(const char* k, int64_t lo, int64_t hi = INT64_MAX) const {
    const json& v = j[k];
    LP_CHECK(v.is_number_integer() && (!v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t(INT64_MAX)), src,
             ": '", key(k), "' must be an integer, got ", v.is_number() ? v.dump() : kind(v));
    int64_t i = v.get<int64_t>();
    LP_CHECK(i >= lo, src, ": '", key(k), "' must be >= ", lo, ", got ", i);
    LP_CHECK(i <= hi, src, ": '", key(k), "' must be <= ", hi, ", got ", i);
    return i;
  }
  bool boolean(const char* k) const {
    LP_CHECK(j[k].is_boolean(), src, ": '", key(k), "' must be true or false, got ", kind(j[k]));
    return j[k].get<bool>();
  }
  // Optional path (null → ""), resolved and written back.
  std::string path_of(json& v, const std::string& what, const std::string& base, bool required) const {
    if (v.is_null()) {
      LP_CHECK(!required, src, ": '", what, "' is required (a file path)");
      return "";
    }
    LP_CHECK(v.is_string() && !v.get<std::string>().empty(), src, ": '", what, "' must be a path string, got ", kind(v));
    v = resolve_data_path(v.get<std::string>(), base, src + ": '" + what + "'");
    return v.get<std::string>();
  }
  std::vector<std::string> paths(const char* k, const std::string& base, bool allow_empty_entries) const {
    json& v = j[k];
    if (v.is_string()) v = json::array({v});  // one file for one task
    LP_CHECK(v.is_array(), src, ": '", key(k), "' must be a list of paths, got ", kind(v));
    std::vector<std::string> r;
    for (size_t i = 0; i < v.size(); ++i) {
      std::string w = key(k) + "[" + std::to_string(i) + "]";
      if (allow_empty_entries && (v[i].is_null() || (v[i].is_string() && v[i].get<std::string>().empty()))) {
        v[i] = "";
        r.push_back("");
      } else {
        r.push_back(path_of(v[i], w, base, true));
      }
    }
    return r;
  }
  // [[strand files] per task]; a flat list of strings means one task with those strands.
  std::vector<std::vector<std::string>> tracks(const char* k, const std::string& base) const {
    json& v = j[k];
    LP_CHECK(v.is_array(), src, ": '", key(k), "' must be a list (per task) of lists of bigWig paths, got ", kind(v));
    if (!v.empty() && v[0].is_string()) v = json::array({v});
    std::vector<std::vector<std::string>> r;
    for (size_t t = 0; t < v.size(); ++t) {
      std::string w = key(k) + "[" + std::to_string(t) + "]";
      if (v[t].is_string()) v[t] = json::array({v[t]});
      LP_CHECK(v[t].is_array() && !v[t].empty(), src, ": '", w, "' must be a non-empty list of bigWig paths (strands)");
      std::vector<std::string> files;
      for (size_t s = 0; s < v[t].size(); ++s) files.push_back(path_of(v[t][s], w + "[" + std::to_string(s) + "]", base, true));
      r.push_back(files);
    }
    return r;
  }
};

std::vector<std::string> chrom_list(const json& v, const std::string& what, const std::string& src) {
  LP_CHECK(v.is_null() || v.is_array(), src, ": '", what, "' must be a list of chromosome names");
  std::vector<std::string> r;
  if (v.is_array())
    for (const auto& c : v) {
      LP_CHECK(c.is_string(), src, ": '", what, "' must hold chromosome names (strings), got ", kind(c));
      r.push_back(c.get<std::string>());
    }
  return r;
}

}  // namespace

void resolve_genome_data(json& user, TrainConfig& cfg, const std::string& src, const std::string& base) {
  LP_CHECK(user.is_object(), src, ": 'data.genome' must be an object, got ", kind(user));
  json g = default_genome_data();
  for (auto it = user.begin(); it != user.end(); ++it) {
    LP_CHECK(g.contains(it.key()), src, ": unknown key 'data.genome.", it.key(), "'", did_you_mean_key(it.key(), g));
    g[it.key()] = it.value();
  }
  Sec s{g, src, "data.genome"};
  GenomeDataSettings& d = cfg.data.genome;
  d.enabled = true;
  d.fasta = s.path_of(g["fasta"], "data.genome.fasta", base, true);
  LP_CHECK(!g["peaks"].is_null(), src, ": 'data.genome.peaks' is required (BED/narrowPeak files)");
  d.peaks = s.paths("peaks", base, false);
  LP_CHECK(!d.peaks.empty(), src, ": 'data.genome.peaks' lists no files");
  d.ambiguous = s.paths("ambiguous", base, true);
  d.bigwigs = s.tracks("bigwigs", base);
  d.controls = s.tracks("controls", base);
  d.chrom_sizes = s.path_of(g["chrom_sizes"], "data.genome.chrom_sizes", base, false);
  d.blacklist = s.path_of(g["blacklist"], "data.genome.blacklist", base, false);
  d.cache_dir = s.path_of(g["cache_dir"], "data.genome.cache_dir", base, false);
  // folds: a file or an inline object
  json& f = g["folds"];
  LP_CHECK(!f.is_null(), src, ": 'data.genome.folds' is required: a folds JSON path or "
           "{\"train\": [...], \"valid\": [...], \"test\": [...]} of chromosomes");
  if (f.is_string()) {
    d.folds_file = s.path_of(f, "data.genome.folds", base, true);
    Folds fo;
    try {
      fo = read_folds(d.folds_file);
    } catch (const Error& e) {
      throw Error(src + ": 'data.genome.folds': " + e.what());
    }
    d.train_chroms = fo.train, d.valid_chroms = fo.valid, d.test_chroms = fo.test;
  } else {
    LP_CHECK(f.is_object(), src, ": 'data.genome.folds' must be a path or an object, got ", kind(f));
    for (auto it = f.begin(); it != f.end(); ++it)
      LP_CHECK(it.key() == "train" || it.key() == "valid" || it.key() == "validation" || it.key() == "test", src,
               ": unknown key 'data.genome.folds.", it.key(), "' (expected train, valid or validation, test)");
    LP_CHECK(!(f.contains("valid") && f.contains("validation")), src,
             ": 'data.genome.folds' has both 'valid' and 'validation' (the same split): keep one");
    const char* valid_key = f.contains("validation") ? "validation" : "valid";  // as in folds files (ChromBPNet)
    d.train_chroms = chrom_list(f.value("train", json()), "data.genome.folds.train", src);
    d.valid_chroms = chrom_list(f.value(valid_key, json()), std::string("data.genome.folds.") + valid_key, src);
    d.test_chroms = chrom_list(f.value("test", json()), "data.genome.folds.test", src);
    std::set<std::string> seen;
    for (auto* l : {&d.train_chroms, &d.valid_chroms, &d.test_chroms})
      for (auto& c : *l) LP_CHECK(seen.insert(c).second, src, ": 'data.genome.folds' lists '", c, "' in two splits");
  }
  LP_CHECK(!d.train_chroms.empty(), src, ": 'data.genome.folds.train' lists no chromosomes");
  const json& neg = g["negatives"];
  LP_CHECK(neg.is_string() && (neg == "uniform" || neg == "gc_matched"), src,
           ": 'data.genome.negatives' must be one of uniform|gc_matched, got ", neg.dump());
  d.negatives = neg.get<std::string>();
  d.exclude_peaks = s.boolean("exclude_peaks");
  constexpr int64_t kBases = 1'000'000'000;  // more than any chromosome
  d.jitter = s.integer("jitter", 0, kBases);
  d.max_n_fraction = s.num("max_n_fraction", 0, 1);
  d.peak_retention = s.num("peak_retention", 0, 1);
  d.bin = s.integer("bin", 1);
  d.stride = s.integer("stride", 1, kBases);
  d.flank = s.integer("flank", 0);
  d.min_overlap = s.num("min_overlap", 0, 1);
  d.partial_ambiguous = s.boolean("partial_ambiguous");
  d.gc_pool_factor = s.integer("gc_pool_factor", 1);
  d.gc_bins = s.integer("gc_bins", 1);
  d.memory_budget_mb = s.integer("memory_budget_mb", 1);
  d.workers = s.integer("workers", 0, 256);
  d.prefetch = s.integer("prefetch", 1, 1 << 16);

  const json& m = cfg.model;
  const int64_t T = m.at("num_tasks").get<int64_t>();
  if (cfg.model_type == "binary") {
    LP_CHECK(d.bigwigs.empty() && d.controls.empty(), src,
             ": 'data.genome.bigwigs'/'controls' are for profile models (model.type \"profile\")");
    LP_CHECK(static_cast<int64_t>(d.peaks.size()) == T, src, ": 'data.genome.peaks' has ", d.peaks.size(),
             " files but model.num_tasks is ", T, " (binary models take one peak file per task)");
    LP_CHECK(d.ambiguous.empty() || d.ambiguous.size() == d.peaks.size(), src, ": 'data.genome.ambiguous' has ",
             d.ambiguous.size(), " entries for ", d.peaks.size(), " tasks (one per task, \"\" for none)");
    const int64_t L = m.at("input_length").get<int64_t>();
    // In int64 or not at all (UBSan under fuzz_config): a bin and flank near 2^63 wrapped round to input_length.
    int64_t window = 0;
    const bool over =
        __builtin_mul_overflow(d.flank, int64_t{2}, &window) || __builtin_add_overflow(window, d.bin, &window);
    LP_CHECK(!over && window == L, src, ": data.genome.bin + 2 * data.genome.flank = ",
             over ? std::string("more than 2^63 - 1") : std::to_string(window), " but model.input_length is ", L);
  } else {
    LP_CHECK(d.ambiguous.empty(), src, ": 'data.genome.ambiguous' is for binary models");
    LP_CHECK(static_cast<int64_t>(d.bigwigs.size()) == T, src, ": 'data.genome.bigwigs' has ", d.bigwigs.size(),
             " tasks but model.num_tasks is ", T);
    const std::string ctl = m.value("controls", std::string("none"));
    const size_t want = static_cast<size_t>(control_tracks(ctl, T));
    LP_CHECK(d.controls.size() == want, src, ": model.controls is \"", ctl, "\" so 'data.genome.controls' needs ", want,
             " list(s) of bigWigs, got ", d.controls.size(), want == 0 ? "" : " (or set model.controls to \"none\")");
    const int64_t S = m.at("num_strands").get<int64_t>();
    for (size_t t = 0; t < d.bigwigs.size(); ++t)
      LP_CHECK(static_cast<int64_t>(d.bigwigs[t].size()) == S, src, ": 'data.genome.bigwigs[", t, "]' has ",
               d.bigwigs[t].size(), " files but model.num_strands is ", S);
  }
  user = g;
}

void resolve_sequence_data(json& user, TrainConfig& cfg, const std::string& src, const std::string& base) {
  LP_CHECK(user.is_object(), src, ": 'data.sequences' must be an object, got ", kind(user));
  LP_CHECK(cfg.model_type == "binary", src, ": 'data.sequences' (positive/negative FASTA files) needs model.type \"binary\"");
  LP_CHECK(cfg.model.at("num_tasks").get<int64_t>() == 1, src, ": 'data.sequences' gives one task; set model.num_tasks to 1");
  json g = {{"train", nullptr}, {"valid", nullptr}, {"test", nullptr}};
  for (auto it = user.begin(); it != user.end(); ++it) {
    LP_CHECK(g.contains(it.key()), src, ": unknown key 'data.sequences.", it.key(), "' (expected train, valid, test)",
             did_you_mean(it.key(), {"train", "valid", "test"}));
    g[it.key()] = it.value();
  }
  SequenceDataSettings& d = cfg.data.sequences;
  d.enabled = true;
  std::string* out[3][2] = {{&d.train_positives, &d.train_negatives},
                            {&d.valid_positives, &d.valid_negatives},
                            {&d.test_positives, &d.test_negatives}};
  const char* names[3] = {"train", "valid", "test"};
  for (int k = 0; k < 3; ++k) {
    json& v = g[names[k]];
    std::string p = std::string("data.sequences.") + names[k];
    if (v.is_null()) {
      LP_CHECK(k != 0, src, ": '", p, "' is required: {\"positives\": FASTA, \"negatives\": FASTA}");
      continue;
    }
    LP_CHECK(v.is_object(), src, ": '", p, "' must be {\"positives\": FASTA, \"negatives\": FASTA}, got ", kind(v));
    for (auto it = v.begin(); it != v.end(); ++it)
      LP_CHECK(it.key() == "positives" || it.key() == "negatives", src, ": unknown key '", p, ".", it.key(), "'");
    Sec s{v, src, p};
    for (int c = 0; c < 2; ++c) {
      const char* key = c == 0 ? "positives" : "negatives";
      LP_CHECK(v.contains(key), src, ": '", p, ".", key, "' is required (a FASTA file)");
      *out[k][c] = s.path_of(v[key], p + "." + key, base, true);
    }
  }
  user = g;
}

}  // namespace lowpass
