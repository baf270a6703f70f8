// The training loop: per step L = L_task + λ·L_prior on a balanced (RC-doubled) batch, one optimiser
// step; per epoch eval-mode validation, early stopping (REFERENCE §2.3), best state as a real copy
// (fixes §8.2), checkpoints and metrics.jsonl. Test: build-train/tests/lowpass_tests -ts=train
#include "models/train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/optim.h"
#include "engine/safetensors.h"
#include "models/arch/model.h"
#include "models/data/array_dataset.h"
#include "models/train/evaluate.h"
#include "models/train/progress.h"

namespace lowpass {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kSamplerSalt = 0x9E3779B97F4A7C15ULL;  // the sampler's stream differs from init's

std::map<std::string, Tensor> to_map(const NamedTensors& v) {
  std::map<std::string, Tensor> m;
  for (const auto& [k, t] : v) m[k] = t;
  return m;
}

NamedTensors deep_copy(const NamedTensors& v) {
  NamedTensors r;
  for (const auto& [k, t] : v) r.emplace_back(k, t.clone());
  return r;
}

void check_geometry(const Model& m, const ArrayDataset& ds) {
  LP_CHECK(ds.length == m.input_length(), ds.source, ": 'x' has length ", ds.length,
           " but the model's input_length is ", m.input_length());
  LP_CHECK(ds.tasks() == m.tasks(), ds.source, ": 'y' has ", ds.tasks(), " tasks but the model has ", m.tasks());
  if (m.type() == "profile")
    LP_CHECK(ds.y_shape[3] == m.output_length(), ds.source, ": 'y' has output length ", ds.y_shape[3],
             " but the model's output_length is ", m.output_length());
}

// Keys that may differ between the original run and a --resume (they do not change the trajectory
// except epochs/max_steps, which only move the end point).
json comparable(json c) {
  for (const char* k : {"epochs", "max_steps", "progress", "seed", "threads"}) c["train"].erase(k);
  return c;
}

struct LoopState {
  int64_t epoch = 0;          // epochs completed
  int64_t step_in_epoch = 0;  // batches of the current epoch already taken
  int64_t step = 0;           // optimiser steps in total
  std::vector<double> history;  // last patience+1 validation values
  double best_value = INFINITY;
  int64_t best_epoch = 0;
  double sum_task = 0, sum_prior = 0, sum_total = 0, rows = 0, seconds = 0;  // partial epoch

  json to_json() const {
    return {{"history", history}, {"best_value", std::isfinite(best_value) ? json(best_value) : json(nullptr)},
            {"best_epoch", best_epoch}, {"step_in_epoch", step_in_epoch}, {"sum_task", sum_task},
            {"sum_prior", sum_prior}, {"sum_total", sum_total}, {"rows", rows}, {"seconds", seconds}};
  }
  void from_json(const json& j) {
    history = j.at("history").get<std::vector<double>>();
    best_value = j.at("best_value").is_null() ? INFINITY : j.at("best_value").get<double>();
    best_epoch = j.at("best_epoch").get<int64_t>();
    step_in_epoch = j.at("step_in_epoch").get<int64_t>();
    sum_task = j.at("sum_task").get<double>();
    sum_prior = j.at("sum_prior").get<double>();
    sum_total = j.at("sum_total").get<double>();
    rows = j.at("rows").get<double>();
    seconds = j.at("seconds").get<double>();
  }
};

// Keep the first `epochs` lines of metrics.jsonl (a resumed run rewrites the rest).
void truncate_metrics(const std::string& path, int64_t epochs) {
  std::ifstream in(path);
  std::vector<std::string> keep;
  std::string line;
  while (static_cast<int64_t>(keep.size()) < epochs && std::getline(in, line))
    if (!line.empty()) keep.push_back(line);
  in.close();
  std::ofstream out(path, std::ios::trunc);
  for (auto& l : keep) out << l << "\n";
}

}  // namespace

TrainResult train_model(const TrainConfig& cfg_in, const TrainOptions& opt) {
  TrainConfig cfg = cfg_in;
  std::FILE* log = opt.log ? opt.log : stderr;
  LP_CHECK(!opt.out_dir.empty(), "train: --out DIR is required");
  const fs::path dir(opt.out_dir), ckdir = dir / "checkpoints";
  const std::string metrics_path = (dir / "metrics.jsonl").string(), last_ck = (ckdir / "last.safetensors").string();

  if (opt.resume) {
    LP_CHECK(fs::exists(last_ck), last_ck, ": no checkpoint to resume from");
    LP_CHECK(fs::exists(dir / "config.json"), (dir / "config.json").string(), ": missing (needed by --resume)");
    TrainConfig saved = load_config((dir / "config.json").string());
    json a = comparable(saved.resolved), b = comparable(cfg.resolved);
    for (auto& [sec, v] : a.items())
      for (auto& [k, val] : v.items())
        LP_CHECK(b[sec].contains(k) && b[sec][k] == val, cfg.source, ": '", sec, ".", k,
                 "' differs from the run being resumed (", (dir / "config.json").string(), ")");
    cfg.train.seed = saved.train.seed;  // the saved run's seed wins (it may have been drawn)
    cfg.resolved["train"]["seed"] = saved.resolved["train"]["seed"];
  } else {
    LP_CHECK(!fs::exists(last_ck), dir.string(), ": already holds a training run (use --resume or a new --out)");
  }
  fs::create_directories(ckdir);
  write_config(cfg, (dir / "config.json").string());

  const TrainSettings& t = cfg.train;
  Context ctx(static_cast<int>(t.threads), t.seed);
  std::unique_ptr<Model> model = make_model(cfg.model, ctx);
  if (!opt.init_weights.empty()) {
    auto f = safetensors::load(ctx, opt.init_weights);
    try {
      model->load_state_dict(f.map(), true);
    } catch (const Error& e) {
      throw Error(opt.init_weights + ": " + e.what());
    }
  }
  ArrayDataset train_ds = read_array_dataset(cfg.data.train, cfg.model_type);
  check_geometry(*model, train_ds);
  ArrayDataset valid_ds, test_ds;
  if (!cfg.data.valid.empty()) valid_ds = read_array_dataset(cfg.data.valid, cfg.model_type), check_geometry(*model, valid_ds);
  if (!cfg.data.test.empty()) test_ds = read_array_dataset(cfg.data.test, cfg.model_type), check_geometry(*model, test_ds);

  ArraySamplerOptions so;
  so.batch_size = t.batch_size;
  so.negative_ratio = t.negative_ratio;
  so.shuffle = t.shuffle;
  so.revcomp = t.revcomp;
  ArrayBatchSource src(train_ds, so, "train");
  Rng sampler(t.seed ^ kSamplerSalt);

  std::unique_ptr<Optimizer> optim;
  if (t.optimizer == "adam") {
    AdamOptions ao;
    ao.lr = t.lr, ao.beta1 = t.beta1, ao.beta2 = t.beta2, ao.eps = t.eps;
    optim = std::make_unique<Adam>(model->parameters(), ao);
  } else {
    SgdOptions sg;
    sg.lr = t.lr, sg.momentum = t.momentum;
    optim = std::make_unique<Sgd>(model->parameters(), sg);
  }

  LoopState st;
  std::string epoch_rng;  // sampler state at the start of the current epoch (replayed on resume)
  const std::string config_hash = fnv1a64_hex(comparable(cfg.resolved).dump());
  if (opt.resume) {
    Checkpoint ck = load_checkpoint(ctx, last_ck);
    model->load_state_dict(to_map(ck.model), true);
    optim->load_state(to_map(ck.optimizer));
    ctx.rng().set_state(ck.rng_state);
    epoch_rng = ck.sampler_state;
    sampler.set_state(epoch_rng);  // the state at the start of the checkpoint's epoch
    st.epoch = ck.epoch;
    st.step = ck.step;
    LP_CHECK(ck.extra.count("trainer"), last_ck, ": missing field 'trainer' in the metadata");
    st.from_json(json::parse(ck.extra.at("trainer")));
    truncate_metrics(metrics_path, st.epoch);
  } else {
    std::ofstream(metrics_path, std::ios::trunc);
  }

  auto save_ck = [&](const std::string& path) {
    Checkpoint ck;
    ck.model = model->state_dict();
    ck.optimizer = optim->state();
    ck.optimizer_type = optim->type();
    ck.epoch = st.epoch;
    ck.step = st.step;
    ck.rng_state = ctx.rng().state();
    ck.sampler_state = epoch_rng;
    ck.config_hash = config_hash;
    ck.extra["trainer"] = st.to_json().dump();
    save_checkpoint(path, ck);
  };
  auto save_weights = [&](const std::string& name, const NamedTensors& sd) {
    safetensors::save((dir / name).string(), safetensors::entries_from(sd),
                      {{"format", "lowpass-model"}, {"model_type", cfg.model_type}});
  };

  if (!opt.quiet) {
    std::fprintf(log, "lowpass train: %s; %s model, %lld steps/epoch, prior %s (weight %g)\n",
                 src.describe().c_str(), cfg.model_type.c_str(), static_cast<long long>(src.batches_per_epoch()),
                 cfg.prior.type.c_str(), cfg.prior.weight);
  }

  TrainResult res;
  res.stop_reason = "epochs";
  NamedTensors best_sd;
  if (opt.resume && fs::exists(dir / "best.safetensors"))
    best_sd = safetensors::load(ctx, (dir / "best.safetensors").string()).named();
  bool stop = false;
  for (; st.epoch < t.epochs && !stop; ) {
    if (st.step_in_epoch == 0) epoch_rng = sampler.state();
    else sampler.set_state(epoch_rng);
    src.start_epoch(st.epoch, sampler);
    for (int64_t k = 0; k < st.step_in_epoch; ++k) src.next(ctx);  // replay the sampler position
    Progress bar("epoch " + std::to_string(st.epoch + 1) + "/" + std::to_string(t.epochs),
                 src.batches_per_epoch(), "batch", t.progress && !opt.quiet, log);
    bar.update(st.step_in_epoch);
    for (; st.step_in_epoch < src.batches_per_epoch(); ++st.step_in_epoch) {
      auto t0 = std::chrono::steady_clock::now();
      Batch batch = src.next(ctx);
      Losses l = compute_losses(*model, batch, cfg.prior, /*training=*/true, t.counts_loss_weight);
      const double task = l.task.item(), prior = l.prior.item(), total = l.total.item();
      LP_CHECK(std::isfinite(task) && std::isfinite(prior) && std::isfinite(total), cfg.data.train,
               ": loss is not finite at step ", st.step + 1, " (epoch ", st.epoch + 1, ", batch ", st.step_in_epoch + 1,
               "): task ", task, ", prior ", prior, " (lower train.lr or check the data)");
      optim->zero_grad();
      backward(l.total);
      optim->step();
      optim->zero_grad();
      ++st.step;
      const double n = static_cast<double>(batch.size());
      st.sum_task += task * n, st.sum_prior += prior * n, st.sum_total += total * n, st.rows += n;
      st.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      char status[96];
      std::snprintf(status, sizeof status, "loss %.4f (prior %.4f)  %.1f ex/s", st.sum_total / st.rows,
                    st.sum_prior / st.rows, st.rows / std::max(st.seconds, 1e-9));
      bar.update(1, status);
      if (t.max_steps > 0 && st.step >= t.max_steps && st.step_in_epoch + 1 < src.batches_per_epoch()) {
        ++st.step_in_epoch;
        stop = true;
        res.stop_reason = "max_steps";
        break;
      }
    }
    bar.finish();
    if (stop) {  // mid-epoch stop: a checkpoint at this sampler position, no epoch line
      save_ck(last_ck);
      break;
    }
    // ---- end of epoch ----
    json line = {{"epoch", st.epoch + 1}, {"steps", st.step},
                 {"train_task_loss", st.sum_task / st.rows}, {"train_prior_loss", st.sum_prior / st.rows},
                 {"train_total_loss", st.sum_total / st.rows}, {"train_examples", st.rows},
                 {"examples_per_s", st.rows / std::max(st.seconds, 1e-9)}, {"train_seconds", st.seconds}};
    double key = st.sum_total / st.rows;  // without validation data the training loss decides
    if (valid_ds.n > 0) {
      auto t0 = std::chrono::steady_clock::now();
      EvalResult v = evaluate(*model, valid_ds, cfg.prior, t.revcomp, t.eval_batch_size, t.counts_loss_weight, ctx,
                              cfg.data.valid);
      line.update(v.to_json("valid_"));
      line["valid_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      key = t.early_stopping_on == "task" ? v.task : v.total;
    }
    st.epoch += 1;
    st.step_in_epoch = 0;
    st.sum_task = st.sum_prior = st.sum_total = st.rows = st.seconds = 0;
    if (key < st.best_value) {
      st.best_value = key;
      st.best_epoch = st.epoch;
      best_sd = deep_copy(model->state_dict());  // a real copy (the reference aliases: §8.2)
      save_weights("best.safetensors", best_sd);
    }
    line["best_epoch"] = st.best_epoch;
    st.history.push_back(key);
    if (static_cast<int64_t>(st.history.size()) > t.patience + 1) st.history.erase(st.history.begin());
    if (t.early_stopping && st.epoch >= t.min_epochs && static_cast<int64_t>(st.history.size()) == t.patience + 1) {
      double best_delta = -INFINITY;  // largest consecutive-epoch improvement in the window
      for (size_t i = 0; i + 1 < st.history.size(); ++i) best_delta = std::max(best_delta, st.history[i] - st.history[i + 1]);
      if (best_delta < t.min_delta) stop = true, res.stop_reason = "early_stopping";
    }
    line["stop"] = stop ? json(res.stop_reason) : json(nullptr);
    {
      std::ofstream m(metrics_path, std::ios::app);
      m << line.dump() << "\n";
      LP_CHECK(m.good(), metrics_path, ": write failed");
    }
    epoch_rng = sampler.state();
    save_ck((ckdir / ("epoch_" + std::to_string(st.epoch) + ".safetensors")).string());
    save_ck(last_ck);
    save_weights("model.safetensors", model->state_dict());
    if (!opt.quiet) {
      std::fprintf(log, "epoch %lld: train loss %.5f", static_cast<long long>(st.epoch), line["train_total_loss"].get<double>());
      if (line.contains("valid_total_loss") && line["valid_total_loss"].is_number())
        std::fprintf(log, ", valid loss %.5f (task %.5f, prior %.5f)", line["valid_total_loss"].get<double>(),
                     line["valid_task_loss"].get<double>(), line["valid_prior_loss"].get<double>());
      if (line.contains("valid_auroc") && line["valid_auroc"].is_number())
        std::fprintf(log, ", valid auROC %.4f", line["valid_auroc"].get<double>());
      std::fprintf(log, ", %.1f ex/s%s\n", line["examples_per_s"].get<double>(), stop ? " — early stop" : "");
    }
    if (t.max_steps > 0 && st.step >= t.max_steps) stop = true, res.stop_reason = "max_steps";
  }
  save_weights("model.safetensors", model->state_dict());
  if (best_sd.empty()) {  // stopped before the first epoch ended
    best_sd = deep_copy(model->state_dict());
    save_weights("best.safetensors", best_sd);
  }
  res.epochs = st.epoch;
  res.steps = st.step;
  res.best_epoch = st.best_epoch;
  res.best_value = st.best_value;
  if (test_ds.n > 0 && res.stop_reason != "max_steps") {
    model->load_state_dict(to_map(best_sd), true);
    EvalResult te = evaluate(*model, test_ds, cfg.prior, t.revcomp, t.eval_batch_size, t.counts_loss_weight, ctx,
                             cfg.data.test);
    res.test = te.to_json("test_");
    res.test["best_epoch"] = st.best_epoch;
    std::ofstream f(dir / "test_metrics.json");
    f << res.test.dump(2) << "\n";
  }
  return res;
}

}  // namespace lowpass
