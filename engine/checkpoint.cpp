// Training checkpoints in safetensors: model + optimiser tensors, metadata strings, and a CRC-32 over
// (tensor index, metadata without "checksum", data section) checked on load. Atomic write.
// Test: build/tests/lowpass_tests -ts=safetensors
#include "engine/checkpoint.h"

#include <zlib.h>

#include <cinttypes>
#include <cmath>
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

// The CRC of a parsed file against its metadata's "checksum" (the checkpoint's and the weights files' scheme).
void verify_checksum(const safetensors::File& f, const std::vector<uint8_t>& bytes, const std::string& path,
                     const char* what) {
  const auto cs = f.metadata.find("checksum");
  LP_CHECK(cs != f.metadata.end(), path, ": ", what, " metadata lacks 'checksum'");
  std::vector<IndexItem> index;
  for (const auto& [n, e] : f.tensors) index.push_back({n, safetensors::file_dtype_name(e.dtype), e.tensor.shape()});
  size_t off = safetensors::data_section_offset(bytes.data(), bytes.size(), path);
  std::string want = checksum(index, f.metadata, bytes.data() + off, bytes.size() - off);
  LP_CHECK(want == cs->second, path, ": checksum mismatch (file says ", cs->second, ", contents give ", want,
           "): the ", what, " is corrupt");
}

// The checksum a file of these entries and metadata gets (computed as the data streams, without the file).
std::string entries_checksum(const std::vector<safetensors::WriteEntry>& entries,
                             const std::map<std::string, std::string>& meta) {
  std::vector<IndexItem> index;
  for (const auto& e : entries) index.push_back({e.name, safetensors::file_dtype_name(e.dtype), e.tensor.shape()});
  std::string canon = canonical(index, meta);
  uLong crc = crc32_z(0, reinterpret_cast<const Bytef*>(canon.data()), canon.size());
  safetensors::visit_data(entries, [&](const uint8_t* p, size_t n) { crc = crc32_z(crc, p, n); });
  return crc_text(crc);
}

// A checkpoint from its parsed file and bytes: format, version and checksum checked.
Checkpoint from_file(const safetensors::File& f, const std::vector<uint8_t>& bytes, const std::string& path) {
  const auto& m = f.metadata;
  auto fmt = m.find("format");
  LP_CHECK(fmt != m.end() && fmt->second == kFormat, path, ": not a lowpass checkpoint (metadata 'format' is not '",
           kFormat, "')");
  auto ver = m.find("format_version");
  LP_CHECK(ver != m.end() && ver->second == kVersion, path, ": checkpoint format_version '",
           ver == m.end() ? "(missing)" : ver->second, "' is not supported (expected ", kVersion, ")");
  verify_checksum(f, bytes, path, "checkpoint");
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

Checkpoint load_impl(Context& ctx, const std::string& path) {
  const auto bytes = safetensors::read_file_bytes(path);
  return from_file(safetensors::parse(ctx, bytes.data(), bytes.size(), path), bytes, path);
}

// Weights are finite: a NaN or infinity (a corrupt file, or one saved from a diverged run) is refused here rather
// than turning every prediction into NaN.
void check_finite(const std::map<std::string, Tensor>& sd, const std::string& path) {
  for (const auto& [name, t] : sd) {
    if (t.dtype() != DType::F32 && t.dtype() != DType::F64) continue;
    const auto v = t.to_vector<double>();
    for (size_t i = 0; i < v.size(); ++i)
      LP_CHECK(std::isfinite(v[i]), path, ": tensor '", name, "' holds ", v[i], " at flat index ", i,
               " (weights must be finite: a corrupt file, or one saved from a diverged run)");
  }
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
  // The data section does not depend on the header: checksum it as it streams, then write the file.
  meta["checksum"] = entries_checksum(entries, meta);
  safetensors::save(path, entries, meta);
}

void save_weights_file(const std::string& path, const NamedTensors& state_dict,
                       std::map<std::string, std::string> meta) {
  const auto entries = safetensors::entries_from(state_dict);
  meta.erase("checksum");
  meta["checksum"] = entries_checksum(entries, meta);
  safetensors::save(path, entries, meta);
}

Checkpoint load_checkpoint(Context& ctx, const std::string& path) { return load_impl(ctx, path); }

std::map<std::string, Tensor> load_model_weights(Context& ctx, const std::string& path,
                                                 std::map<std::string, std::string>* metadata) {
  // The file is read once: a checkpoint's or a weights file's checksum needs its bytes (model files are small).
  const auto bytes = safetensors::read_file_bytes(path);
  const safetensors::File file = safetensors::parse(ctx, bytes.data(), bytes.size(), path);
  if (metadata) *metadata = file.metadata;
  std::map<std::string, Tensor> sd;
  if (auto f = file.metadata.find("format"); f != file.metadata.end() && f->second == kFormat) {
    for (auto& [name, t] : from_file(file, bytes, path).model) sd.emplace(name, t);
  } else {
    // lowpass's weights files carry the checkpoint's CRC; state_dicts from elsewhere (PyTorch) have none, and a
    // "checksum" of another scheme or in another tool's file is not ours to check.
    const auto fm = file.metadata.find("format"), cs = file.metadata.find("checksum");
    if (fm != file.metadata.end() && fm->second == "lowpass-model" && cs != file.metadata.end() &&
        cs->second.rfind("crc32:", 0) == 0) {
      try {
        verify_checksum(file, bytes, path, "weights file");
      } catch (const Error& e) {
        throw Error(std::string(e.what()) + ", or was rewritten by another tool that kept lowpass's metadata (then "
                    "remove its 'checksum' key, or save it again with lowpass, to load it)");
      }
    }
    sd = file.map();
  }
  check_finite(sd, path);
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
