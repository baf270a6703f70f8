// Model base: state_dict in the reference's key order, strict loading, config-field helpers, and
// make_model (type "binary" | "profile"). Test: build/tests/lowpass_tests -ts=arch
#include "models/arch/model.h"

#include <cmath>
#include <set>

#include "engine/autograd.h"
#include "engine/suggest.h"
#include "models/arch/binary_net.h"
#include "models/arch/profile_net.h"

namespace lowpass {

Tensor Model::add_parameter(const std::string& name, Tensor t) {
  t.set_requires_grad(true);
  t.impl()->name = name;
  params_.emplace_back(name, t);
  order_.push_back(name);
  return t;
}

void Model::to(Device dev) {
  NoGradGuard ng;
  // Copy everything first, then swap storages: a failed copy (no GPU, out of memory) leaves the model whole.
  std::vector<std::pair<TensorImpl*, Tensor>> moved;
  for (NamedTensors* list : {&params_, &buffers_})
    for (auto& [name, t] : *list)
      if (t.device() != dev) moved.emplace_back(t.impl(), t.detach().to(dev));
  for (auto& [impl, m] : moved) {
    impl->storage = m.impl()->storage;
    impl->offset = m.impl()->offset;
    impl->grad.reset();
  }
}

Tensor Model::add_buffer(const std::string& name, Tensor t) {
  t.impl()->name = name;
  buffers_.emplace_back(name, t);
  order_.push_back(name);
  return t;
}

NamedTensors Model::state_dict() const {
  std::map<std::string, Tensor> all;
  for (const auto& [k, v] : params_) all[k] = v;
  for (const auto& [k, v] : buffers_) all[k] = v;
  NamedTensors out;
  for (const auto& k : order_) out.emplace_back(k, all.at(k));
  return out;
}

void Model::load_state_dict(const std::map<std::string, Tensor>& sd, bool strict) {
  std::set<std::string> known(order_.begin(), order_.end());
  if (strict)
    for (const auto& [k, v] : sd)
      LP_CHECK(known.count(k), "state_dict: unknown key '", k, "' for a ", type(), " model");
  auto load_into = [&](const std::string& k, Tensor& dst) {
    auto it = sd.find(k);
    if (it == sd.end()) {
      LP_CHECK(!strict, "state_dict: missing key '", k, "' (", shape_str(dst.shape()), ") for a ", type(),
               " model");
      return;
    }
    const Tensor& src = it->second;
    LP_CHECK(src.numel() == dst.numel() && (src.shape() == dst.shape() || dst.numel() == 1),
             "state_dict: '", k, "' has shape ", shape_str(src.shape()), ", the model expects ",
             shape_str(dst.shape()));
    Tensor s = src.shape() == dst.shape() ? src : reshape(src.detach(), dst.shape());
    if (s.device() != dst.device()) s = s.detach().to(dst.device());
    if (s.dtype() != dst.dtype()) s = s.detach().to(dst.dtype());  // e.g. float32 weights into a float64 model
    NoGradGuard ng;
    dst.copy_(s.detach());
  };
  for (auto& [k, v] : params_) load_into(k, v);
  for (auto& [k, v] : buffers_) load_into(k, v);
}

std::unique_ptr<Model> make_model(const nlohmann::json& cfg, Context& ctx) {
  LP_CHECK(cfg.is_object(), "model: expected an object with a \"type\" field");
  LP_CHECK(cfg.contains("type") && cfg["type"].is_string(), "model.type: expected \"binary\" or \"profile\"");
  std::string t = cfg["type"].get<std::string>();
  if (t == "binary") return std::make_unique<BinaryNet>(BinaryNetConfig::from_json(cfg), ctx);
  if (t == "profile") return std::make_unique<ProfileNet>(ProfileNetConfig::from_json(cfg), ctx);
  throw Error("model.type: expected \"binary\" or \"profile\", got \"" + t + "\"");
}

namespace model_cfg {

void check_keys(const nlohmann::json& j, const std::vector<std::string>& allowed) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == it.key();
    if (!ok) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw Error("model." + it.key() + ": unknown key (expected one of " + list + ")" +
                  did_you_mean(it.key(), allowed));
    }
  }
}

int64_t get_int(const nlohmann::json& j, const std::string& key, int64_t def, int64_t min_value) {
  if (!j.contains(key) || j[key].is_null()) return def;
  const auto& v = j[key];
  LP_CHECK(v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()),
           "model.", key, ": expected an integer, got ", v.dump());
  // In int64's range before the conversion (a cast of 1e30 is undefined, and a uint64 past 2^63 would wrap).
  LP_CHECK(v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t{INT64_MAX}
                                  : !v.is_number_float() || std::abs(v.get<double>()) < 9.2e18,
           "model.", key, ": ", v.dump(), " is out of range");
  int64_t r = v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
  LP_CHECK(r >= min_value, "model.", key, ": must be >= ", min_value, ", got ", r);
  return r;
}

double get_num(const nlohmann::json& j, const std::string& key, double def, double lo, double hi) {
  if (!j.contains(key) || j[key].is_null()) return def;
  LP_CHECK(j[key].is_number(), "model.", key, ": expected a number, got ", j[key].dump());
  double r = j[key].get<double>();
  LP_CHECK(r >= lo && r <= hi, "model.", key, ": must be in [", lo, ", ", hi, "], got ", r);
  return r;
}

bool get_bool(const nlohmann::json& j, const std::string& key, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  LP_CHECK(j[key].is_boolean(), "model.", key, ": expected true or false, got ", j[key].dump());
  return j[key].get<bool>();
}

std::string get_str(const nlohmann::json& j, const std::string& key, const std::string& def,
                    const std::vector<std::string>& choices) {
  if (!j.contains(key) || j[key].is_null()) return def;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "\"" : ", \"") + c + "\"";
  LP_CHECK(j[key].is_string(), "model.", key, ": expected one of ", list, ", got ", j[key].dump());
  std::string r = j[key].get<std::string>();
  for (const auto& c : choices)
    if (c == r) return r;
  throw Error("model." + key + ": expected one of " + list + ", got \"" + r + "\"");
}

std::vector<int64_t> get_ints(const nlohmann::json& j, const std::string& key, const std::vector<int64_t>& def,
                              int64_t min_value, size_t count) {
  if (!j.contains(key) || j[key].is_null()) return def;
  const auto& v = j[key];
  if (v.is_number_integer() && count > 0) {
    int64_t x = get_int(j, key, 0, min_value);
    return std::vector<int64_t>(count, x);
  }
  LP_CHECK(v.is_array() && !v.empty(), "model.", key, ": expected a non-empty list of integers, got ", v.dump());
  std::vector<int64_t> r;
  for (size_t i = 0; i < v.size(); ++i) {
    LP_CHECK(v[i].is_number_integer(), "model.", key, "[", i, "]: expected an integer, got ", v[i].dump());
    int64_t x = v[i].get<int64_t>();
    LP_CHECK(x >= min_value, "model.", key, "[", i, "]: must be >= ", min_value, ", got ", x);
    r.push_back(x);
  }
  return r;
}

DType get_dtype(const nlohmann::json& j) {
  return get_str(j, "dtype", "float32", {"float32", "float64"}) == "float64" ? DType::F64 : DType::F32;
}

Tensor uniform_init(Context& ctx, const Shape& shape, int64_t fan_in, DType dtype) {
  double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return Tensor::uniform(ctx, shape, -bound, bound, dtype);
}

}  // namespace model_cfg
}  // namespace lowpass
