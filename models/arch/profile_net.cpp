// The profile model (REFERENCE §3.1). Keys: dil_convs.{i}, prof_large_conv, prof_one_conv, count_dense,
// count_one_conv (weight, bias). Layout note: the reference returns profiles as B×T×O×S; lowpass keeps
// (B, T, S, O), which is the reference's internal layout before its final transpose.
// Test: build/tests/lowpass_tests -ts=arch
#include "models/arch/profile_net.h"

namespace lowpass {

using namespace model_cfg;

ProfileNetConfig ProfileNetConfig::from_json(const nlohmann::json& j) {
  check_keys(j, {"type", "controls", "input_length", "output_length", "profile_length", "input_depth", "num_tasks",
                 "tasks", "num_strands", "strands", "dil_conv_filter_sizes", "dil_conv_dilations", "dil_conv_depths",
                 "prof_conv_kernel_size", "dtype"});
  ProfileNetConfig c;
  c.controls = get_str(j, "controls", c.controls, {"matched", "shared", "none"});
  LP_CHECK(!(j.contains("tasks") && j.contains("num_tasks")), "model.tasks: give either tasks or num_tasks");
  LP_CHECK(!(j.contains("strands") && j.contains("num_strands")), "model.strands: give either strands or num_strands");
  LP_CHECK(!(j.contains("profile_length") && j.contains("output_length")),
           "model.profile_length: give either profile_length or output_length");
  c.num_tasks = get_int(j, j.contains("tasks") ? "tasks" : "num_tasks", c.num_tasks, 1);
  c.num_strands = get_int(j, j.contains("strands") ? "strands" : "num_strands", c.num_strands, 1);
  c.input_depth = get_int(j, "input_depth", c.input_depth, 1);
  c.dil_conv_filter_sizes = get_ints(j, "dil_conv_filter_sizes", c.dil_conv_filter_sizes, 1);
  const size_t n = c.dil_conv_filter_sizes.size();
  std::vector<int64_t> def_dil;
  for (size_t i = 0; i < n; ++i) def_dil.push_back(int64_t{1} << std::min<size_t>(i, 40));
  c.dil_conv_dilations = get_ints(j, "dil_conv_dilations", def_dil, 1, n);
  c.dil_conv_depths = get_ints(j, "dil_conv_depths", std::vector<int64_t>(n, 64), 1, n);
  LP_CHECK(c.dil_conv_dilations.size() == n, "model.dil_conv_dilations: ", c.dil_conv_dilations.size(),
           " entries, but dil_conv_filter_sizes has ", n);
  LP_CHECK(c.dil_conv_depths.size() == n, "model.dil_conv_depths: ", c.dil_conv_depths.size(),
           " entries, but dil_conv_filter_sizes has ", n);
  for (size_t i = 1; i + 1 < n; ++i)
    LP_CHECK(c.dil_conv_depths[i] == c.dil_conv_depths[0], "model.dil_conv_depths[", i, "]: ", c.dil_conv_depths[i],
             " differs from dil_conv_depths[0] = ", c.dil_conv_depths[0],
             "; the running sum of the trunk needs equal depths (all but the last layer)");
  for (size_t i = 0; i < n; ++i)
    LP_CHECK(c.dil_conv_filter_sizes[i] % 2 == 1, "model.dil_conv_filter_sizes[", i, "]: ",
             c.dil_conv_filter_sizes[i], " is even; 'same' padding d·(k−1)/2 needs odd kernels");
  c.prof_conv_kernel_size = get_int(j, "prof_conv_kernel_size", c.prof_conv_kernel_size, 1);
  c.dtype = get_dtype(j);
  const char* out_key = j.contains("profile_length") ? "profile_length" : "output_length";
  const bool has_in = j.contains("input_length") && !j["input_length"].is_null();
  const bool has_out = j.contains(out_key) && !j[out_key].is_null();
  const int64_t shrink = c.trunk_shrink() + c.prof_conv_kernel_size - 1;
  if (has_in) c.input_length = get_int(j, "input_length", c.input_length, 1);
  if (has_out) c.output_length = get_int(j, out_key, c.output_length, 1);
  if (has_in && !has_out) c.output_length = c.input_length - shrink;
  if (has_out && !has_in) c.input_length = c.output_length + shrink;
  if (!has_in && !has_out && c.input_length - shrink != c.output_length) c.output_length = c.input_length - shrink;
  LP_CHECK(c.input_length - c.trunk_shrink() >= c.prof_conv_kernel_size,
           "model.input_length: ", c.input_length, " is too short: the dilated convs take ", c.trunk_shrink(),
           " positions (Σ dilation·(kernel−1)) and the profile conv needs ", c.prof_conv_kernel_size, " more");
  LP_CHECK(c.input_length - shrink == c.output_length, "model.", out_key, ": ", c.output_length,
           " does not fit input_length ", c.input_length, ": the dilated convs crop to ", c.crop_length(),
           " and the profile conv (k ", c.prof_conv_kernel_size, ") leaves ", c.input_length - shrink,
           " (input_length must be output_length + ", shrink, ")");
  return c;
}

nlohmann::json ProfileNetConfig::to_json() const {
  return {{"type", "profile"},
          {"controls", controls},
          {"input_length", input_length},
          {"output_length", output_length},
          {"input_depth", input_depth},
          {"num_tasks", num_tasks},
          {"num_strands", num_strands},
          {"dil_conv_filter_sizes", dil_conv_filter_sizes},
          {"dil_conv_dilations", dil_conv_dilations},
          {"dil_conv_depths", dil_conv_depths},
          {"prof_conv_kernel_size", prof_conv_kernel_size},
          {"dtype", dtype == DType::F64 ? "float64" : "float32"}};
}

int64_t ProfileNetConfig::trunk_shrink() const {
  int64_t s = 0;
  for (size_t i = 0; i < dil_conv_filter_sizes.size(); ++i) s += dil_conv_dilations[i] * (dil_conv_filter_sizes[i] - 1);
  return s;
}

ProfileNet::ProfileNet(const ProfileNetConfig& cfg, Context& ctx) : cfg_(cfg) {
  const DType dt = cfg.dtype;
  const int64_t T = cfg.num_tasks, TS = cfg.num_tasks * cfg.num_strands;
  int64_t cin = cfg.input_depth;
  for (size_t i = 0; i < cfg.dil_conv_filter_sizes.size(); ++i) {
    const int64_t k = cfg.dil_conv_filter_sizes[i], cout = cfg.dil_conv_depths[i];
    const std::string p = "dil_convs." + std::to_string(i);
    dil_w_.push_back(add_parameter(p + ".weight", uniform_init(ctx, {cout, cin, k}, cin * k, dt)));
    dil_b_.push_back(add_parameter(p + ".bias", uniform_init(ctx, {cout}, cin * k, dt)));
    cin = cout;
  }
  const int64_t kp = cfg.prof_conv_kernel_size;
  prof_large_w_ = add_parameter("prof_large_conv.weight", uniform_init(ctx, {TS, cin, kp}, cin * kp, dt));
  prof_large_b_ = add_parameter("prof_large_conv.bias", uniform_init(ctx, {TS}, cin * kp, dt));
  const int64_t per_group_in = (cfg.controls == "none" ? 1 : 2) * cfg.num_strands;  // (T·2S or T·S) / T
  prof_one_w_ = add_parameter("prof_one_conv.weight", uniform_init(ctx, {TS, per_group_in, 1}, per_group_in, dt));
  prof_one_b_ = add_parameter("prof_one_conv.bias", uniform_init(ctx, {TS}, per_group_in, dt));
  count_dense_w_ = add_parameter("count_dense.weight", uniform_init(ctx, {TS, cin}, cin, dt));
  count_dense_b_ = add_parameter("count_dense.bias", uniform_init(ctx, {TS}, cin, dt));
  count_one_w_ = add_parameter("count_one_conv.weight", uniform_init(ctx, {TS, per_group_in, 1}, per_group_in, dt));
  count_one_b_ = add_parameter("count_one_conv.bias", uniform_init(ctx, {TS}, per_group_in, dt));
  (void)T;
}

ModelOutput ProfileNet::forward(const Tensor& x, const Tensor& control, bool training) {
  (void)training;
  const int64_t T = cfg_.num_tasks, S = cfg_.num_strands, O = cfg_.output_length;
  LP_CHECK(x.defined() && x.dim() == 3 && x.size(1) == cfg_.input_depth && x.size(2) == cfg_.input_length,
           "profile model: input must be (B, ", cfg_.input_depth, ", ", cfg_.input_length, "), got ",
           x.defined() ? shape_str(x.shape()) : std::string("nothing"));
  LP_CHECK(x.dtype() == dtype(), "profile model: input is ", dtype_name(x.dtype()), " but the model is ",
           dtype_name(dtype()));
  const int64_t B = x.size(0);
  Tensor ctrl;  // (B, T, S, O)
  const Shape want = control_shape(*this, B);
  if (want.empty()) {
    LP_CHECK(!control.defined(), "profile model: a control track was given, but model.controls is \"none\"");
  } else {
    LP_CHECK(control.defined(), "profile model: model.controls is \"", cfg_.controls, "\" but no control track was given");
    LP_CHECK(control.shape() == want, "profile model: control must be ", shape_str(want), " for controls \"",
             cfg_.controls, "\", got ", shape_str(control.shape()));
    ctrl = control.dtype() == dtype() ? control.detach() : control.detach().to(dtype());
    if (want[1] != T) ctrl = broadcast_to(ctrl, {B, T, S, O});  // shared control replicated per task
  }
  // 1. Dilated trunk: layer i ≥ 1 sees the running sum of all earlier layers' outputs; the last is
  //    not added (its output alone is the trunk output).
  Tensor out, total;
  const size_t n = dil_w_.size();
  for (size_t i = 0; i < n; ++i) {
    const int64_t k = cfg_.dil_conv_filter_sizes[i], d = cfg_.dil_conv_dilations[i];
    // relu(conv) + the running sum, as one op (fused when nothing is recorded: inference)
    const Tensor& in = i == 0 ? x : total;
    if (i + 1 != n) total = conv1d_relu(in, dil_w_[i], dil_b_[i], Conv1dOpts::same(k, d), total);  // (B, C, I)
    else out = conv1d_relu(in, dil_w_[i], dil_b_[i], Conv1dOpts::same(k, d));
  }
  // 2. Crop to the length valid padding would give.
  Tensor cut = center_crop(out, 2, cfg_.crop_length());  // (B, C, I − Σd(k−1))
  // A. Profile head.
  Tensor prof = reshape(conv1d(cut, prof_large_w_, prof_large_b_, Conv1dOpts::valid()), {B, T, S, O});
  if (ctrl.defined()) prof = concat({prof, ctrl}, 2);  // (B, T, 2S, O): [pred strands, control strands]
  prof = conv1d(reshape(prof, {B, -1, O}), prof_one_w_, prof_one_b_, Conv1dOpts{1, 0, 0, T});  // (B, T·S, O)
  // B. Counts head.
  Tensor counts = reshape(linear(global_avg_pool1d(cut), count_dense_w_, count_dense_b_), {B, T, S});
  if (ctrl.defined()) counts = concat({counts, sum(ctrl, {3})}, 2);  // raw control totals (§8.5)
  counts = conv1d(reshape(counts, {B, -1, 1}), count_one_w_, count_one_b_, Conv1dOpts{1, 0, 0, T});  // (B, T·S, 1)
  ModelOutput r;
  r.profile_logits = reshape(prof, {B, T, S, O});
  r.log_counts = reshape(counts, {B, T, S});
  return r;
}

}  // namespace lowpass
