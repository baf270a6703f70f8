// `lowpass train --config C.json --out DIR [--init-weights W.safetensors] [--resume]`: trains as the
// config says and writes the model directory (see models/train/trainer.h, docs/cli.md).
#include <iostream>
#include <memory>

#include "models/train/config.h"
#include "models/train/trainer.h"
#include "tools/commands.h"

namespace lowpass::tools {

namespace {
struct TrainArgs {
  std::string config, out, init_weights;
  bool resume = false, quiet = false;
  int threads = -1;
};
}  // namespace

CommandRun add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* sub = app.add_subcommand("train", "Train a model from a JSON config into a model directory");
  sub->add_option("--config", a->config, "JSON config (model, data, train, prior)")->required();
  sub->add_option("--out", a->out, "Model directory to write")->required();
  sub->add_option("--init-weights", a->init_weights, "Start from this safetensors state_dict");
  sub->add_flag("--resume", a->resume, "Continue from DIR/checkpoints/last.safetensors");
  sub->add_flag("--quiet", a->quiet, "No progress bar or epoch lines");
  sub->add_option("--threads", a->threads, "CPU threads (overrides train.threads)");
  return [a]() {
    TrainConfig cfg = load_config(a->config);
    if (a->threads >= 0) cfg.train.threads = a->threads, cfg.resolved["train"]["threads"] = a->threads;
    TrainOptions o;
    o.out_dir = a->out;
    o.init_weights = a->init_weights;
    o.resume = a->resume;
    o.quiet = a->quiet;
    TrainResult r = train_model(cfg, o);
    std::cout << "trained " << r.epochs << " epochs (" << r.steps << " steps, stop: " << r.stop_reason
              << "), best epoch " << r.best_epoch << "; wrote " << a->out << "\n";
    if (!r.test.empty()) std::cout << "test: " << r.test.dump() << "\n";
    return 0;
  };
}

}  // namespace lowpass::tools
