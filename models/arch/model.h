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

 protected:
  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::string> order_;  // state_dict key order
};

// Build from the `model` section of a config (type + hyper-parameters); throws Error naming a bad field.
std::unique_ptr<Model> make_model(const nlohmann::json& model_cfg, Context& ctx);

}  // namespace lowpass
