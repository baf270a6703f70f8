// `lowpass train --config C.json --out DIR [--init-weights W.safetensors] [--resume]`: trains as the
// config says and writes the model directory (see models/train/trainer.h, docs/cli.md).
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>

#include "models/train/config.h"
#include "models/train/trainer.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"

namespace lowpass::tools {

namespace {
// SIGINT/SIGTERM: the trainer finishes its step, writes a checkpoint and returns (docs/reliability.md).
// A second signal while it does so is left to the default action (stop at once).
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) {
  g_stop_signal = sig;
  std::signal(sig, SIG_DFL);
}

struct TrainArgs {
  std::string config, out, init_weights;
  bool resume = false, quiet = false, skip_nonfinite = false;
  int threads = -1;
  std::string device;
  bool tf32 = false, bf16 = false;
  bool cuda_graph = false;
  std::string cuda_conv;
};
}  // namespace

CommandRun add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* sub = app.add_subcommand("train", "Train a model from a JSON config into a model directory");
  sub->add_option("--config", a->config, "JSON config (model, data, train, prior)")->required();
  sub->add_option("--out", a->out, "Model directory to write")->required();
  sub->add_option("--init-weights", a->init_weights,
                  "Start from these weights: a safetensors state_dict or a training checkpoint (RUN/checkpoints/...)");
  sub->add_flag("--resume", a->resume, "Continue from DIR/checkpoints/last.safetensors");
  sub->add_flag("--quiet", a->quiet, "No progress bar or epoch lines");
  // -1 = not given (the config's train.threads); a negative value on the command line is a usage mistake.
  sub->add_option("--threads", a->threads, "CPU threads, 0 = all (overrides train.threads)")
      ->check(integer_at_least(0))
      ->default_str("");
  sub->add_option("--device", a->device, "cpu | cuda | cuda:N (overrides train.device)")->check(device_name());
  CLI::Option* tf32 =
      sub->add_flag("--tf32", a->tf32, "CUDA: float32 GEMMs on TF32 tensor cores (overrides train.tf32)");
  CLI::Option* bf16 =
      sub->add_flag("--bf16", a->bf16, "CUDA: float32 GEMMs on bfloat16 tensor cores (overrides train.bf16)");
  tf32->excludes(bf16);
  sub->add_flag("--cuda-graph", a->cuda_graph,
                "Capture the training step as a CUDA graph and replay it (overrides train.cuda_graph; docs/cuda.md)");
  sub->add_option("--cuda-conv", a->cuda_conv,
                  "CUDA conv backend: auto, direct, tiled, im2col, cudnn or tune (overrides train.cuda_conv and "
                  "LOWPASS_CUDA_CONV; docs/cuda.md)")
      ->check(conv_backend_name());
  sub->add_flag("--skip-nonfinite", a->skip_nonfinite,
                "Skip (and count) batches with a non-finite loss or gradient instead of stopping");
  return [a]() {
    {  // train writes the resolved config (defaults filled in, paths absolute) to DIR/config.json: not over the user's
      std::error_code ec;
      const bool same = std::filesystem::equivalent(a->config, std::filesystem::path(a->out) / "config.json", ec);
      LP_CHECK(a->resume || ec || !same, a->config, ": this --config is the config.json that train writes into --out ",
               a->out, " (the resolved config: every default filled in, paths made absolute), which would replace ",
               "yours; keep your config outside the run folder, or give another --out");
    }
    TrainConfig cfg = load_config(a->config);
    if (a->threads >= 0) cfg.train.threads = a->threads, cfg.resolved["train"]["threads"] = a->threads;
    if (!a->device.empty()) {
      cfg.train.device = a->device, cfg.resolved["train"]["device"] = a->device;
    }
    // A flag chooses the GEMM math outright, so it also clears the other one of the config's two settings.
    if (a->tf32 || a->bf16) {
      cfg.train.tf32 = a->tf32, cfg.train.bf16 = a->bf16;
      cfg.resolved["train"]["tf32"] = a->tf32, cfg.resolved["train"]["bf16"] = a->bf16;
    }
    if (a->cuda_graph) cfg.train.cuda_graph = true, cfg.resolved["train"]["cuda_graph"] = true;
    if (!a->cuda_conv.empty()) {
      cfg.train.cuda_conv = a->cuda_conv, cfg.resolved["train"]["cuda_conv"] = a->cuda_conv;
    }
    TrainOptions o;
    o.out_dir = a->out;
    o.init_weights = a->init_weights;
    o.resume = a->resume;
    o.quiet = a->quiet;
    o.skip_nonfinite = a->skip_nonfinite;
    o.stop_signal = &g_stop_signal;
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    TrainResult r = train_model(cfg, o);
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    if (r.skipped_batches > 0)
      std::cerr << "lowpass train: skipped " << r.skipped_batches << " batches with non-finite numbers\n";
    if (r.stop_reason == "signal") {
      // Name the file --resume reads: a stop at an epoch's end also writes epoch_<n>.safetensors (after it, the
      // same state), which r.last_checkpoint would name.
      const std::string last = (std::filesystem::path(a->out) / "checkpoints" / "last.safetensors").string();
      std::cerr << "lowpass train: stopped by signal " << g_stop_signal << " after step " << r.steps
                << "; checkpoint " << last << " written; continue with --resume\n";
      return 0;
    }
    std::cout << "trained " << r.epochs << " epochs (" << r.steps << " steps, stop: " << r.stop_reason
              << "), best epoch " << r.best_epoch << "; wrote " << a->out << "\n";
    if (!r.test.empty()) std::cout << "test: " << r.test.dump() << "\n";
    return 0;
  };
}

}  // namespace lowpass::tools
