// The model interface shared by the binary and profile architectures.
// Parameter/buffer names equal the reference PyTorch modules' state_dict keys.
// Legend: B batch, L input length, T tasks, S strands, O output (profile) length.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/ops.h"

namespace lowpass {

struct ModelOutput {
  Tensor logits;          // binary: (B, T) logits before the sigmoid
  Tensor profile_logits;  // profile: (B, T, S, O), softmax over O
  Tensor log_counts;      // profile: (B, T, S) predicted log counts
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class MutantForward;  // models/arch/mutant_forward.h

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string type() const = 0;  // "binary" or "profile"
  // x (B, 4, L); control (B, T|1, S, O) or undefined. training = batch-norm batch statistics.
  virtual ModelOutput forward(const Tensor& x, const Tensor& control, bool training) = 0;
  virtual int64_t input_length() const = 0;
  virtual int64_t output_length() const = 0;  // binary: T; profile: O
  virtual int64_t tasks() const = 0;

  // Trainable parameters (requires_grad leaves) and buffers (running stats), state_dict order.
  NamedTensors& parameters() { return params_; }
  NamedTensors& buffers() { return buffers_; }
  // All of state_dict (parameters then buffers interleaved as PyTorch orders them).
  NamedTensors state_dict() const;
  // Copies values in; strict = every key must be present and no unknown key (Error names it).
  void load_state_dict(const std::map<std::string, Tensor>& sd, bool strict = true);

  // Moves every parameter and buffer to `dev` in place (each tensor's storage is replaced, so handles the
  // layers hold follow). Gradients are dropped; checkpoints stay device-independent (saved via the CPU).
  void to(Device dev);
  Device device() const { return params_.empty() ? Device{} : params_.front().second.device(); }

  // The resolved `model` config section (every hyper-parameter, defaults filled in).
  virtual nlohmann::json config() const = 0;
  // True when forward's result depends on `training` through batch norm (binary model).
  virtual bool has_batch_norm() const { return false; }
  DType dtype() const { return params_.empty() ? DType::F32 : params_.front().second.dtype(); }
  // Single-base mutants of x (1, 4, L) (control (1, ...) or undefined) that recompute only the windows an edit
  // reaches (models/arch/mutant_forward.h; eval mode, no graph); nullptr where whole forward passes are as fast.
  virtual std::unique_ptr<MutantForward> mutant_forward(const Tensor& x, const Tensor& control);

 protected:
  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::string> order_;  // state_dict key order
  // Register a trainable parameter (made a requires_grad leaf) or a buffer, in state_dict order.
  Tensor add_parameter(const std::string& name, Tensor t);
  Tensor add_buffer(const std::string& name, Tensor t);
};

// Helpers for reading a `model` config section: each throws Error naming "model.<key>".
namespace model_cfg {
void check_keys(const nlohmann::json& j, const std::vector<std::string>& allowed);
int64_t get_int(const nlohmann::json& j, const std::string& key, int64_t def, int64_t min_value);
double get_num(const nlohmann::json& j, const std::string& key, double def, double lo, double hi);
bool get_bool(const nlohmann::json& j, const std::string& key, bool def);
std::string get_str(const nlohmann::json& j, const std::string& key, const std::string& def,
                    const std::vector<std::string>& choices);
// A list of ints (each >= min_value); a single int n is accepted as a list of `count` copies.
std::vector<int64_t> get_ints(const nlohmann::json& j, const std::string& key, const std::vector<int64_t>& def,
                              int64_t min_value, size_t count = 0);
DType get_dtype(const nlohmann::json& j);  // "dtype": "float32" (default) | "float64"
// PyTorch's default init for conv/linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
Tensor uniform_init(Context& ctx, const Shape& shape, int64_t fan_in, DType dtype);
}  // namespace model_cfg

// The control input a model takes: "matched" (B, T, S, O), "shared" (B, 1, S, O), or "none" (every binary model).
inline std::string controls_mode(const Model& m) {
  return m.type() == "profile" ? m.config().value("controls", std::string("none")) : "none";
}

// The strands S a model predicts: a profile model's num_strands; 1 for a binary model.
inline int64_t model_strands(const Model& m) {
  return m.type() == "profile" ? m.config().value("num_strands", int64_t{2}) : 1;
}

// Control tracks per example for a `controls` mode and T tasks: "matched" T, "shared" 1, "none" 0.
inline int64_t control_tracks(const std::string& mode, int64_t tasks) {
  return mode == "matched" ? tasks : mode == "shared" ? 1 : 0;
}

// The control input of a batch of n for this model: (n, T|1, S, O); an empty shape for a model without controls.
inline Shape control_shape(const Model& m, int64_t n) {
  const int64_t tracks = control_tracks(controls_mode(m), m.tasks());
  if (tracks == 0) return {};
  return {n, tracks, model_strands(m), m.output_length()};
}

// Build from the `model` section of a config (type + hyper-parameters); throws Error naming a bad field.
std::unique_ptr<Model> make_model(const nlohmann::json& model_cfg, Context& ctx);

}  // namespace lowpass
