// The paper's binary model (REFERENCE §2.1): [conv → ReLU → BN → dropout]×3, max-pool, flatten
// channel-major, [dense → ReLU → BN1d → dropout]×2, dense → T logits. Legend: B batch, L input, T tasks.
// Test: build/tests/lowpass_tests -ts=arch
#pragma once
#include <cstdint>
#include <vector>

#include "models/arch/model.h"

namespace lowpass {

struct BinaryNetConfig {
  int64_t input_length = 1000;
  int64_t input_depth = 4;
  int64_t num_tasks = 1;
  std::vector<int64_t> conv_filter_sizes{15, 15, 13};
  std::vector<int64_t> conv_depths{64, 64, 64};
  int64_t max_pool_size = 40;
  int64_t max_pool_stride = 40;
  std::vector<int64_t> fc_sizes{50, 15};
  bool batch_norm = true;
  double conv_drop_rate = 0.0;
  double fc_drop_rate = 0.0;
  DType dtype = DType::F32;

  // Parse the `model` section (type "binary"); unknown keys and bad values throw Error naming
  // "model.<field>". Checks that the geometry fits (every conv and the pool leave length ≥ 1).
  static BinaryNetConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;  // every field, resolved
  // Derived sizes: conv output lengths, pooled length and the first dense layer's input size.
  std::vector<int64_t> conv_lengths() const;
  int64_t pooled_length() const;
  int64_t fc_input_size() const;  // conv_depths.back() * pooled_length()
};

class BinaryNet : public Model {
 public:
  BinaryNet(const BinaryNetConfig& cfg, Context& ctx);
  std::string type() const override { return "binary"; }
  // x (B, 4, L) -> logits (B, T). training: batch-norm batch statistics (+ running-stat update) and dropout.
  ModelOutput forward(const Tensor& x, const Tensor& control, bool training) override;
  int64_t input_length() const override { return cfg_.input_length; }
  int64_t output_length() const override { return cfg_.num_tasks; }
  int64_t tasks() const override { return cfg_.num_tasks; }
  nlohmann::json config() const override { return cfg_.to_json(); }
  bool has_batch_norm() const override { return cfg_.batch_norm; }
  const BinaryNetConfig& cfg() const { return cfg_; }

  std::unique_ptr<MutantForward> mutant_forward(const Tensor& x, const Tensor& control) override;

 private:
  friend class BinaryNetMutants;  // models/arch/mutant_forward.cpp
  BinaryNetConfig cfg_;
  Context* ctx_;
  struct Layer {  // one conv or dense block; bn_* undefined without batch norm
    Tensor w, b, bn_w, bn_b, bn_mean, bn_var, bn_count;
  };
  std::vector<Layer> conv_, fc_;
  Tensor out_w_, out_b_;
  Tensor block_tail(const Layer& l, const Tensor& h, bool training, double drop_rate);
};

}  // namespace lowpass
