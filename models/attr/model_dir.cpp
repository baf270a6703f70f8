// Model directories and npz row slices. Test: build/tests/lowpass_tests -ts=attr
#include "models/attr/model_dir.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "kernels/cuda/runtime.h"
#include "models/data/json_file.h"

namespace lowpass::attr {

namespace fs = std::filesystem;

Device place_model(Model& model, const std::string& device) {
  const Device dev = parse_device(device, "--device");
  if (dev.is_cuda()) {
    LP_CHECK(cuda::available(), "--device ", device, ": no GPU is usable: ", cuda::unavailable_reason());
    model.to(dev);
  }
  return dev;
}

std::unique_ptr<Model> load_model_dir(const std::string& dir, Context& ctx, const std::string& weights) {
  fs::path d(dir);
  LP_CHECK(fs::is_directory(d), "--model: ", dir, " is not a directory");
  fs::path cfgp = d / "config.json";
  std::ifstream f(cfgp);
  LP_CHECK(f.good(), cfgp.string(), ": missing (a model directory holds config.json and model.safetensors)");
  const nlohmann::json cfg = parse_json_stream(f, cfgp.string());  // a repeated key is an error, not last-wins
  LP_CHECK(cfg.contains("model"), cfgp.string(), ": no \"model\" section");
  std::unique_ptr<Model> model;
  try {  // a hand-edited or damaged config.json: name the file, as a training config's messages do
    model = make_model(cfg["model"], ctx);
  } catch (const Error& e) {
    throw Error(cfgp.string() + ": " + e.what());
  }
  fs::path w;
  if (weights == "best") w = fs::exists(d / "best.safetensors") ? d / "best.safetensors" : d / "model.safetensors";
  else if (weights == "last") w = d / "model.safetensors";
  else w = weights;
  LP_CHECK(fs::exists(w), "--weights: ", w.string(), " does not exist");
  // a state_dict, or a training checkpoint (DIR/checkpoints/epoch_<n>.safetensors): its model tensors
  const std::map<std::string, Tensor> sd = load_model_weights(ctx, w.string());
  try {
    model->load_state_dict(sd);
  } catch (const Error& e) {
    throw Error(w.string() + ": " + e.what() + " (the weights do not fit the model of " + cfgp.string() + ")");
  }
  return model;
}

ModelSet load_model_dirs(const std::vector<std::string>& dirs, Context& ctx, const std::string& weights,
                         const std::string& device) {
  LP_CHECK(!dirs.empty(), "--model: no model directory given");
  LP_CHECK(dirs.size() == 1 || weights == "best" || weights == "last", "--weights ", weights,
           ": one weights file cannot serve ", dirs.size(), " --model directories (it would be averaged with "
           "itself); use best or last");
  for (size_t i = 0; i < dirs.size(); ++i)  // a model averaged with itself weighs twice: a typo, not an ensemble
    for (size_t j = 0; j < i; ++j) {
      std::error_code e1, e2;
      const fs::path a = fs::weakly_canonical(dirs[i], e1), b = fs::weakly_canonical(dirs[j], e2);
      LP_CHECK(e1 || e2 || a != b, "--model ", dirs[i], ": given twice (as ", dirs[j],
               "); an ensemble averages different models");
    }
  ModelSet set;
  set.dirs = dirs;
  for (const auto& dir : dirs) {
    set.models.push_back(load_model_dir(dir, ctx, weights));
    set.device = place_model(*set.models.back(), device);
    const Model &m0 = *set.models.front(), &m = *set.models.back();
    LP_CHECK(m.type() == m0.type() && m.dtype() == m0.dtype() && m.input_length() == m0.input_length() &&
                 m.output_length() == m0.output_length() && m.tasks() == m0.tasks() &&
                 model_strands(m) == model_strands(m0) &&
                 controls_mode(m) == controls_mode(m0),
             dir, ": a ", m.type(), " model of input length ", m.input_length(), " cannot be averaged with ",
             dirs.front(), " (", m0.type(), ", input length ", m0.input_length(),
             "): --model directories must share type, dtype, lengths, tasks, strands and controls");
  }
  return set;
}

std::vector<Model*> ModelSet::pointers() const {
  std::vector<Model*> r;
  for (const auto& m : models) r.push_back(m.get());
  return r;
}

std::vector<const Model*> ModelSet::const_models() const {
  std::vector<const Model*> r;
  for (const auto& m : models) r.push_back(m.get());
  return r;
}

ModelOutput forward_mean(ModelSet& set, const Tensor& x, const std::vector<Tensor>& controls, bool revcomp) {
  LP_CHECK(controls.size() == set.size(), "forward_mean: ", controls.size(), " control tensors for ", set.size(),
           " models");
  NoGradGuard ng;
  if (revcomp) {
    std::vector<Tensor> cr;
    for (const auto& c : controls) cr.push_back(c.defined() ? flip(c, {2, 3}) : c);
    const ModelOutput o = forward_mean(set, x, controls), r = forward_mean(set, flip(x, {1, 2}), cr);
    ModelOutput m;
    if (o.logits.defined()) m.logits = mul_scalar(add(o.logits, r.logits), 0.5);
    if (o.profile_logits.defined()) {
      m.profile_logits = mul_scalar(add(o.profile_logits, flip(r.profile_logits, {2, 3})), 0.5);
      m.log_counts = mul_scalar(add(o.log_counts, flip(r.log_counts, {2})), 0.5);
    }
    return m;
  }
  const Tensor xd = on_device(x, set.device);
  ModelOutput sum;
  const auto acc = [](Tensor& s, const Tensor& t) {
    if (t.defined()) s = s.defined() ? add(s, t) : t;
  };
  for (size_t k = 0; k < set.size(); ++k) {
    ModelOutput o = set.models[k]->forward(xd, on_device(controls[k], set.device), false);
    acc(sum.logits, o.logits), acc(sum.profile_logits, o.profile_logits), acc(sum.log_counts, o.log_counts);
  }
  const double inv = 1.0 / static_cast<double>(set.size());
  ModelOutput r;
  for (auto [s, d] : {std::pair{&sum.logits, &r.logits}, std::pair{&sum.profile_logits, &r.profile_logits},
                      std::pair{&sum.log_counts, &r.log_counts}})
    if (s->defined()) *d = on_device(set.size() > 1 ? mul_scalar(*s, inv) : *s, Device{});
  return r;
}

Tensor array_rows(Context& ctx, const npy::Array& a, int64_t start, int64_t n, DType dtype, const std::string& what,
                  bool finite, int64_t first_row) {
  LP_CHECK(!a.shape.empty() && start >= 0 && n >= 0 && start + n <= a.shape[0], what, ": rows [", start, ", ",
           start + n, ") outside ", shape_str(a.shape));
  Shape s = a.shape;
  s[0] = n;
  const int64_t per = shape_numel(s) / std::max<int64_t>(n, 1);
  const size_t es = npy::npy_size(a.dtype);
  const uint8_t* p = a.bytes.data() + static_cast<size_t>(start * per) * es;
  std::vector<double> v(static_cast<size_t>(n * per));
  for (size_t i = 0; i < v.size(); ++i) {
    const uint8_t* q = p + i * es;
    switch (a.dtype) {
      case npy::NpyDType::B1:
      case npy::NpyDType::U1: v[i] = *q; break;
      case npy::NpyDType::I1: v[i] = static_cast<int8_t>(*q); break;
      case npy::NpyDType::F4: { float x; std::memcpy(&x, q, 4); v[i] = x; break; }
      case npy::NpyDType::F8: { double x; std::memcpy(&x, q, 8); v[i] = x; break; }
      case npy::NpyDType::U2: { uint16_t x; std::memcpy(&x, q, 2); v[i] = x; break; }
      case npy::NpyDType::I2: { int16_t x; std::memcpy(&x, q, 2); v[i] = x; break; }
      case npy::NpyDType::U4: { uint32_t x; std::memcpy(&x, q, 4); v[i] = x; break; }
      case npy::NpyDType::I4: { int32_t x; std::memcpy(&x, q, 4); v[i] = x; break; }
      case npy::NpyDType::U8: { uint64_t x; std::memcpy(&x, q, 8); v[i] = static_cast<double>(x); break; }
      case npy::NpyDType::I8: { int64_t x; std::memcpy(&x, q, 8); v[i] = static_cast<double>(x); break; }
      default: throw Error(what + ": unsupported dtype " + npy::npy_descr(a.dtype));
    }
  }
  if (finite)
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i])) {
        const int64_t row = first_row + start + static_cast<int64_t>(i) / std::max<int64_t>(per, 1);
        throw Error(what + ": " + (std::isnan(v[i]) ? "NaN" : "an infinity") + " at " +
                    index_str(s, static_cast<int64_t>(i), first_row + start) + " (row " + std::to_string(row) +
                    "); model inputs must be finite");
      }
  Tensor t = Tensor::from_vector(ctx, s, v);
  return dtype == DType::F64 ? t : cast(t, dtype);
}

Tensor npz_rows(Context& ctx, npy::NpzRowReader& r, const std::string& key, int64_t start, int64_t n, DType dtype,
                const std::string& what, bool finite) {
  return array_rows(ctx, r.rows(key, start, n), 0, n, dtype, what, finite, start);
}

}  // namespace lowpass::attr
