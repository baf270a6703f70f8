// `lowpass attribute --model DIR --npz X.npz --method grad|gradxinput|deepshap_ref|deepshap|ism|ig --out DIR`:
// ohe.npz and attr.npz (N, 4, L) in the layout modisco-lite reads (hypothetical scores), streamed in
// batches; deepshap/ig also write convergence.json (per-example summation-to-delta error).
// Test: build-attr/tests/lowpass_tests -ts=attr (library parts); docs/attribution.md.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "engine/npz.h"
#include "models/attr/attribute.h"
#include "models/attr/model_dir.h"
#include "models/train/progress.h"
#include "tools/commands.h"

namespace lowpass::tools {

CommandRun add_attribute_command(CLI::App& app) {
  struct Args {
    std::string model, npz, out, method = "deepshap", target, weights = "best";
    int64_t refs = -1, steps = 50, batch = 16, max_batch = 64;
    uint64_t seed = 20200219;
    int threads = 0;
    bool quiet = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("attribute", "Attribution scores (hypothetical, N×4×L) for modisco-lite");
  sub->add_option("--model", a->model, "Model directory")->required();
  sub->add_option("--npz", a->npz, "Input npz with x (N, 4, L) (and control for profile models with controls)")
      ->required();
  sub->add_option("--out", a->out, "Output directory (ohe.npz, attr.npz, convergence.json)")->required();
  sub->add_option("--method", a->method, "grad | gradxinput | deepshap_ref | deepshap | ism | ig")
      ->check(CLI::IsMember({"grad", "gradxinput", "deepshap_ref", "deepshap", "ism", "ig"}));
  sub->add_option("--target", a->target,
                  "logits[:t] | profile[:t] | profile_raw[:t] | counts[:t] (default: logits or profile)");
  sub->add_option("--refs", a->refs, "Dinucleotide-shuffled references (default 10 deepshap_ref, 20 deepshap)");
  sub->add_option("--seed", a->seed, "Seed of the shuffles (example i uses seed + i)");
  sub->add_option("--ig-steps", a->steps, "Integrated-gradient steps");
  sub->add_option("--batch", a->batch, "Sequences attributed per chunk (memory bound)");
  sub->add_option("--max-batch", a->max_batch, "Sequences per forward pass inside a chunk");
  sub->add_option("--weights", a->weights, "best | last | path to a .safetensors state_dict");
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
    const int64_t N = xa.shape[0], L = xa.shape[2];
    const bool has_ctrl = arrays.count("control") > 0;
    attr::AttrOptions o;
    o.method = a->method;
    o.target = a->target.empty() ? attr::default_target(*model) : attr::parse_target(a->target);
    o.refs = a->refs;
    o.seed = a->seed;
    o.ig_steps = a->steps;
    o.max_batch = a->max_batch;
    namespace fs = std::filesystem;
    fs::create_directories(a->out);
    // ohe.npz: the input as float32 (N, 4, L).
    {
      npy::NpzWriter w((fs::path(a->out) / "ohe.npz").string());
      w.begin("arr_0", npy::NpyDType::F4, {N, 4, L});
      for (int64_t s = 0; s < N; s += 4096) w.append(attr::array_rows(ctx, xa, s, std::min<int64_t>(4096, N - s), DType::F32, "x"));
      w.end();
      w.close();
    }
    npy::NpzWriter w((fs::path(a->out) / "attr.npz").string());
    w.begin("arr_0", npy::NpyDType::F4, {N, 4, L});
    nlohmann::json conv = nlohmann::json::array();
    double worst = 0;
    Progress bar("attribute " + a->method, N, "seq", !a->quiet);
    for (int64_t s = 0; s < N; s += a->batch) {
      const int64_t n = std::min(a->batch, N - s);
      Tensor x = attr::array_rows(ctx, xa, s, n, dt, a->npz + ":x");
      Tensor c = has_ctrl ? attr::array_rows(ctx, arrays.at("control"), s, n, dt, a->npz + ":control") : Tensor();
      auto r = attr::attribute(*model, x, c, o, s);
      w.append(r.hyp);
      for (size_t i = 0; i < r.delta.size(); ++i) {
        conv.push_back({{"index", s + static_cast<int64_t>(i)}, {"delta", r.delta[i]}, {"relative", r.delta_rel[i]}});
        if (std::isfinite(r.delta_rel[i])) worst = std::max(worst, r.delta_rel[i]);
      }
      bar.update(n, r.delta.empty() ? "" : "max rel delta " + std::to_string(worst));
    }
    w.end();
    w.close();
    bar.finish();
    if (!conv.empty()) {
      std::ofstream f(fs::path(a->out) / "convergence.json");
      f << nlohmann::json{{"method", a->method}, {"target", o.target.name()}, {"max_relative_delta", worst},
                          {"examples", conv}}.dump(1)
        << "\n";
    }
    std::cout << "wrote " << a->out << "/ohe.npz and attr.npz (" << N << " x 4 x " << L << ", method " << a->method
              << ", target " << o.target.name() << ")";
    if (!conv.empty()) std::cout << "; max relative summation-to-delta error " << worst;
    std::cout << "\n";
    return 0;
  };
}

}  // namespace lowpass::tools
