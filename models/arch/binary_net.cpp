// The binary model (REFERENCE §2.1). State-dict keys follow the reference's ModuleLists, which hold
// [Conv1d, ReLU, BatchNorm1d, Dropout] per conv layer and [Linear, ReLU, BatchNorm1d, Dropout] per
// dense layer: conv_layers.{0,4,8}, BN conv_layers.{2,6,10}; fc_layers.{0,4}, BN fc_layers.{2,6}; out_map_fc.
// Test: build/tests/lowpass_tests -ts=arch
#include "models/arch/binary_net.h"

namespace lowpass {

using namespace model_cfg;

BinaryNetConfig BinaryNetConfig::from_json(const nlohmann::json& j) {
  check_keys(j, {"type", "input_length", "input_depth", "num_tasks", "tasks", "conv_filter_sizes", "conv_depths",
                 "max_pool_size", "max_pool_stride", "fc_sizes", "batch_norm", "conv_drop_rate", "fc_drop_rate",
                 "dtype"});
  BinaryNetConfig c;
  c.input_length = get_int(j, "input_length", c.input_length, 1);
  c.input_depth = get_int(j, "input_depth", c.input_depth, 1);
  LP_CHECK(!(j.contains("tasks") && j.contains("num_tasks")), "model.tasks: give either tasks or num_tasks");
  c.num_tasks = get_int(j, j.contains("tasks") ? "tasks" : "num_tasks", c.num_tasks, 1);
  c.conv_filter_sizes = get_ints(j, "conv_filter_sizes", c.conv_filter_sizes, 1);
  c.conv_depths = get_ints(j, "conv_depths", c.conv_depths, 1, c.conv_filter_sizes.size());
  LP_CHECK(c.conv_depths.size() == c.conv_filter_sizes.size(), "model.conv_depths: ", c.conv_depths.size(),
           " entries, but conv_filter_sizes has ", c.conv_filter_sizes.size());
  c.max_pool_size = get_int(j, "max_pool_size", c.max_pool_size, 1);
  c.max_pool_stride = get_int(j, "max_pool_stride", c.max_pool_size, 1);
  c.fc_sizes = get_ints(j, "fc_sizes", c.fc_sizes, 1);
  if (j.contains("fc_sizes") && j["fc_sizes"].is_array() && j["fc_sizes"].empty()) c.fc_sizes.clear();
  c.batch_norm = get_bool(j, "batch_norm", c.batch_norm);
  c.conv_drop_rate = get_num(j, "conv_drop_rate", c.conv_drop_rate, 0.0, 0.999);
  c.fc_drop_rate = get_num(j, "fc_drop_rate", c.fc_drop_rate, 0.0, 0.999);
  c.dtype = get_dtype(j);
  // Geometry: every valid conv and the pool must leave at least one position.
  int64_t len = c.input_length;
  for (size_t i = 0; i < c.conv_filter_sizes.size(); ++i) {
    LP_CHECK(len - (c.conv_filter_sizes[i] - 1) >= 1, "model.conv_filter_sizes[", i, "]: a valid conv of width ",
             c.conv_filter_sizes[i], " does not fit the ", len, " positions left of input_length ", c.input_length);
    len -= c.conv_filter_sizes[i] - 1;
  }
  LP_CHECK(len >= c.max_pool_size, "model.max_pool_size: ", c.max_pool_size, " exceeds the ", len,
           " positions left after the convolutions (input_length ", c.input_length, ")");
  return c;
}

nlohmann::json BinaryNetConfig::to_json() const {
  return {{"type", "binary"},
          {"input_length", input_length},
          {"input_depth", input_depth},
          {"num_tasks", num_tasks},
          {"conv_filter_sizes", conv_filter_sizes},
          {"conv_depths", conv_depths},
          {"max_pool_size", max_pool_size},
          {"max_pool_stride", max_pool_stride},
          {"fc_sizes", fc_sizes},
          {"batch_norm", batch_norm},
          {"conv_drop_rate", conv_drop_rate},
          {"fc_drop_rate", fc_drop_rate},
          {"dtype", dtype == DType::F64 ? "float64" : "float32"}};
}

std::vector<int64_t> BinaryNetConfig::conv_lengths() const {
  std::vector<int64_t> r;
  int64_t len = input_length;
  for (int64_t k : conv_filter_sizes) r.push_back(len -= k - 1);
  return r;
}

int64_t BinaryNetConfig::pooled_length() const {
  int64_t len = conv_filter_sizes.empty() ? input_length : conv_lengths().back();
  return (len - max_pool_size) / max_pool_stride + 1;
}

int64_t BinaryNetConfig::fc_input_size() const {
  return (conv_depths.empty() ? input_depth : conv_depths.back()) * pooled_length();
}

BinaryNet::BinaryNet(const BinaryNetConfig& cfg, Context& ctx) : cfg_(cfg), ctx_(&ctx) {
  const DType dt = cfg.dtype;
  auto bn = [&](Layer& l, const std::string& p, int64_t c) {
    l.bn_w = add_parameter(p + ".weight", Tensor::ones(ctx, {c}, dt));
    l.bn_b = add_parameter(p + ".bias", Tensor::zeros(ctx, {c}, dt));
    l.bn_mean = add_buffer(p + ".running_mean", Tensor::zeros(ctx, {c}, dt));
    l.bn_var = add_buffer(p + ".running_var", Tensor::ones(ctx, {c}, dt));
    l.bn_count = add_buffer(p + ".num_batches_tracked", Tensor::zeros(ctx, {}, DType::F64));
  };
  const int64_t per_layer = cfg.batch_norm ? 4 : 3;  // modules per block in the reference ModuleList
  int64_t cin = cfg.input_depth;
  for (size_t i = 0; i < cfg.conv_filter_sizes.size(); ++i) {
    Layer l;
    const int64_t k = cfg.conv_filter_sizes[i], cout = cfg.conv_depths[i], fan = cin * k;
    const std::string p = "conv_layers." + std::to_string(per_layer * static_cast<int64_t>(i));
    l.w = add_parameter(p + ".weight", uniform_init(ctx, {cout, cin, k}, fan, dt));
    l.b = add_parameter(p + ".bias", uniform_init(ctx, {cout}, fan, dt));
    if (cfg.batch_norm) bn(l, "conv_layers." + std::to_string(per_layer * static_cast<int64_t>(i) + 2), cout);
    conv_.push_back(l);
    cin = cout;
  }
  int64_t din = cfg.fc_input_size();
  for (size_t i = 0; i < cfg.fc_sizes.size(); ++i) {
    Layer l;
    const int64_t dout = cfg.fc_sizes[i];
    const std::string p = "fc_layers." + std::to_string(per_layer * static_cast<int64_t>(i));
    l.w = add_parameter(p + ".weight", uniform_init(ctx, {dout, din}, din, dt));
    l.b = add_parameter(p + ".bias", uniform_init(ctx, {dout}, din, dt));
    if (cfg.batch_norm) bn(l, "fc_layers." + std::to_string(per_layer * static_cast<int64_t>(i) + 2), dout);
    fc_.push_back(l);
    din = dout;
  }
  out_w_ = add_parameter("out_map_fc.weight", uniform_init(ctx, {cfg.num_tasks, din}, din, dt));
  out_b_ = add_parameter("out_map_fc.bias", uniform_init(ctx, {cfg.num_tasks}, din, dt));
}

// ReLU → BN → dropout after a conv or dense layer's affine map.
Tensor BinaryNet::block_tail(const Layer& l, const Tensor& h_in, bool training, double drop_rate) {
  Tensor h = relu(h_in);
  if (cfg_.batch_norm) {
    h = batch_norm(h, l.bn_w, l.bn_b, l.bn_mean, l.bn_var, training, 0.1, 1e-5);
    if (training) {  // num_batches_tracked (kept as a float64 scalar)
      if (l.bn_count.is_cpu()) {
        l.bn_count.data<double>()[0] += 1.0;
      } else {
        NoGradGuard ng;
        Tensor count = l.bn_count;  // a handle to the same buffer
        count.copy_(add_scalar(count, 1.0));
      }
    }
  }
  if (training && drop_rate > 0) h = dropout(h, drop_rate, *ctx_);
  return h;
}

ModelOutput BinaryNet::forward(const Tensor& x, const Tensor& control, bool training) {
  LP_CHECK(x.defined() && x.dim() == 3 && x.size(1) == cfg_.input_depth && x.size(2) == cfg_.input_length,
           "binary model: input must be (B, ", cfg_.input_depth, ", ", cfg_.input_length, "), got ",
           x.defined() ? shape_str(x.shape()) : std::string("nothing"));
  LP_CHECK(x.dtype() == dtype(), "binary model: input is ", dtype_name(x.dtype()), " but the model is ",
           dtype_name(dtype()));
  (void)control;  // the binary model takes no control track
  const int64_t B = x.size(0);
  Tensor h = x;  // (B, 4, L)
  for (const auto& l : conv_) h = block_tail(l, conv1d(h, l.w, l.b, Conv1dOpts::valid()), training, cfg_.conv_drop_rate);
  h = max_pool1d(h, cfg_.max_pool_size, cfg_.max_pool_stride);  // (B, C, P)
  h = reshape(h, {B, -1});                                       // (B, C·P), channel-major
  for (const auto& l : fc_) h = block_tail(l, linear(h, l.w, l.b), training, cfg_.fc_drop_rate);
  ModelOutput out;
  out.logits = linear(h, out_w_, out_b_);  // (B, T)
  return out;
}

}  // namespace lowpass
