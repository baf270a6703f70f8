// `lowpass predict --model DIR --npz X.npz --out DIR`: predictions.npz with the model's outputs in
// eval mode, streamed batch by batch: binary logits (N, T); profile logits (N, T, S, O) + log counts (N, T, S).
// Test: build-attr/tests/lowpass_tests -ts=attr (library parts); docs/attribution.md.
#include <filesystem>
#include <iostream>

#include "engine/npz.h"
#include "models/attr/model_dir.h"
#include "models/train/progress.h"
#include "tools/commands.h"

namespace lowpass::tools {

CommandRun add_predict_command(CLI::App& app) {
  struct Args {
    std::string model, npz, out, weights = "best";
    int64_t batch = 64;
    int threads = 0;
    bool quiet = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("predict", "Predict with a trained model on an npz of one-hot sequences");
  sub->add_option("--model", a->model, "Model directory (config.json + best/model.safetensors)")->required();
  sub->add_option("--npz", a->npz, "Input npz with x (N, 4, L) and, for profile models with controls, control")
      ->required();
  sub->add_option("--out", a->out, "Output directory (predictions.npz)")->required();
  sub->add_option("--weights", a->weights, "best | last | path to a .safetensors state_dict");
  sub->add_option("--batch", a->batch, "Sequences per forward pass");
  sub->add_option("--threads", a->threads, "CPU threads (0 = all)");
  sub->add_flag("--quiet", a->quiet, "No progress bar");
  return [a]() {
    LP_CHECK(a->batch >= 1, "--batch must be >= 1, got ", a->batch);
    Context ctx(a->threads, 0);
    auto model = attr::load_model_dir(a->model, ctx, a->weights);
    const DType dt = model->parameters().front().second.dtype();
    auto arrays = npy::load_npz(a->npz);
    LP_CHECK(arrays.count("x"), a->npz, ": no array 'x'");
    const npy::Array& xa = arrays.at("x");
    LP_CHECK(xa.shape.size() == 3 && xa.shape[1] == 4, a->npz, ": x must be (N, 4, L), got ", shape_str(xa.shape));
    const int64_t N = xa.shape[0];
    const bool has_ctrl = arrays.count("control") > 0;
    std::filesystem::create_directories(a->out);
    const std::string path = (std::filesystem::path(a->out) / "predictions.npz").string();
    // First batch fixes the output shapes; arrays are then streamed one after the other.
    std::vector<std::string> keys = model->type() == "binary" ? std::vector<std::string>{"logits"}
                                                              : std::vector<std::string>{"profile_logits", "log_counts"};
    npy::NpzWriter w(path);
    for (const auto& key : keys) {
      Progress bar("predict " + key, N, "seq", !a->quiet);
      for (int64_t s = 0; s < N; s += a->batch) {
        const int64_t n = std::min(a->batch, N - s);
        Tensor x = attr::array_rows(ctx, xa, s, n, dt, a->npz + ":x");
        Tensor c = has_ctrl ? attr::array_rows(ctx, arrays.at("control"), s, n, dt, a->npz + ":control") : Tensor();
        NoGradGuard ng;
        ModelOutput o = model->forward(x, c, false);
        Tensor y = key == "logits" ? o.logits : key == "profile_logits" ? o.profile_logits : o.log_counts;
        if (s == 0) {
          Shape shp = y.shape();
          shp[0] = N;
          w.begin(key, npy::NpyDType::F4, shp);
        }
        w.append(y);
        bar.update(n);
      }
      w.end();
      bar.finish();
    }
    w.close();
    std::cout << "wrote " << path << " (" << N << " sequences)\n";
    return 0;
  };
}

}  // namespace lowpass::tools
