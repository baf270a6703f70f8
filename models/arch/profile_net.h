// The paper's BPNet-style profile model (REFERENCE §3.1): dilated 'same' convs with the running-sum
// residual wiring, centre crop, profile head (k 75 conv, + control per task, grouped 1×1 conv) and
// counts head (GAP, dense, + raw control totals, grouped 1×1 conv). Legend: B batch, I input length,
// T tasks, S strands, O output length. Test: build/tests/lowpass_tests -ts=arch
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/arch/model.h"

namespace lowpass {

struct ProfileNetConfig {
  std::string controls = "matched";  // matched (B,T,S,O) | shared (B,1,S,O) | none
  int64_t input_length = 1346;
  int64_t output_length = 1000;      // derived from input_length when only one of the two is given
  int64_t input_depth = 4;
  int64_t num_tasks = 1;
  int64_t num_strands = 2;
  std::vector<int64_t> dil_conv_filter_sizes{21, 3, 3, 3, 3, 3, 3};
  std::vector<int64_t> dil_conv_dilations{1, 2, 4, 8, 16, 32, 64};
  std::vector<int64_t> dil_conv_depths{64, 64, 64, 64, 64, 64, 64};
  int64_t prof_conv_kernel_size = 75;
  DType dtype = DType::F32;

  // Parse the `model` section (type "profile"); throws Error naming "model.<field>", including a
  // geometry that cannot fit (odd kernels needed for 'same' padding; input_length − Σ d(k−1) − (k_prof−1)
  // must equal output_length and be ≥ 1).
  static ProfileNetConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  int64_t trunk_shrink() const;  // Σ d·(k−1): what valid padding would remove
  int64_t crop_length() const { return input_length - trunk_shrink(); }  // 1074 by default
};

class ProfileNet : public Model {
 public:
  ProfileNet(const ProfileNetConfig& cfg, Context& ctx);
  std::string type() const override { return "profile"; }
  // x (B, 4, I), control (B, T|1, S, O) raw counts (undefined for controls "none") ->
  // profile_logits (B, T, S, O), log_counts (B, T, S). `training` is unused (no batch norm/dropout).
  ModelOutput forward(const Tensor& x, const Tensor& control, bool training) override;
  int64_t input_length() const override { return cfg_.input_length; }
  int64_t output_length() const override { return cfg_.output_length; }
  int64_t tasks() const override { return cfg_.num_tasks; }
  nlohmann::json config() const override { return cfg_.to_json(); }
  const ProfileNetConfig& cfg() const { return cfg_; }

  std::unique_ptr<MutantForward> mutant_forward(const Tensor& x, const Tensor& control) override;

 private:
  friend class ProfileNetMutants;  // models/arch/mutant_forward.cpp
  ProfileNetConfig cfg_;
  std::vector<Tensor> dil_w_, dil_b_;
  Tensor prof_large_w_, prof_large_b_, prof_one_w_, prof_one_b_;
  Tensor count_dense_w_, count_dense_b_, count_one_w_, count_one_b_;
};

}  // namespace lowpass
