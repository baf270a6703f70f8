// The public C++ facade (include/lowpass/lowpass.h) over models/arch, models/attr, models/loss and
// engine/optim: arrays in and out as float32 views/owners, every internal Error re-thrown as api::Error.
// Test: build/tests/lowpass_tests -ts=api
#include "include/lowpass/lowpass.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/optim.h"
#include "engine/safetensors.h"
#include "kernels/cuda/runtime.h"
#include "models/arch/model.h"
#include "models/attr/attribute.h"
#include "models/attr/model_dir.h"
#include "models/data/json_file.h"
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
  } catch (const lowpass::OutOfMemory& e) {  // the engine's allocator (host memory)
    throw api::OutOfMemory(e.what());
  } catch (const std::exception& e) {
    throw api::Error(e.what());
  }
}

std::string shape_text(const std::vector<int64_t>& s) { return shape_str(Shape(s.begin(), s.end())); }

// The element count of a shape; refuses negative sizes and counts past int64 (which no buffer can hold).
int64_t numel_of(const std::vector<int64_t>& shape) {
  for (int64_t d : shape) LP_CHECK(d >= 0, "array shape ", shape_text(shape), " has a negative size ", d);
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d == 0) return 0;
    LP_CHECK(n <= INT64_MAX / d, "array shape ", shape_text(shape), " has more than 2^63 elements");
    n *= d;
  }
  return n;
}

// An input array `name` of call `what` has memory behind a non-empty shape.
void check_data(const Array& a, const char* what, const char* name) {
  LP_CHECK(a.data() != nullptr || a.size() == 0, what, ": ", name, " has no data (a null pointer with shape ",
           shape_text(a.shape()), ")");
}

// ... and finite values only: a NaN would come out as NaN outputs or losses; an error names where it went in.
// `a` may be rows [first_row, …) of the caller's array: the message gives the index in the whole array. predict and
// attribute check each batch's rows just before using them. `counts` (a profile model's y, control tracks): also
// >= 0, as the command line's npz and bigWig readers require; one pass either way.
void check_finite(const Array& a, const char* what, const char* name, int64_t first_row = 0, bool counts = false) {
  const int64_t n = a.size();
  const float* p = a.data();
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(p[i]) && (!counts || p[i] >= 0)) continue;
    const std::string at =
        std::string(what) + ": " + name + index_str(Shape(a.shape().begin(), a.shape().end()), i, first_row);
    if (!std::isfinite(p[i])) throw Error(at + " is " + std::to_string(p[i]) + ": inputs must be finite");
    throw Error(detail::concat(at, " is ", p[i], ": counts must be >= 0 (read counts, not a fold-change or "
                               "background-subtracted track)"));
  }
}
void check_counts(const Array& a, const char* what, const char* name, int64_t first_row = 0) {
  check_finite(a, what, name, first_row, /*counts=*/true);
}
void check_values(const Array& a, const char* what, const char* name) {
  check_data(a, what, name);
  check_finite(a, what, name);
}

// A tensor over the array's memory (no copy) in float32, cast to `dt` when the model needs float64. An array
// with no elements may have no memory (a null view): it gets an allocated empty tensor, as the engine's ops read
// every tensor's storage.
Tensor to_tensor(Context& ctx, const Array& a, DType dt) {
  if (a.data() == nullptr) return Tensor::zeros(ctx, Shape(a.shape().begin(), a.shape().end()), dt);
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
  check_data(x, what, "x");
}

void check_control(const lowpass::Model& m, const Array& x, const Array& c, const char* what) {
  const std::string controls = controls_mode(m);
  if (controls == "none") {
    LP_CHECK(c.empty(), what, ": this ", m.type(), " model takes no control (got ", shape_text(c.shape()), ")");
    return;
  }
  const Shape want = control_shape(m, x.shape()[0]);
  LP_CHECK(!c.empty(), what, ": this profile model has ", controls, " controls: pass control ", shape_str(want),
           " (N, ", controls == "shared" ? "1" : "T", ", S, O)");
  LP_CHECK(c.shape() == want, what, ": control must be ", shape_str(want),
           " (N, ", controls == "shared" ? "1" : "T", ", S, O) for ", controls, " controls, got ", shape_text(c.shape()));
  check_data(c, what, "control");
}

// status (N) values: 1 = the prior applies, 0 = it does not.
void check_status(const std::vector<int>& status, const char* what) {
  for (size_t i = 0; i < status.size(); ++i)
    LP_CHECK(status[i] == 0 || status[i] == 1, what, ": status[", i, "] is ", status[i], ": expected 0 or 1");
}

json parse_config_arg(const std::string& config) {
  auto first = config.find_first_not_of(" \t\r\n");
  json j;
  if (first != std::string::npos && config[first] == '{') {
    j = parse_json_text(config, "config");  // a repeated key is an error, as in config files
  } else {
    std::ifstream f(config);
    const std::string shown = config.size() > 80 ? config.substr(0, 80) + "..." : config;
    LP_CHECK(f.good() && !fs::is_directory(config), "config: '", shown,
             "' is neither JSON text (an object, starting with '{') nor a readable config.json path");
    j = parse_json_stream(f, config);
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
  LP_CHECK(c.l2_weight >= 0, "prior.l2_weight must be >= 0, got ", c.l2_weight);
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
  return guarded([&] {
    const int64_t n = numel_of(shape);
    if (static_cast<uint64_t>(n) > SIZE_MAX / sizeof(float)) throw api::OutOfMemory();
    auto buf = std::shared_ptr<float[]>(new float[static_cast<size_t>(std::max<int64_t>(n, 1))]());
    Array a;
    a.data_ = buf.get();
    a.owner_ = std::shared_ptr<void>(buf, buf.get());
    a.shape_ = std::move(shape);
    return a;
  });
}
Array Array::copy_of(const float* data, std::vector<int64_t> shape) {
  guarded([&] {
    LP_CHECK(data != nullptr || numel_of(shape) == 0, "Array::copy_of: data is null for shape ", shape_text(shape));
  });
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
  // Calls that only read the model (predict, attribute, save*, the accessors) share it; train_step, losses (which
  // runs the training forward and restores the batch-norm statistics and the RNG after), resume and set_threads
  // hold it alone. Member functions lock once and call no locking member: std::shared_mutex is not recursive.
  mutable std::shared_mutex mu;
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Impl& Model::self() const {
  if (!impl_) throw Error("lowpass::api::Model: this Model was moved from and holds no model");
  return *impl_;
}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& path, const LoadOptions& opt) {
  return guarded([&] {
    LP_CHECK(opt.threads >= 0, "load: LoadOptions.threads must be >= 0 (0 = all usable cores), got ", opt.threads);
    LP_CHECK(fs::exists(path), "load: ", path, " does not exist");
    const bool dir = fs::is_directory(path);
    LP_CHECK(dir || opt.weights == "best", "load: LoadOptions.weights ('", opt.weights,
             "') chooses a file in a model directory, but ", path, " is a file: load that file directly");
    // A directory's weights: best (best.safetensors, else model.safetensors), last (model.safetensors) or a path,
    // relative to the current directory; checked here so that the message names the option, not a CLI flag.
    fs::path w = path;
    if (dir) {
      const fs::path d(path);
      LP_CHECK(!opt.config.empty() || fs::exists(d / "config.json"), (d / "config.json").string(),
               ": missing (a model directory holds config.json and model.safetensors)");
      if (opt.weights == "best")
        w = fs::exists(d / "best.safetensors") ? d / "best.safetensors" : d / "model.safetensors";
      else if (opt.weights == "last") w = d / "model.safetensors";
      else w = opt.weights;
      LP_CHECK(fs::exists(w), "load: LoadOptions.weights '", opt.weights, "': ", w.string(),
               " does not exist (best | last | a .safetensors path, relative to the current directory)");
    }
    auto impl = std::make_unique<Impl>();
    impl->ctx = std::make_unique<Context>(opt.threads, 0);
    if (dir && opt.config.empty()) {
      impl->model = attr::load_model_dir(path, *impl->ctx, opt.weights);
      return Model(std::move(impl));
    }
    // A state_dict as it is, or a training checkpoint's model tensors after its format and checksum checks: the
    // same reading as a model directory's weights (load_model_dir) and the CLI's --weights. Without a config, the
    // file is read first, for the config save_weights/save_checkpoint store in it (else config.json beside it).
    std::string config = opt.config;
    std::optional<std::map<std::string, Tensor>> sd;
    if (config.empty()) {
      std::map<std::string, std::string> md;
      sd = load_model_weights(*impl->ctx, w.string(), &md);
      auto it = md.find("config");
      if (it == md.end()) it = md.find("model_config");
      const fs::path beside = w.parent_path() / "config.json";
      LP_CHECK(it != md.end() || fs::exists(beside), "load: ", w.string(), " is a bare state_dict: pass its config ",
               "(LoadOptions.config: a config.json path or JSON text); there is none in its metadata and no ",
               "config.json beside it");
      config = it != md.end() ? it->second : beside.string();
    }
    impl->model = make_model(parse_config_arg(config), *impl->ctx);
    if (!sd) sd = load_model_weights(*impl->ctx, w.string());
    try {
      impl->model->load_state_dict(*sd);
    } catch (const lowpass::Error& e) {
      throw Error(w.string() + ": " + e.what());
    }
    return Model(std::move(impl));
  });
}

Model Model::create(const std::string& model_config_json, uint64_t seed, int threads) {
  return guarded([&] {
    LP_CHECK(threads >= 0, "create: threads must be >= 0 (0 = all usable cores), got ", threads);
    auto impl = std::make_unique<Impl>();
    impl->ctx = std::make_unique<Context>(threads, seed);
    impl->model = make_model(parse_config_arg(model_config_json), *impl->ctx);
    return Model(std::move(impl));
  });
}

namespace {
// Why `dir` holds a training run that save() must not write into ("" when it does not): its best.safetensors
// would shadow the saved model.safetensors for load(dir), and its config.json carries more than the model.
std::string training_run_in(const fs::path& dir) {
  if (fs::exists(dir / "best.safetensors"))
    return "it holds best.safetensors, which Model::load(dir) would load instead of the saved weights";
  if (fs::exists(dir / "checkpoints")) return "it holds checkpoints/ (a training run's)";
  const fs::path cfg = dir / "config.json";
  if (!fs::exists(cfg)) return "";
  std::ifstream f(cfg);
  json j;
  try {
    j = json::parse(f);
  } catch (const std::exception&) {
    return "its config.json is not a JSON object that save() wrote";
  }
  if (!j.is_object()) return "its config.json is not a JSON object that save() wrote";
  for (const auto& [k, v] : j.items())
    if (k != "model")
      return "its config.json has a \"" + k + "\" section (a training run's config), which save() would lose";
  return "";
}
}  // namespace

namespace {
void write_weights(const lowpass::Model& m, const std::string& path) {
  save_weights_file(path, m.state_dict(),
                    {{"format", "lowpass-model"}, {"model_type", m.type()},
                     {"config", json{{"model", m.config()}}.dump()}});  // load(path) needs nothing else
}
}  // namespace

void Model::save(const std::string& dir) const {
  Impl& me = self();
  std::shared_lock lock(me.mu);
  guarded([&] {
    if (fs::exists(dir)) {
      LP_CHECK(fs::is_directory(dir), "save: ", dir, " exists and is not a directory");
      const std::string why = training_run_in(dir);
      LP_CHECK(why.empty(), "save: ", dir, " is a training run's directory: ", why,
               ". Save into a new directory, or write the weights alone with save_weights(<path>.safetensors)");
    }
    fs::create_directories(dir);
    write_weights(*me.model, (fs::path(dir) / "model.safetensors").string());
    const std::string text = json{{"model", me.model->config()}}.dump(2) + "\n";
    safetensors::write_file_atomic((fs::path(dir) / "config.json").string(), text);
  });
}

void Model::save_weights(const std::string& path) const {
  Impl& me = self();
  std::shared_lock lock(me.mu);
  guarded([&] { write_weights(*me.model, path); });
}

void Model::save_checkpoint(const std::string& path) const {
  Impl& me = self();
  std::shared_lock lock(me.mu);
  guarded([&] {
    Checkpoint ck;
    ck.model = me.model->state_dict();
    if (me.optim) ck.optimizer = me.optim->state(), ck.optimizer_type = me.optim->type();
    ck.step = me.steps;
    ck.rng_state = me.ctx->rng().state();
    ck.extra["model_config"] = me.model->config().dump();
    lowpass::save_checkpoint(path, ck);
  });
}

void Model::resume(const std::string& path) {
  Impl& me = self();
  std::unique_lock lock(me.mu);
  guarded([&] {
    Checkpoint ck = lowpass::load_checkpoint(*me.ctx, path);
    // Everything is built on the side first and swapped in at the end: a failed resume leaves the Model as it was.
    const std::string rng = me.ctx->rng().state();
    std::unique_ptr<lowpass::Model> model = make_model(me.model->config(), *me.ctx);
    me.ctx->rng().set_state(rng);  // the fresh model's initialisation must not move the generator
    try {
      model->load_state_dict(std::map<std::string, Tensor>(ck.model.begin(), ck.model.end()));
    } catch (const lowpass::Error& e) {
      throw lowpass::Error(path + ": its weights do not fit this model: " + e.what());
    }
    std::unique_ptr<Optimizer> optim;
    if (!ck.optimizer_type.empty()) {  // lr 1e-3 until the next train_step sets its own
      optim = make_optimizer(ck.optimizer_type, model->parameters(), 1e-3);
      optim->load_state(std::map<std::string, Tensor>(ck.optimizer.begin(), ck.optimizer.end()));
    }
    Rng restored = me.ctx->rng();
    if (!ck.rng_state.empty()) restored.set_state(ck.rng_state);
    me.model = std::move(model);
    me.optim = std::move(optim);
    me.steps = ck.step;
    me.ctx->rng() = restored;
  });
}

// The accessors read the model under the shared lock (a concurrent resume replaces it).
namespace {
auto read_shared(auto& me, auto f) {  // me: a Model::Impl
  std::shared_lock lock(me.mu);
  return f(*me.model);
}
}  // namespace
std::string Model::type() const { return read_shared(self(), [](const lowpass::Model& m) { return m.type(); }); }
std::string Model::dtype() const {
  return read_shared(self(), [](const lowpass::Model& m) { return dtype_name(m.dtype()); });
}
int64_t Model::input_length() const {
  return read_shared(self(), [](const lowpass::Model& m) { return m.input_length(); });
}
int64_t Model::output_length() const {
  return read_shared(self(), [](const lowpass::Model& m) { return m.output_length(); });
}
int64_t Model::tasks() const { return read_shared(self(), [](const lowpass::Model& m) { return m.tasks(); }); }
int64_t Model::strands() const { return read_shared(self(), [](const lowpass::Model& m) { return model_strands(m); }); }
bool Model::uses_control() const {
  return read_shared(self(), [](const lowpass::Model& m) { return controls_mode(m) != "none"; });
}
std::string Model::config_json() const {
  return read_shared(self(), [](const lowpass::Model& m) { return m.config().dump(); });
}
std::vector<std::string> Model::parameter_names() const {
  Impl& me = self();
  std::shared_lock lock(me.mu);
  std::vector<std::string> r;
  for (const auto& [k, t] : me.model->state_dict()) r.push_back(k);
  return r;
}
Array Model::parameter(const std::string& name) const {
  Impl& me = self();
  std::shared_lock lock(me.mu);
  return guarded([&] {
    for (const auto& [k, t] : me.model->state_dict())
      if (k == name) return from_tensor(t.clone());
    throw Error("parameter: no state_dict key '" + name + "' in this " + me.model->type() + " model");
  });
}
void Model::set_threads(int threads) {
  Impl& me = self();
  std::unique_lock lock(me.mu);
  guarded([&] {
    LP_CHECK(threads >= 0, "threads must be >= 0, got ", threads);
    me.ctx->set_threads(threads);
  });
}

Predictions Model::predict(const Array& x, const Array& control, int64_t batch) const {
  Impl& me = self();
  std::shared_lock lock(me.mu);
  return guarded([&] {
    lowpass::Model& m = *me.model;
    check_x(m, x, "predict");
    check_control(m, x, control, "predict");
    LP_CHECK(batch >= 1, "predict: batch must be >= 1, got ", batch);
    const int64_t N = x.shape()[0];
    const bool bin = m.type() == "binary";
    const Shape main_shape = bin ? Shape{N, m.tasks()} : Shape{N, m.tasks(), model_strands(m), m.output_length()};
    Predictions p;
    Array& main = bin ? p.logits : p.profile_logits;
    main = Array::zeros(std::vector<int64_t>(main_shape.begin(), main_shape.end()));
    if (!bin) p.log_counts = Array::zeros({N, m.tasks(), model_strands(m)});
    NoGradGuard ng;
    for (int64_t s = 0; s < N; s += batch) {
      const int64_t n = std::min(batch, N - s);
      check_finite(rows(x, s, n), "predict", "x", s);
      check_counts(rows(control, s, n), "predict", "control", s);
      Tensor xt = to_tensor(*me.ctx, rows(x, s, n), m.dtype());
      Tensor ct = control.empty() ? Tensor() : to_tensor(*me.ctx, rows(control, s, n), m.dtype());
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
  Impl& me = self();
  std::shared_lock lock(me.mu);
  return guarded([&] {
    lowpass::Model& m = *me.model;
    check_x(m, x, "attribute");
    check_control(m, x, control, "attribute");
    LP_CHECK(opt.batch >= 1, "attribute: batch must be >= 1, got ", opt.batch);
    static const char* const methods[] = {"grad", "gradxinput", "deepshap_ref", "deepshap", "ism", "ig"};
    LP_CHECK(std::find(std::begin(methods), std::end(methods), opt.method) != std::end(methods),
             "attribute: method '", opt.method, "' is not grad, gradxinput, deepshap_ref, deepshap, ism or ig");
    LP_CHECK(opt.refs == -1 || opt.refs >= 1, "attribute: refs must be >= 1 (or -1: the method's default), got ",
             opt.refs);
    LP_CHECK(opt.first_index >= 0, "attribute: first_index must be >= 0, got ", opt.first_index);
    attr::AttrOptions o;
    o.method = opt.method;
    if (opt.target.empty()) {
      o.target = attr::default_target(m);
    } else {
      try {
        o.target = attr::parse_target(opt.target);
      } catch (const lowpass::Error& e) {  // parse_target names the CLI's flag: name the option instead
        std::string msg = e.what();
        if (msg.rfind("--target: ", 0) == 0) msg = msg.substr(10);
        throw Error("attribute: target: " + msg);
      }
    }
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
      check_finite(rows(x, s, n), "attribute", "x", s);
      check_counts(rows(control, s, n), "attribute", "control", s);
      Tensor xt = to_tensor(*me.ctx, rows(x, s, n), m.dtype());
      Tensor ct = control.empty() ? Tensor() : to_tensor(*me.ctx, rows(control, s, n), m.dtype());
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
                 const Array& control, int64_t S, const char* what) {
  check_x(m, x, what);
  check_control(m, x, control, what);
  check_finite(x, what, "x");
  check_counts(control, what, "control");
  const int64_t N = x.shape()[0];
  LP_CHECK(N >= 1, what, ": the batch is empty");
  const Shape want = m.type() == "binary" ? Shape{N, m.tasks()} : Shape{N, m.tasks(), S, m.output_length()};
  LP_CHECK(Shape(y.shape().begin(), y.shape().end()) == want, what, ": y must be ", shape_str(want), " for this ",
           m.type(), " model, got ", shape_text(y.shape()));
  check_data(y, what, "y");  // the binary loss checks the labels' values (1, 0 or -1 = ignore); profile y are counts
  if (m.type() == "profile") check_counts(y, what, "y");
  else check_finite(y, what, "y");
  LP_CHECK(status.empty() || static_cast<int64_t>(status.size()) == N, what, ": status has ", status.size(),
           " entries for ", N, " examples");
  check_status(status, what);
  Batch b;
  b.x = to_tensor(ctx, x, m.dtype());
  b.y = to_tensor(ctx, y, m.dtype());
  if (!control.empty()) b.control = to_tensor(ctx, control, m.dtype());
  b.status = status;
  return b;
}
// The prior of a step, refused where the config refuses it (docs/config.md).
PriorConfig step_prior(const lowpass::Model& m, const TrainStepOptions& opt, const char* what) {
  PriorConfig pc = resolve_prior(m.type(), opt.prior, m.input_length());
  if (pc.type == "fourier") check_freq_limit(pc.freq_limit, m.input_length(), "prior.freq_limit");
  LP_CHECK(opt.counts_loss_weight >= 0, what, ": counts_loss_weight must be >= 0, got ", opt.counts_loss_weight);
  return pc;
}
StepResult values(const Losses& l) {
  StepResult r;
  r.task = l.task.item(), r.prior = l.prior.item(), r.total = l.total.item();
  return r;
}
}  // namespace

StepResult Model::train_step(const Array& x, const Array& y, const std::vector<int>& status,
                             const TrainStepOptions& opt, const Array& control) {
  Impl& me = self();
  std::unique_lock lock(me.mu);
  return guarded([&] {
    lowpass::Model& m = *me.model;
    Batch b = make_batch(*me.ctx, m, x, y, status, control, model_strands(m), "train_step");
    PriorConfig pc = step_prior(m, opt, "train_step");
    LP_CHECK(opt.lr > 0, "train_step: lr must be > 0, got ", opt.lr);
    if (!me.optim || me.optim->type() != opt.optimizer)
      me.optim = make_optimizer(opt.optimizer, m.parameters(), opt.lr);  // a new optimiser starts fresh
    else if (me.optim->lr() != opt.lr)
      me.optim->set_lr(opt.lr);
    EnableGradGuard eg(true);
    Losses l = compute_losses(m, b, pc, /*training=*/true, opt.counts_loss_weight);
    StepResult r = values(l);
    LP_CHECK(std::isfinite(r.total), "train_step: loss is not finite (task ", r.task, ", prior ", r.prior,
             "); lower lr or check the inputs");
    me.optim->zero_grad();
    backward(l.total);
    me.optim->step();
    me.optim->zero_grad();
    r.step = ++me.steps;
    return r;
  });
}

StepResult Model::losses(const Array& x, const Array& y, const std::vector<int>& status, const TrainStepOptions& opt,
                         const Array& control) const {
  Impl& me = self();
  std::unique_lock lock(me.mu);
  return guarded([&] {
    lowpass::Model& m = *me.model;
    Batch b = make_batch(*me.ctx, m, x, y, status, control, model_strands(m), "losses");
    PriorConfig pc = step_prior(m, opt, "losses");
    // The training forward updates running statistics and draws dropout masks from the Model's RNG: restore both,
    // so that losses() then train_step equals train_step alone.
    std::vector<Tensor> saved;
    for (auto& [k, t] : m.buffers()) saved.push_back(t.clone());
    const std::string rng = me.ctx->rng().state();
    NoGradGuard ng;
    Losses l = compute_losses(m, b, pc, /*training=*/true, opt.counts_loss_weight);
    size_t i = 0;
    for (auto& [k, t] : m.buffers()) t.copy_(saved[i++]);
    me.ctx->rng().set_state(rng);
    StepResult r = values(l);
    r.step = me.steps;
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
    check_status(status_in, "prior_loss");
    check_values(attr, "prior_loss", "attr");
    std::vector<int> status = status_in.empty() ? std::vector<int>(static_cast<size_t>(N), 1) : status_in;
    PriorConfig c = resolve_prior("binary", p, attr.shape()[2]);
    LP_CHECK(c.type != "none", "prior_loss: prior type is none");
    if (c.type == "fourier") check_freq_limit(c.freq_limit, attr.shape()[2], "prior_loss: freq_limit");
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
