// Training configuration: defaults per model type merged under the user's JSON, strict key checks.
// resolved = defaults(type) ⊕ user; every unknown key is an Error naming its path.
// Test: build/tests/lowpass_tests -ts=config
#include "models/train/config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "engine/suggest.h"
#include "models/arch/binary_net.h"
#include "models/data/json_file.h"
#include "models/arch/profile_net.h"
#include "models/loss/fourier_prior.h"
#include "models/train/config_genome.h"

namespace lowpass {

using nlohmann::json;
namespace fs = std::filesystem;

json default_config(const std::string& type) {
  LP_CHECK(type == "binary" || type == "profile", "model.type must be \"binary\" or \"profile\", got \"",
           type, "\"");
  const bool bin = type == "binary";
  json c;
  c["model"] = {{"type", type}};
  c["data"] = {{"train", nullptr}, {"valid", nullptr}, {"test", nullptr}, {"genome", nullptr}, {"sequences", nullptr}};
  TrainSettings t;
  c["train"] = {{"optimizer", t.optimizer},
                {"lr", t.lr},
                {"beta1", t.beta1},
                {"beta2", t.beta2},
                {"eps", t.eps},
                {"momentum", t.momentum},
                {"batch_size", bin ? 128 : 64},
                {"negative_ratio", t.negative_ratio},
                {"epochs", t.epochs},
                {"max_steps", nullptr},
                {"shuffle", t.shuffle},
                {"seed", nullptr},
                {"revcomp", t.revcomp},
                {"early_stopping", t.early_stopping},
                {"patience", t.patience},
                {"min_delta", t.min_delta},
                {"min_epochs", t.min_epochs},
                {"early_stopping_on", t.early_stopping_on},
                {"threads", t.threads},
                {"counts_loss_weight", t.counts_loss_weight},
                {"eval_batch_size", t.eval_batch_size},
                {"progress", t.progress},
                {"device", t.device},
                {"tf32", t.tf32},
                {"bf16", t.bf16},
                {"cuda_graph", t.cuda_graph},
                {"cuda_conv", t.cuda_conv}};
  c["prior"] = {{"type", "fourier"},
                {"weight", bin ? 1.0 : 50.0},
                {"freq_limit", nullptr},  // the paper's cut-off at the model's input length (default_freq_limit)
                {"softness", 0.2},
                {"smooth_sigma", 3.0},
                {"l2_weight", 0.0},
                {"attribution_mode", "eval"}};
  return c;
}

namespace {

std::string kind_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

// Overlay `user` onto `base` for a section whose keys are fixed by the defaults.
void overlay(json& base, const json& user, const std::string& path, const std::string& src) {
  LP_CHECK(user.is_object(), src, ": '", path, "' must be an object, got ", kind_name(user));
  for (auto it = user.begin(); it != user.end(); ++it) {
    std::string key = path.empty() ? it.key() : path + "." + it.key();
    LP_CHECK(base.contains(it.key()), src, ": unknown key '", key, "'", did_you_mean_key(it.key(), base));
    base[it.key()] = it.value();
  }
}

const json& field(const json& sec, const char* k) { return sec.at(k); }

double num(const json& sec, const char* k, const std::string& sp, const std::string& src) {
  const json& v = field(sec, k);
  LP_CHECK(v.is_number(), src, ": '", sp, ".", k, "' must be a number, got ", kind_name(v));
  double d = v.get<double>();
  LP_CHECK(std::isfinite(d), src, ": '", sp, ".", k, "' must be finite");
  return d;
}

int64_t integer(const json& sec, const char* k, const std::string& sp, const std::string& src, int64_t lo) {
  const json& v = field(sec, k);
  LP_CHECK(v.is_number_integer() || (v.is_number() && std::floor(v.get<double>()) == v.get<double>()), src,
           ": '", sp, ".", k, "' must be an integer, got ", v.is_number() ? v.dump() : kind_name(v));
  // Range first (fuzz finding): casting a double >= 2^63 to int64 is undefined, a uint64 > 2^63-1 wraps.
  LP_CHECK(v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(INT64_MAX) : std::fabs(v.get<double>()) < 9.2e18,
           src, ": '", sp, ".", k, "' = ", v.dump(), " is out of the 64-bit integer range");
  int64_t i = v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
  LP_CHECK(i >= lo, src, ": '", sp, ".", k, "' must be >= ", lo, ", got ", i);
  return i;
}

bool boolean(const json& sec, const char* k, const std::string& sp, const std::string& src) {
  const json& v = field(sec, k);
  LP_CHECK(v.is_boolean(), src, ": '", sp, ".", k, "' must be true or false, got ", kind_name(v));
  return v.get<bool>();
}

std::string choice(const json& sec, const char* k, const std::string& sp, const std::string& src,
                   std::initializer_list<const char*> allowed) {
  const json& v = field(sec, k);
  std::string opts;
  for (auto a : allowed) opts += std::string(opts.empty() ? "" : "|") + a;
  LP_CHECK(v.is_string(), src, ": '", sp, ".", k, "' must be one of ", opts, ", got ", kind_name(v));
  std::string s = v.get<std::string>();
  for (auto a : allowed)
    if (s == a) return s;
  throw Error(src + ": '" + sp + "." + k + "' must be one of " + opts + ", got \"" + s + "\"");
}

std::string data_path(json& sec, const char* k, const std::string& src, const std::string& base_dir,
                      bool required) {
  json& v = sec[k];
  if (v.is_null()) {
    LP_CHECK(!required, src, ": 'data.", k, "' is required (path to an .npz file)");
    return "";
  }
  LP_CHECK(v.is_string(), src, ": 'data.", k, "' must be a path string, got ", kind_name(v));
  fs::path p(v.get<std::string>());
  if (p.is_relative() && !base_dir.empty()) p = fs::path(base_dir) / p;
  std::string abs = fs::absolute(p).lexically_normal().string();
  v = abs;
  return abs;
}

}  // namespace

TrainConfig resolve_config(const json& user, const std::string& src, const std::string& base_dir) {
  LP_CHECK(user.is_object(), src, ": the config must be a JSON object, got ", kind_name(user));
  std::string type = "binary";
  if (user.contains("model")) {
    const json& m = user["model"];
    LP_CHECK(m.is_object(), src, ": 'model' must be an object, got ", kind_name(m));
    if (m.contains("type")) {
      LP_CHECK(m["type"].is_string(), src, ": 'model.type' must be \"binary\" or \"profile\"");
      type = m["type"].get<std::string>();
      LP_CHECK(type == "binary" || type == "profile", src,
               ": 'model.type' must be \"binary\" or \"profile\", got \"", type, "\"");
    }
  }
  json c = default_config(type);
  for (auto it = user.begin(); it != user.end(); ++it) {
    const std::string& k = it.key();
    LP_CHECK(c.contains(k), src, ": unknown key '", k, "' (expected model, data, train, prior)",
             did_you_mean_key(k, c));
    if (k == "model") {
      // Hyper-parameters belong to the architecture: make_model checks them (and names bad fields).
      LP_CHECK(it.value().is_object(), src, ": 'model' must be an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) c["model"][m.key()] = m.value();
    } else {
      overlay(c[k], it.value(), k, src);
    }
  }

  // The architecture resolves its own section (defaults filled, unknown keys named "model.<key>").
  try {
    c["model"] = type == "binary" ? BinaryNetConfig::from_json(c["model"]).to_json()
                                  : ProfileNetConfig::from_json(c["model"]).to_json();
  } catch (const Error& e) {
    throw Error(src + ": " + e.what());
  }
  TrainConfig cfg;
  cfg.source = src;
  cfg.model_type = type;
  cfg.model = c["model"];

  json& d = c["data"];
  const int n_forms = !d["train"].is_null() + !d["genome"].is_null() + !d["sequences"].is_null();
  LP_CHECK(n_forms <= 1, src, ": give exactly one of 'data.train' (npz), 'data.genome' (FASTA + peaks) and "
           "'data.sequences' (FASTA files of positives/negatives), got ", n_forms);
  if (!d["genome"].is_null() || !d["sequences"].is_null()) {
    LP_CHECK(d["valid"].is_null() && d["test"].is_null(), src, ": 'data.valid'/'data.test' are npz paths for "
             "'data.train'; with data.genome the folds choose the splits, with data.sequences use data.sequences.valid/test");
    if (!d["genome"].is_null()) resolve_genome_data(d["genome"], cfg, src, base_dir);
    else resolve_sequence_data(d["sequences"], cfg, src, base_dir);
  } else {
    cfg.data.train = data_path(d, "train", src, base_dir, true);
    cfg.data.valid = data_path(d, "valid", src, base_dir, false);
    cfg.data.test = data_path(d, "test", src, base_dir, false);
  }

  json& t = c["train"];
  TrainSettings& s = cfg.train;
  s.optimizer = choice(t, "optimizer", "train", src, {"adam", "sgd"});
  s.lr = num(t, "lr", "train", src);
  LP_CHECK(s.lr > 0, src, ": 'train.lr' must be > 0, got ", s.lr);
  s.beta1 = num(t, "beta1", "train", src);
  s.beta2 = num(t, "beta2", "train", src);
  LP_CHECK(s.beta1 >= 0 && s.beta1 < 1 && s.beta2 >= 0 && s.beta2 < 1, src,
           ": 'train.beta1' and 'train.beta2' must be in [0, 1)");
  s.eps = num(t, "eps", "train", src);
  LP_CHECK(s.eps > 0, src, ": 'train.eps' must be > 0");
  s.momentum = num(t, "momentum", "train", src);
  LP_CHECK(s.momentum >= 0 && s.momentum < 1, src, ": 'train.momentum' must be in [0, 1)");
  s.batch_size = integer(t, "batch_size", "train", src, 1);
  s.negative_ratio = num(t, "negative_ratio", "train", src);
  LP_CHECK(s.negative_ratio >= 0, src, ": 'train.negative_ratio' must be >= 0");
  s.epochs = integer(t, "epochs", "train", src, 1);
  s.max_steps = t["max_steps"].is_null() ? 0 : integer(t, "max_steps", "train", src, 1);
  s.shuffle = boolean(t, "shuffle", "train", src);
  if (t["seed"].is_null()) {
    std::random_device rd;  // the reference's train_seed = None: a fresh seed, recorded for reruns
    t["seed"] = (static_cast<uint64_t>(rd()) << 20) ^ rd();
  }
  s.seed = static_cast<uint64_t>(integer(t, "seed", "train", src, 0));
  s.revcomp = boolean(t, "revcomp", "train", src);
  s.early_stopping = boolean(t, "early_stopping", "train", src);
  s.patience = integer(t, "patience", "train", src, 1);
  s.min_delta = num(t, "min_delta", "train", src);
  s.min_epochs = integer(t, "min_epochs", "train", src, 0);
  s.early_stopping_on = choice(t, "early_stopping_on", "train", src, {"total", "task"});
  s.threads = integer(t, "threads", "train", src, 0);
  s.counts_loss_weight_auto = t["counts_loss_weight"] == "auto";
  if (!s.counts_loss_weight_auto) {
    s.counts_loss_weight = num(t, "counts_loss_weight", "train", src);
    LP_CHECK(s.counts_loss_weight >= 0, src, ": 'train.counts_loss_weight' must be >= 0 or \"auto\"");
  }
  s.eval_batch_size = integer(t, "eval_batch_size", "train", src, 1);
  s.progress = boolean(t, "progress", "train", src);
  LP_CHECK(t["device"].is_string(), src, ": 'train.device' must be a string (cpu, cuda or cuda:N), got ",
           kind_name(t["device"]));
  s.device = t["device"].get<std::string>();
  parse_device(s.device, src + ": 'train.device'");
  s.tf32 = boolean(t, "tf32", "train", src);
  s.bf16 = boolean(t, "bf16", "train", src);
  s.cuda_graph = boolean(t, "cuda_graph", "train", src);
  s.cuda_conv = choice(t, "cuda_conv", "train", src, {"default", "auto", "direct", "tiled", "im2col", "cudnn", "tune"});

  json& p = c["prior"];
  PriorConfig& pr = cfg.prior;
  pr.type = choice(p, "type", "prior", src, {"fourier", "smoothness", "sparsity", "none"});
  pr.weight = num(p, "weight", "prior", src);
  LP_CHECK(pr.weight >= 0, src, ": 'prior.weight' must be >= 0");
  const int64_t L = cfg.model.at("input_length").get<int64_t>();
  if (p["freq_limit"].is_null()) p["freq_limit"] = default_freq_limit(type, L);  // resolved: config.json shows it
  pr.freq_limit = integer(p, "freq_limit", "prior", src, 0);
  if (pr.type == "fourier") check_freq_limit(pr.freq_limit, L, src + ": 'prior.freq_limit'");
  if (p["softness"].is_null()) {
    pr.softness.reset();
  } else {
    pr.softness = num(p, "softness", "prior", src);
    LP_CHECK(*pr.softness > 0, src, ": 'prior.softness' must be > 0 or null (hard cut-off)");
  }
  pr.smooth_sigma = num(p, "smooth_sigma", "prior", src);
  LP_CHECK(pr.smooth_sigma >= 0, src, ": 'prior.smooth_sigma' must be >= 0");
  pr.l2_weight = num(p, "l2_weight", "prior", src);
  LP_CHECK(pr.l2_weight >= 0, src, ": 'prior.l2_weight' must be >= 0");
  pr.attribution_mode = choice(p, "attribution_mode", "prior", src, {"train", "eval"});

  cfg.resolved = c;
  return cfg;
}

TrainConfig load_config(const std::string& path) {
  std::ifstream f(path);
  LP_CHECK(f.good(), path, ": cannot open the config file");
  const json j = parse_json_stream(f, path);  // a repeated key is an error (nlohmann alone keeps the last one)
  return resolve_config(j, path, fs::absolute(fs::path(path)).parent_path().string());
}

void write_config(const TrainConfig& cfg, const std::string& path) {
  // atomic (temp + fsync + rename), errors with the reason (a read-only run folder, a full disk)
  const std::string text = cfg.resolved.dump(2) + "\n";
  safetensors::write_file_atomic(path, text);
}

}  // namespace lowpass
