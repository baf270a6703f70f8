// The public C++ facade (include/lowpass/lowpass.h) over models/arch, models/attr, models/loss and
// engine/optim: arrays in and out as float32 views/owners, every internal Error re-thrown as api::Error.
// Test: build-api/tests/lowpass_tests -ts=api
#include "include/lowpass/lowpass.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/optim.h"
#include "engine/safetensors.h"
#include "kernels/cuda/runtime.h"
#include "models/arch/model.h"
#include "models/attr/attribute.h"
#include "models/attr/model_dir.h"
#include "models/loss/baseline_priors.h"
#include "models/loss/fourier_prior.h"
#include "models/loss/objective.h"
#include "models/train/config.h"

namespace lowpass::api {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Run f, turning every internal exception into api::Error (the only type the API throws).
template <typename F>
decltype(auto) guarded(F&& f) {
  try {
    return f();
  } catch (const api::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw api::OutOfMemory();
  } catch (const std::exception& e) {
    throw api::Error(e.what());
  }
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    LP_CHECK(d >= 0, "array shape has a negative size ", d);
    n *= d;
  }
  return n;
}

std::string shape_text(const std::vector<int64_t>& s) { return shape_str(Shape(s.begin(), s.end())); }

// A tensor over the array's memory (no copy) in float32, cast to `dt` when the model needs float64.
Tensor to_tensor(Context& ctx, const Array& a, DType dt) {
  auto impl = std::make_shared<TensorImpl>();
  auto st = std::make_shared<Storage>();
  st->data = const_cast<float*>(a.data());
  st->bytes = static_cast<size_t>(a.size()) * sizeof(float);
  st->device = Device{};
  st->deleter = nullptr;  // the caller (or the Array's owner) keeps the memory
  impl->storage = st;
  impl->shape = Shape(a.shape().begin(), a.shape().end());
  impl->dtype = DType::F32;
  impl->ctx = &ctx;
  impl->ctx_id = ctx.id();
  Tensor t(impl);
  if (dt != DType::F32) t = cast(t, dt);
  return t;
}

// The tensor's values as a float32 Array sharing its storage when it already is float32 on the host.
Array from_tensor(const Tensor& t0) {
  Tensor t = t0.detach();
  if (!t.is_cpu()) t = t.to(Device{});
  if (t.dtype() != DType::F32) {
    NoGradGuard ng;
    t = cast(t, DType::F32);
  }
  std::shared_ptr<void> owner = t.impl()->storage;
  return Array::adopt(owner, t.data<float>(), std::vector<int64_t>(t.shape().begin(), t.shape().end()));
}

// Rows [s, s + n) of an (N, ...) array as a view.
Array rows(const Array& a, int64_t s, int64_t n) {
  if (a.empty()) return {};
  std::vector<int64_t> sh = a.shape();
  const int64_t per = sh[0] > 0 ? a.size() / sh[0] : 0;
  sh[0] = n;
  return Array::view(a.data() + s * per, sh);
}

void check_x(const lowpass::Model& m, const Array& x, const char* what) {
  LP_CHECK(x.ndim() == 3 && x.shape()[1] == 4, what, ": x must be (N, 4, L) float32, got shape ",
           shape_text(x.shape()));
  LP_CHECK(x.shape()[2] == m.input_length(), what, ": x has length ", x.shape()[2], ", the model's input_length is ",
           m.input_length());
  LP_CHECK(x.data() != nullptr || x.size() == 0, what, ": x has no data");
}

void check_control(const lowpass::Model& m, const Array& x, const Array& c, const char* what) {
  const std::string controls = m.type() == "profile" ? m.config().value("controls", std::string("none")) : "none";
  if (controls == "none") {
    LP_CHECK(c.empty(), what, ": this ", m.type(), " model takes no control (got ", shape_text(c.shape()), ")");
    return;
  }
  LP_CHECK(!c.empty(), what, ": this profile model has ", controls, " controls: pass control (N, ",
           controls == "shared" ? "1" : "T", ", S, O)");
  LP_CHECK(c.ndim() == 4 && c.shape()[0] == x.shape()[0], what, ": control must be (N, T|1, S, O) with N = ",
           x.shape()[0], ", got ", shape_text(c.shape()));
}

json parse_config_arg(const std::string& config) {
  auto first = config.find_first_not_of(" \t\r\n");
  json j;
  if (first != std::string::npos && config[first] == '{') {
    try {
      j = json::parse(config);
    } catch (const std::exception& e) {
      throw Error(std::string("config: not valid JSON (") + e.what() + ")");
    }
  } else {
    std::ifstream f(config);
    LP_CHECK(f.good(), "config: cannot read ", config);
    try {
      j = json::parse(f);
    } catch (const std::exception& e) {
      throw Error(config + ": not valid JSON (" + e.what() + ")");
    }
  }
  LP_CHECK(j.is_object(), "config: expected a JSON object");
  return j.contains("model") ? j["model"] : j;
}

// `length`: the attributions' length (the model's input length), which the default freq_limit scales with.
PriorConfig resolve_prior(const std::string& model_type, const PriorOptions& p, int64_t length) {
  const json d = default_config(model_type)["prior"];
  PriorConfig c;
  c.type = p.type;
  c.weight = p.weight.value_or(d["weight"].get<double>());
  c.freq_limit = p.freq_limit.value_or(default_freq_limit(model_type, length));
  c.softness = p.softness;
  c.smooth_sigma = p.smooth_sigma;
  c.l2_weight = p.l2_weight;
  c.attribution_mode = p.attribution_mode;
  LP_CHECK(c.weight >= 0, "prior.weight must be >= 0, got ", c.weight);
  LP_CHECK(c.freq_limit >= 0, "prior.freq_limit must be >= 0, got ", c.freq_limit);
  LP_CHECK(!c.softness || *c.softness > 0, "prior.softness must be > 0 (or unset for a hard cut-off)");
  LP_CHECK(c.smooth_sigma >= 0, "prior.smooth_sigma must be >= 0, got ", c.smooth_sigma);
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
std::string version() { return LOWPASS_VERSION; }
std::string version_string() {
  return std::string("lowpass ") + LOWPASS_VERSION + (cuda::compiled() ? " (CUDA backend compiled)" : " (CPU only)");
}

int64_t Array::size() const { return shape_.empty() && data_ == nullptr ? 0 : guarded([&] { return numel_of(shape_); }); }

Array Array::view(const float* data, std::vector<int64_t> shape) {
  Array a;
  guarded([&] { return numel_of(shape); });
  a.data_ = const_cast<float*>(data);
  a.shape_ = std::move(shape);
  return a;
}
Array Array::zeros(std::vector<int64_t> shape) {
  const int64_t n = guarded([&] { return numel_of(shape); });
  auto buf = std::shared_ptr<float[]>(new float[static_cast<size_t>(std::max<int64_t>(n, 1))]());
  Array a;
  a.data_ = buf.get();
  a.owner_ = std::shared_ptr<void>(buf, buf.get());
  a.shape_ = std::move(shape);
  return a;
}
Array Array::copy_of(const float* data, std::vector<int64_t> shape) {
  Array a = zeros(std::move(shape));
  if (a.size() > 0) std::memcpy(a.data_, data, static_cast<size_t>(a.size()) * sizeof(float));
  return a;
}
Array Array::adopt(std::shared_ptr<void> owner, float* data, std::vector<int64_t> shape) {
  Array a = view(data, std::move(shape));
  a.owner_ = std::move(owner);
  return a;
}
std::vector<float> Array::to_vector() const { return std::vector<float>(data_, data_ + size()); }

// ---------------------------------------------------------------------------------------------------
struct Model::Impl {
  std::unique_ptr<Context> ctx;             // outlives every tensor below (declared first)
  std::unique_ptr<lowpass::Model> model;
  std::unique_ptr<Optimizer> optim;
  int64_t steps = 0;
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& path, const LoadOptions& opt) {
  return guarded([&] {
    auto impl = std::make_unique<Impl>();
    impl->ctx = std::make_unique<Context>(opt.threads, 0);
    if (fs::is_directory(path) && opt.config.empty()) {
      impl->model = attr::load_model_dir(path, *impl->ctx, opt.weights);
      return Model(std::move(impl));
    }
    LP_CHECK(fs::exists(path), "load: ", path, " does not exist");
    fs::path w = fs::is_directory(path) ? fs::path(path) / (opt.weights == "last" ? "model.safetensors" : "best.safetensors")
                                        : fs::path(path);
    if (fs::is_directory(path) && !fs::exists(w)) w = fs::path(path) / "model.safetensors";
    std::string config = opt.config;
    if (config.empty()) {
      fs::path beside = w.parent_path() / "config.json";
      LP_CHECK(fs::exists(beside), "load: ", w.string(),
               " is a bare state_dict: pass its config (config.json path or JSON text); none found beside it");
      config = beside.string();
    }
    impl->model = make_model(parse_config_arg(config), *impl->ctx);
    auto file = safetensors::load(*impl->ctx, w.string());
    std::map<std::string, Tensor> sd = file.map();
    bool checkpoint = !sd.empty();
    for (const auto& [k, t] : sd) checkpoint = checkpoint && (k.rfind("model.", 0) == 0 || k.rfind("optim.", 0) == 0);
    if (checkpoint) {  // a training checkpoint: the state_dict is under "model."
      std::map<std::string, Tensor> m;
      for (const auto& [k, t] : sd)
        if (k.rfind("model.", 0) == 0) m[k.substr(6)] = t;
      sd = std::move(m);
    }
    try {
      impl->model->load_state_dict(sd);
    } catch (const Error& e) {
      throw Error(w.string() + ": " + e.what());
    }
    return Model(std::move(impl));
  });
}

Model Model::create(const std::string& model_config_json, uint64_t seed, int threads) {
  return guarded([&] {
    auto impl = std::make_unique<Impl>();
    impl->ctx = std::make_unique<Context>(threads, seed);
    impl->model = make_model(parse_config_arg(model_config_json), *impl->ctx);
    return Model(std::move(impl));
  });
}

void Model::save(const std::string& dir) const {
  guarded([&] {
    fs::create_directories(dir);
    save_weights((fs::path(dir) / "model.safetensors").string());
    const std::string text = json{{"model", impl_->model->config()}}.dump(2) + "\n";
    safetensors::write_file_atomic((fs::path(dir) / "config.json").string(),
                                   std::vector<uint8_t>(text.begin(), text.end()));
  });
}

void Model::save_weights(const std::string& path) const {
  guarded([&] {
    safetensors::save(path, safetensors::entries_from(impl_->model->state_dict()),
                      {{"format", "lowpass-model"}, {"model_type", impl_->model->type()}});
  });
}

std::string Model::type() const { return impl_->model->type(); }
std::string Model::dtype() const { return dtype_name(impl_->model->dtype()); }
int64_t Model::input_length() const { return impl_->model->input_length(); }
int64_t Model::output_length() const { return impl_->model->output_length(); }
int64_t Model::tasks() const { return impl_->model->tasks(); }
int64_t Model::strands() const {
  return type() == "profile" ? impl_->model->config().value("num_strands", int64_t{2}) : 1;
}
bool Model::uses_control() const {
  return type() == "profile" && impl_->model->config().value("controls", std::string("none")) != "none";
}
std::string Model::config_json() const { return impl_->model->config().dump(); }
std::vector<std::string> Model::parameter_names() const {
  std::vector<std::string> r;
  for (const auto& [k, t] : impl_->model->state_dict()) r.push_back(k);
  return r;
}
Array Model::parameter(const std::string& name) const {
  return guarded([&] {
    for (const auto& [k, t] : impl_->model->state_dict())
      if (k == name) return from_tensor(t.clone());
    throw Error("parameter: no state_dict key '" + name + "' in this " + type() + " model");
  });
}
void Model::set_threads(int threads) {
  guarded([&] {
    LP_CHECK(threads >= 0, "threads must be >= 0, got ", threads);
    impl_->ctx->set_threads(threads);
  });
}

Predictions Model::predict(const Array& x, const Array& control, int64_t batch) const {
  return guarded([&] {
    lowpass::Model& m = *impl_->model;
    check_x(m, x, "predict");
    check_control(m, x, control, "predict");
    LP_CHECK(batch >= 1, "predict: batch must be >= 1, got ", batch);
    const int64_t N = x.shape()[0];
    const bool bin = m.type() == "binary";
    const Shape main_shape = bin ? Shape{N, m.tasks()} : Shape{N, m.tasks(), strands(), m.output_length()};
    Predictions p;
    Array& main = bin ? p.logits : p.profile_logits;
    main = Array::zeros(std::vector<int64_t>(main_shape.begin(), main_shape.end()));
    if (!bin) p.log_counts = Array::zeros({N, m.tasks(), strands()});
    NoGradGuard ng;
    for (int64_t s = 0; s < N; s += batch) {
      const int64_t n = std::min(batch, N - s);
      Tensor xt = to_tensor(*impl_->ctx, rows(x, s, n), m.dtype());
      Tensor ct = control.empty() ? Tensor() : to_tensor(*impl_->ctx, rows(control, s, n), m.dtype());
      ModelOutput o = m.forward(xt, ct, false);
      auto put = [&](Array& dst, const Tensor& src) {
        Array a = from_tensor(src);
        const int64_t per = N > 0 ? dst.size() / N : 0;
        LP_ASSERT(a.size() == per * n, "predict: output ", shape_text(a.shape()), " for ", n, " rows");
        std::memcpy(dst.mutable_data() + s * per, a.data(), static_cast<size_t>(a.size()) * sizeof(float));
      };
      if (bin) put(p.logits, o.logits);
      else put(p.profile_logits, o.profile_logits), put(p.log_counts, o.log_counts);
    }
    return p;
  });
}

Attributions Model::attribute(const Array& x, const AttributionOptions& opt, const Array& control) const {
  return guarded([&] {
    lowpass::Model& m = *impl_->model;
    check_x(m, x, "attribute");
    check_control(m, x, control, "attribute");
    LP_CHECK(opt.batch >= 1, "attribute: batch must be >= 1, got ", opt.batch);
    attr::AttrOptions o;
    o.method = opt.method;
    o.target = opt.target.empty() ? attr::default_target(m) : attr::parse_target(opt.target);
    o.refs = opt.refs;
    o.seed = opt.seed;
    o.ig_steps = opt.ig_steps;
    o.ig_tolerance = opt.ig_tolerance;
    o.ig_max_steps = opt.ig_max_steps;
    o.max_batch = opt.max_batch;
    const int64_t N = x.shape()[0], L = x.shape()[2];
    Attributions r;
    r.hypothetical = Array::zeros({N, 4, L});
    r.actual = Array::zeros({N, 4, L});
    for (int64_t s = 0; s < N; s += opt.batch) {
      const int64_t n = std::min(opt.batch, N - s);
      Tensor xt = to_tensor(*impl_->ctx, rows(x, s, n), m.dtype());
      Tensor ct = control.empty() ? Tensor() : to_tensor(*impl_->ctx, rows(control, s, n), m.dtype());
      attr::AttrResult a = attr::attribute(m, xt, ct, o, opt.first_index + s);
      Array h = from_tensor(a.hyp), act = from_tensor(a.actual);
      std::memcpy(r.hypothetical.mutable_data() + s * 4 * L, h.data(), static_cast<size_t>(h.size()) * sizeof(float));
      std::memcpy(r.actual.mutable_data() + s * 4 * L, act.data(), static_cast<size_t>(act.size()) * sizeof(float));
      r.delta.insert(r.delta.end(), a.delta.begin(), a.delta.end());
      r.delta_relative.insert(r.delta_relative.end(), a.delta_rel.begin(), a.delta_rel.end());
      r.ig_steps.insert(r.ig_steps.end(), a.steps.begin(), a.steps.end());
    }
    return r;
  });
}

namespace {
Batch make_batch(Context& ctx, const lowpass::Model& m, const Array& x, const Array& y, const std::vector<int>& status,
                 const Array& control, int64_t S) {
  check_x(m, x, "train_step");
  check_control(m, x, control, "train_step");
  const int64_t N = x.shape()[0];
  LP_CHECK(N >= 1, "train_step: the batch is empty");
  const Shape want = m.type() == "binary" ? Shape{N, m.tasks()} : Shape{N, m.tasks(), S, m.output_length()};
  LP_CHECK(Shape(y.shape().begin(), y.shape().end()) == want, "train_step: y must be ", shape_str(want), " for this ",
           m.type(), " model, got ", shape_text(y.shape()));
  LP_CHECK(status.empty() || static_cast<int64_t>(status.size()) == N, "train_step: status has ", status.size(),
           " entries for ", N, " examples");
  Batch b;
  b.x = to_tensor(ctx, x, m.dtype());
  b.y = to_tensor(ctx, y, m.dtype());
  if (!control.empty()) b.control = to_tensor(ctx, control, m.dtype());
  b.status = status;
  return b;
}
StepResult values(const Losses& l) {
  StepResult r;
  r.task = l.task.item(), r.prior = l.prior.item(), r.total = l.total.item();
  return r;
}
}  // namespace

StepResult Model::train_step(const Array& x, const Array& y, const std::vector<int>& status,
                             const TrainStepOptions& opt, const Array& control) {
  return guarded([&] {
    lowpass::Model& m = *impl_->model;
    Batch b = make_batch(*impl_->ctx, m, x, y, status, control, strands());
    PriorConfig pc = resolve_prior(m.type(), opt.prior, m.input_length());
    if (pc.type == "fourier") check_freq_limit(pc.freq_limit, m.input_length(), "prior.freq_limit");
    LP_CHECK(opt.lr > 0, "train_step: lr must be > 0, got ", opt.lr);
    if (!impl_->optim || impl_->optim->type() != opt.optimizer)
      impl_->optim = make_optimizer(opt.optimizer, m.parameters(), opt.lr);  // a new optimiser starts fresh
    else if (impl_->optim->lr() != opt.lr)
      impl_->optim->set_lr(opt.lr);
    EnableGradGuard eg(true);
    Losses l = compute_losses(m, b, pc, /*training=*/true, opt.counts_loss_weight);
    StepResult r = values(l);
    LP_CHECK(std::isfinite(r.total), "train_step: loss is not finite (task ", r.task, ", prior ", r.prior,
             "); lower lr or check the inputs");
    impl_->optim->zero_grad();
    backward(l.total);
    impl_->optim->step();
    impl_->optim->zero_grad();
    r.step = ++impl_->steps;
    return r;
  });
}

StepResult Model::losses(const Array& x, const Array& y, const std::vector<int>& status, const TrainStepOptions& opt,
                         const Array& control) const {
  return guarded([&] {
    lowpass::Model& m = *impl_->model;
    Batch b = make_batch(*impl_->ctx, m, x, y, status, control, strands());
    PriorConfig pc = resolve_prior(m.type(), opt.prior, m.input_length());
    if (pc.type == "fourier") check_freq_limit(pc.freq_limit, m.input_length(), "prior.freq_limit");
    std::vector<Tensor> saved;  // the training forward updates running statistics: restore them
    for (auto& [k, t] : m.buffers()) saved.push_back(t.clone());
    NoGradGuard ng;
    Losses l = compute_losses(m, b, pc, /*training=*/true, opt.counts_loss_weight);
    size_t i = 0;
    for (auto& [k, t] : m.buffers()) t.copy_(saved[i++]);
    StepResult r = values(l);
    r.step = impl_->steps;
    return r;
  });
}

// ---------------------------------------------------------------------------------------------------
double prior_loss(const Array& attr, const std::vector<int>& status_in, const PriorOptions& p, Array* grad) {
  return guarded([&] {
    LP_CHECK(attr.ndim() == 3 && attr.shape()[1] == 4, "prior_loss: attr must be (N, 4, L), got ",
             shape_text(attr.shape()));
    const int64_t N = attr.shape()[0];
    LP_CHECK(status_in.empty() || static_cast<int64_t>(status_in.size()) == N, "prior_loss: status has ",
             status_in.size(), " entries for ", N, " rows");
    std::vector<int> status = status_in.empty() ? std::vector<int>(static_cast<size_t>(N), 1) : status_in;
    PriorConfig c = resolve_prior("binary", p, attr.shape()[2]);
    LP_CHECK(c.type != "none", "prior_loss: prior type is none");
    Context ctx(1, 0);
    EnableGradGuard eg(grad != nullptr);
    Tensor a = to_tensor(ctx, attr, DType::F64);  // evaluated in float64
    if (grad) a = a.detach().set_requires_grad(true);
    Tensor loss = c.type == "fourier"      ? fourier_prior_loss(a, status, c.freq_limit, c.softness, c.smooth_sigma)
                  : c.type == "smoothness" ? smoothness_prior_loss(a, status)
                  : c.type == "sparsity"   ? sparsity_prior_loss(a, status)
                                           : throw Error("prior.type: expected fourier, smoothness or sparsity, got \"" +
                                                         c.type + "\"");
    if (grad) {
      auto g = lowpass::grad({loss}, {a}, {}, false, true);
      *grad = g[0].defined() ? from_tensor(g[0]) : Array::zeros(attr.shape());
    }
    return loss.item();
  });
}

double fourier_prior_loss(const Array& attr, const std::vector<int>& status, int64_t freq_limit,
                          std::optional<double> softness, double smooth_sigma, Array* grad) {
  PriorOptions p;
  p.type = "fourier";
  p.freq_limit = freq_limit;
  p.softness = softness;
  p.smooth_sigma = smooth_sigma;
  return prior_loss(attr, status, p, grad);
}

}  // namespace lowpass::api
