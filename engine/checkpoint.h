// Training checkpoints: one safetensors file with the model's state_dict ("model.<name>"), the
// optimiser state ("optim.<name>.<field>") and __metadata__ (epoch, step, RNG, sampler, config hash,
// CRC-32 checksum over index + metadata + data, verified on load). Written atomically. Test: lowpass_tests -ts=safetensors
#pragma once
#include <map>
#include <string>

#include "engine/safetensors.h"

namespace lowpass {

struct Checkpoint {
  NamedTensors model;        // state_dict, names as the model's (num_batches_tracked stored as I64)
  NamedTensors optimizer;    // Optimizer::state()
  std::string optimizer_type;  // "adam" | "sgd" | ""
  int64_t epoch = 0;         // epochs completed
  int64_t step = 0;          // optimiser steps completed
  std::string rng_state;     // Rng::state()
  std::string sampler_state; // data-sampler position, opaque to the engine
  std::string config_hash;   // e.g. fnv1a64_hex of the resolved config text
  std::map<std::string, std::string> extra;  // further metadata; keys must not be reserved ones
};

// Reserved metadata keys: format, format_version, epoch, step, rng_state, sampler_state,
// config_hash, optimizer, checksum.
void save_checkpoint(const std::string& path, const Checkpoint& ck);
// Refuses (Error naming the file and the field) a file that fails safetensors validation, is not a
// lowpass checkpoint, has an unknown format_version, or whose checksum does not match.
Checkpoint load_checkpoint(Context& ctx, const std::string& path);
// A model's weights file (model.safetensors, best.safetensors, Model::save_weights): the state_dict with `meta` and
// a "checksum" over it computed as for checkpoints, so that load_model_weights can tell a corrupt file. Atomic.
void save_weights_file(const std::string& path, const NamedTensors& state_dict,
                       std::map<std::string, std::string> meta);
// A model's weights from a .safetensors file: a state_dict as it is (its "checksum" verified when it has one, as
// lowpass's weights files do; PyTorch's have none), or a training checkpoint's model tensors (after
// load_checkpoint's checks). Float weights must be finite (an Error names the tensor). For --weights
// (predict/attribute/evaluate) and --init-weights (train). `metadata`, when given, receives the file's __metadata__.
std::map<std::string, Tensor> load_model_weights(Context& ctx, const std::string& path,
                                                 std::map<std::string, std::string>* metadata = nullptr);
// True when `path` is an intact checkpoint; otherwise false with the reason in *why.
bool verify_checkpoint(const std::string& path, std::string* why = nullptr);

// 64-bit FNV-1a of a string as 16 hex digits (for config hashes).
std::string fnv1a64_hex(const std::string& s);

}  // namespace lowpass
