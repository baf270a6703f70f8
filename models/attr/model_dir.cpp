// Model directories and npz row slices. Test: build/tests/lowpass_tests -ts=attr
#include "models/attr/model_dir.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "engine/checkpoint.h"
#include "engine/safetensors.h"
#include "kernels/cuda/runtime.h"

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
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    throw Error(cfgp.string() + ": not valid JSON (" + e.what() + ")");
  }
  LP_CHECK(cfg.contains("model"), cfgp.string(), ": no \"model\" section");
  auto model = make_model(cfg["model"], ctx);
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

Tensor array_rows(Context& ctx, const npy::Array& a, int64_t start, int64_t n, DType dtype, const std::string& what,
                  bool finite) {
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
        const int64_t row = start + static_cast<int64_t>(i) / std::max<int64_t>(per, 1);
        throw Error(what + ": " + (std::isnan(v[i]) ? "NaN" : "an infinity") + " at " +
                    index_str(s, static_cast<int64_t>(i), start) + " (row " + std::to_string(row) +
                    "); model inputs must be finite");
      }
  Tensor t = Tensor::from_vector(ctx, s, v);
  return dtype == DType::F64 ? t : cast(t, dtype);
}

}  // namespace lowpass::attr
