// Training checkpoints in safetensors: model + optimiser tensors, metadata strings, and a CRC-32 over
// (tensor index, metadata without "checksum", data section) checked on load. Atomic write.
// Test: build/tests/lowpass_tests -ts=safetensors
#include "engine/checkpoint.h"

#include <zlib.h>

#include <cinttypes>
#include <cstdio>
#include <set>

namespace lowpass {
namespace {

const std::set<std::string> kReserved = {"format", "format_version", "epoch", "step", "rng_state",
                                         "sampler_state", "config_hash", "optimizer", "checksum"};
constexpr const char* kFormat = "lowpass.checkpoint";
constexpr const char* kVersion = "1";

struct IndexItem {
  std::string name;
  std::string dtype;
  Shape shape;
};

std::string canonical(const std::vector<IndexItem>& index, const std::map<std::string, std::string>& meta) {
  std::string canon;
  for (const auto& it : index) canon += it.name + '\0' + it.dtype + '\0' + shape_str(it.shape) + '\n';
  for (const auto& [k, v] : meta)
    if (k != "checksum") canon += k + '\0' + v + '\n';
  return canon;
}

std::string crc_text(uLong crc) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "crc32:%08lx", static_cast<unsigned long>(crc));
  return buf;
}

std::string checksum(const std::vector<IndexItem>& index, const std::map<std::string, std::string>& meta,
                     const uint8_t* data, size_t n) {
  std::string canon = canonical(index, meta);
  uLong crc = crc32_z(0, reinterpret_cast<const Bytef*>(canon.data()), canon.size());
  if (n > 0) crc = crc32_z(crc, data, n);
  return crc_text(crc);
}

int64_t parse_int(const std::map<std::string, std::string>& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  LP_CHECK(it != m.end(), path, ": checkpoint metadata lacks '", key, "'");
  try {
    size_t used = 0;
    long long v = std::stoll(it->second, &used);
    LP_CHECK(used == it->second.size() && v >= 0, path, ": checkpoint metadata '", key, "' = '", it->second,
             "' is not a non-negative integer");
    return v;
  } catch (const std::logic_error&) {
    throw Error(detail::concat(path, ": checkpoint metadata '", key, "' = '", it->second, "' is not an integer"));
  }
}

Checkpoint load_impl(Context& ctx, const std::string& path) {
  auto bytes = safetensors::read_file_bytes(path);
  safetensors::File f = safetensors::parse(ctx, bytes.data(), bytes.size(), path);
  const auto& m = f.metadata;
  auto fmt = m.find("format");
  LP_CHECK(fmt != m.end() && fmt->second == kFormat, path, ": not a lowpass checkpoint (metadata 'format' is not '",
           kFormat, "')");
  auto ver = m.find("format_version");
  LP_CHECK(ver != m.end() && ver->second == kVersion, path, ": checkpoint format_version '",
           ver == m.end() ? "(missing)" : ver->second, "' is not supported (expected ", kVersion, ")");
  auto cs = m.find("checksum");
  LP_CHECK(cs != m.end(), path, ": checkpoint metadata lacks 'checksum'");
  std::vector<IndexItem> index;
  for (const auto& [n, e] : f.tensors) index.push_back({n, safetensors::file_dtype_name(e.dtype), e.tensor.shape()});
  size_t off = safetensors::data_section_offset(bytes.data(), bytes.size(), path);
  std::string want = checksum(index, m, bytes.data() + off, bytes.size() - off);
  LP_CHECK(want == cs->second, path, ": checksum mismatch (file says ", cs->second, ", contents give ", want,
           "): the checkpoint is corrupt");
  Checkpoint ck;
  ck.epoch = parse_int(m, "epoch", path);
  ck.step = parse_int(m, "step", path);
  for (const char* k : {"rng_state", "sampler_state", "config_hash", "optimizer"}) {
    auto it = m.find(k);
    LP_CHECK(it != m.end(), path, ": checkpoint metadata lacks '", k, "'");
  }
  ck.rng_state = m.at("rng_state");
  ck.sampler_state = m.at("sampler_state");
  ck.config_hash = m.at("config_hash");
  ck.optimizer_type = m.at("optimizer");
  for (const auto& [k, v] : m)
    if (!kReserved.count(k)) ck.extra[k] = v;
  for (const auto& [n, e] : f.tensors) {
    if (n.rfind("model.", 0) == 0) ck.model.emplace_back(n.substr(6), e.tensor);
    else if (n.rfind("optim.", 0) == 0) ck.optimizer.emplace_back(n.substr(6), e.tensor);
    else throw Error(detail::concat(path, ": checkpoint tensor '", n, "' is neither 'model.*' nor 'optim.*'"));
  }
  return ck;
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : ck.extra) {
    LP_CHECK(!kReserved.count(k), "checkpoint ", path, ": extra metadata key '", k, "' is reserved");
    meta[k] = v;
  }
  meta["format"] = kFormat;
  meta["format_version"] = kVersion;
  meta["epoch"] = std::to_string(ck.epoch);
  meta["step"] = std::to_string(ck.step);
  meta["rng_state"] = ck.rng_state;
  meta["sampler_state"] = ck.sampler_state;
  meta["config_hash"] = ck.config_hash;
  meta["optimizer"] = ck.optimizer_type;
  auto entries = safetensors::entries_from(ck.model, "model.");
  for (const auto& [n, t] : ck.optimizer)
    entries.push_back({"optim." + n, t, safetensors::file_dtype_of(t.dtype())});
  std::vector<IndexItem> index;
  for (const auto& e : entries) index.push_back({e.name, safetensors::file_dtype_name(e.dtype), e.tensor.shape()});
  // The data section does not depend on the header: checksum it as it streams, then write the file.
  std::string canon = canonical(index, meta);
  uLong crc = crc32_z(0, reinterpret_cast<const Bytef*>(canon.data()), canon.size());
  safetensors::visit_data(entries, [&](const uint8_t* p, size_t n) { crc = crc32_z(crc, p, n); });
  meta["checksum"] = crc_text(crc);
  safetensors::save(path, entries, meta);
}

Checkpoint load_checkpoint(Context& ctx, const std::string& path) { return load_impl(ctx, path); }

std::map<std::string, Tensor> load_model_weights(Context& ctx, const std::string& path,
                                                 std::map<std::string, std::string>* metadata) {
  auto file = safetensors::load(ctx, path);
  if (metadata) *metadata = file.metadata;
  if (auto f = file.metadata.find("format"); f == file.metadata.end() || f->second != kFormat)
    return file.map();
  std::map<std::string, Tensor> sd;
  for (auto& [name, t] : load_checkpoint(ctx, path).model) sd.emplace(name, t);
  return sd;
}

bool verify_checkpoint(const std::string& path, std::string* why) {
  try {
    Context ctx(1, 0);
    load_impl(ctx, path);
    return true;
  } catch (const Error& e) {
    if (why) *why = e.what();
    return false;
  }
}

std::string fnv1a64_hex(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

}  // namespace lowpass
