// The training loop: per step L = L_task + λ·L_prior on a balanced (RC-doubled) batch, one optimiser
// step; per epoch eval-mode validation, early stopping (REFERENCE §2.3), best state as a real copy
// (fixes §8.2), checkpoints and metrics.jsonl. Test: build/tests/lowpass_tests -ts=train
#include "models/train/trainer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "engine/checkpoint.h"
#include "kernels/cuda/conv_backend.h"
#include "kernels/cuda/conv_tune.h"
#include "kernels/cuda/runtime.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/safetensors.h"
#include "models/arch/model.h"
#include "models/data/array_dataset.h"
#include "models/train/datasets.h"
#include "models/train/early_stopping.h"
#include "models/train/evaluate.h"
#include "models/train/graph_step.h"
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

// Keys that may differ between the original run and a --resume (they do not change the trajectory
// except epochs/max_steps, which only move the end point).
json comparable(json c) {
  for (const char* k :
       {"epochs", "max_steps", "progress", "seed", "threads", "device", "tf32", "bf16", "cuda_graph", "cuda_conv"})
    c["train"].erase(k);
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
  int64_t skipped = 0, skipped_total = 0;  // non-finite batches skipped: this epoch, whole run

  json to_json() const {
    return {{"history", history}, {"best_value", std::isfinite(best_value) ? json(best_value) : json(nullptr)},
            {"best_epoch", best_epoch}, {"step_in_epoch", step_in_epoch}, {"sum_task", sum_task},
            {"sum_prior", sum_prior}, {"sum_total", sum_total}, {"rows", rows}, {"seconds", seconds},
            {"skipped", skipped}, {"skipped_total", skipped_total}};
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
    skipped = j.value("skipped", int64_t(0));
    skipped_total = j.value("skipped_total", int64_t(0));
  }
};

// What marks `dir` as holding a training run (a new run there without --resume is refused): its final weights,
// test metrics or any checkpoint. A run killed in its first epoch, before its first checkpoint, may have left
// config.json, best.safetensors and a metrics line: nothing to resume from, so a new run may start there (the
// epoch's end writes last.safetensors before epoch_<n> and model.safetensors, so those imply a checkpoint).
std::vector<std::string> run_files(const fs::path& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const char* f : {"model.safetensors", "test_metrics.json"})
    if (fs::exists(dir / f, ec)) found.push_back(f);
  for (fs::directory_iterator it(dir / "checkpoints", ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".safetensors") {
      found.push_back("checkpoints/" + it->path().filename().string());
      break;
    }
  return found;
}

// An exclusive lock on DIR/.lock for the run's lifetime: a second `lowpass train` into the same folder (a requeued
// job whose first copy still runs) is refused instead of interleaving checkpoints and metrics. flock is released
// by the kernel when the process ends, however it ends.
class RunLock {
 public:
  explicit RunLock(const fs::path& dir) {
    const std::string p = (dir / ".lock").string();
    fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    LP_CHECK(fd_ >= 0, p, ": cannot open the run's lock file (", std::strerror(errno), ")");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err != EWOULDBLOCK) {
        // A filesystem without locks (some network mounts say ENOLCK): train unguarded, as before the lock existed.
        std::fprintf(stderr, "lowpass train: %s: cannot lock (%s); make sure no other train writes to this folder\n",
                     p.c_str(), std::strerror(err));
        ::close(fd_);
        fd_ = -1;
        return;
      }
      char buf[128] = {0};
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      ::close(fd_);
      throw Error(dir.string() + ": in use by another lowpass train" +
                  (n > 0 ? " (" + std::string(buf, static_cast<size_t>(n)) + ")" : std::string()) +
                  "; wait for it to end, or stop it (it checkpoints on SIGTERM) and --resume");
    }
    char host[64] = {0};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
    const std::string who = std::string(host[0] ? host : "?") + " pid " + std::to_string(::getpid());
    if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, who.data(), who.size(), 0) < 0) {
      // only for the message above; the lock holds without it
    }
  }
  ~RunLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// The training data as the sampler sees it, for the resume check (describe() without the memory-dependent
// preloaded/cached word, which may differ on another machine).
std::string data_summary(const BatchSource& src) {
  std::string d = src.describe();
  for (const char* w : {"preloaded ", "cached "})
    for (size_t p; (p = d.find(w)) != std::string::npos;) d.erase(p, std::strlen(w));
  return d + "; " + std::to_string(src.batches_per_epoch()) + " batches per epoch";
}

// Keep the first `epochs` lines of metrics.jsonl (a resumed run rewrites the rest). Written atomically: a resume
// killed here keeps the history it had.
void truncate_metrics(const std::string& path, int64_t epochs) {
  std::ifstream in(path);
  std::string keep, line;
  for (int64_t n = 0; n < epochs && std::getline(in, line);)
    if (!line.empty()) keep += line + "\n", ++n;
  in.close();
  safetensors::write_file_atomic(path, keep);
}

}  // namespace

TrainResult train_model(const TrainConfig& cfg_in, const TrainOptions& opt) {
  TrainConfig cfg = cfg_in;
  std::FILE* log = opt.log ? opt.log : stderr;
  LP_CHECK(!opt.out_dir.empty(), "train: --out DIR is required");
  const fs::path dir(opt.out_dir), ckdir = dir / "checkpoints";
  const std::string metrics_path = (dir / "metrics.jsonl").string(), last_ck = (ckdir / "last.safetensors").string();

  if (opt.resume) {
    if (!fs::exists(last_ck)) {  // say what there is instead
      int64_t newest = 0;
      std::error_code ec;
      for (fs::directory_iterator it(ckdir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string n = it->path().filename().string();
        if (n.rfind("epoch_", 0) == 0 && it->path().extension() == ".safetensors")
          newest = std::max<int64_t>(newest, std::atoll(n.c_str() + 6));
      }
      LP_CHECK(newest == 0, last_ck, ": no checkpoint to resume from; to resume from the end of epoch ", newest,
               ", copy ", (ckdir / ("epoch_" + std::to_string(newest) + ".safetensors")).string(), " over it");
      throw Error(last_ck + ": no checkpoint to resume from (" +
                  (run_files(dir).empty() ? "the run stopped before its first checkpoint, or never started: run it "
                                            "again without --resume)"
                                          : "and no epoch checkpoint either: start a new --out)"));
    }
    LP_CHECK(fs::exists(dir / "config.json"), (dir / "config.json").string(), ": missing (needed by --resume)");
    TrainConfig saved = load_config((dir / "config.json").string());
    if (cfg.train.counts_loss_weight_auto) {  // "auto" resumes with the weight the run derived (config.json has it)
      cfg.train.counts_loss_weight_auto = false;
      cfg.train.counts_loss_weight = saved.train.counts_loss_weight;
      cfg.resolved["train"]["counts_loss_weight"] = saved.resolved["train"]["counts_loss_weight"];
    }
    json a = comparable(saved.resolved), b = comparable(cfg.resolved);
    const auto shown = [](const json& j) {  // a whole section (another data source) is cut to a readable length
      const std::string d = j.dump();
      return d.size() <= 160 ? d : d.substr(0, 150) + " ...";
    };
    for (auto& [sec, v] : a.items())
      for (auto& [k, val] : v.items())
        LP_CHECK(b[sec].contains(k) && b[sec][k] == val, cfg.source, ": '", sec, ".", k, "' is ",
                 b[sec].contains(k) ? shown(b[sec][k]) : std::string("not set"), " but the run being resumed has ",
                 shown(val), " (", (dir / "config.json").string(),
                 "); resume with the run's value or start a new --out");
    cfg.train.seed = saved.train.seed;  // the saved run's seed wins (it may have been drawn)
    cfg.resolved["train"]["seed"] = saved.resolved["train"]["seed"];
  } else {
    const auto found = run_files(dir);
    LP_CHECK(found.empty(), dir.string(), ": already holds a training run (", found.front(),
             "); use --resume, or a new --out");
  }
  // Nothing is written into DIR until the model, the device, the data and (on --resume) the checkpoint have
  // loaded: a run that cannot start leaves no half-made folder, and a failed resume leaves config.json as it was.

  const TrainSettings& t = cfg.train;
  Context ctx(static_cast<int>(t.threads), t.seed);
  std::unique_ptr<Model> model = make_model(cfg.model, ctx);
  if (!opt.init_weights.empty()) {
    const auto sd = load_model_weights(ctx, opt.init_weights);  // a state_dict or a training checkpoint
    try {
      model->load_state_dict(sd, true);
    } catch (const Error& e) {
      throw Error(opt.init_weights + ": " + e.what());
    }
  }
  const Device dev = parse_device(t.device, cfg.source + ": 'train.device'");
  LP_CHECK(!(t.tf32 && t.bf16), cfg.source, ": 'train.tf32' and 'train.bf16' are both on; choose one (or neither:"
           " float32 is the reference)");
  const cuda::GemmMath math = cuda::gemm_math_for(t.tf32, t.bf16);
  if (dev.is_cuda()) {
    LP_CHECK(cuda::available(), cfg.source, ": 'train.device' is ", t.device,
             " but no GPU is usable: ", cuda::unavailable_reason());
    model->to(dev);
    cuda::set_gemm_math(ctx, dev.index, math);
    if (t.cuda_conv != "default")
      cuda::set_conv_backend(ctx, dev.index, cuda::parse_conv_backend(t.cuda_conv, "train.cuda_conv"));
    if (!opt.quiet) {  // which conv path runs (LOWPASS_CUDA_CONV, docs/cuda.md), cuDNN's run-time version with it
      const cuda::ConvBackend cb = cuda::conv_backend(ctx, dev.index);
      const std::string conv = std::string(cuda::conv_backend_name(cb)) +
                               (cb == cuda::ConvBackend::Cudnn ? " " + cuda::cudnn_version() : std::string());
      std::fprintf(log, "lowpass train: device %s (%s)%s%s, conv %s\n", device_str(dev).c_str(),
                   cuda::device_name(dev.index).c_str(), math == cuda::GemmMath::Float32 ? "" : ", GEMMs ",
                   math == cuda::GemmMath::Float32 ? "" : cuda::gemm_math_name(math), conv.c_str());
    }
  } else {
    LP_CHECK(math == cuda::GemmMath::Float32, cfg.source, ": 'train.", cuda::gemm_math_name(math),
             "' needs train.device cuda");
    LP_CHECK(t.cuda_conv == "default", cfg.source, ": 'train.cuda_conv' is \"", t.cuda_conv,
             "\", which needs train.device cuda (\"default\" on the CPU)");
  }
  // Data: npz arrays, genome files or FASTA sequences (models/train/datasets.h), checked against the model.
  DataSources data = make_datasets(cfg);
  BatchSource& src = *data.train;
  if (cfg.train.counts_loss_weight_auto) {  // ChromBPNet's rule from the training data; config.json records it
    const double w = cfg.model_type == "profile" ? src.suggested_counts_weight() : 20.0;  // binary: unused
    LP_CHECK(w >= 0, cfg.source, ": 'train.counts_loss_weight' is \"auto\" but ", data.train_name,
             " has no profile positives (status 1) to derive it from; give a number");
    cfg.train.counts_loss_weight = w;
    cfg.resolved["train"]["counts_loss_weight"] = w;
    if (!opt.quiet)
      std::fprintf(log, "lowpass train: counts_loss_weight %g (auto: median total count of the training positives / "
                        "10)\n", w);
  }
  const int64_t input_length = src.geometry().input_length;
  // Limits (docs/reliability.md): a batch whose one-hot input alone exceeds the machine's memory is refused
  // before the first step, with the size it would need (activations and gradients need several times more).
  for (auto [bs, key] : {std::pair<int64_t, const char*>{t.batch_size, "train.batch_size"},
                         std::pair<int64_t, const char*>{t.eval_batch_size, "train.eval_batch_size"}}) {
    const double bytes = static_cast<double>(bs) * (t.revcomp ? 2 : 1) * 4 * static_cast<double>(input_length) * 4;
    safetensors::check_fits_in_memory(bytes >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(bytes),
                                      cfg.source + ": '" + key + "' = " + std::to_string(bs) + " (x" +
                                          (t.revcomp ? "2 reverse complements x" : "") + " 4 x " +
                                          std::to_string(input_length) + " float32 inputs)");
  }
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

  std::unique_ptr<GraphStep> gstep;  // train.cuda_graph: the fixed-form step, captured on a GPU
  if (t.cuda_graph) {
    gstep = std::make_unique<GraphStep>(*model, *optim, cfg.prior, t.counts_loss_weight, model->device().is_cuda(),
                                        opt.quiet ? nullptr : log);
    if (!opt.quiet && !model->device().is_cuda())
      std::fprintf(log, "lowpass train: train.cuda_graph on the CPU runs the fixed-form step eagerly (CUDA graphs "
                        "need train.device cuda)\n");
  }

  LoopState st;
  std::string res_last_ck;  // last checkpoint written or resumed from, named by the numerics guard
  auto stop_requested = [&] { return opt.stop_signal != nullptr && *opt.stop_signal != 0; };
  std::string epoch_rng;  // sampler state at the start of the current epoch (replayed on resume)
  const std::string config_hash = fnv1a64_hex(comparable(cfg.resolved).dump());
  if (opt.resume) {
    Checkpoint ck;
    try {
      ck = load_checkpoint(ctx, last_ck);
    } catch (const Error& e) {  // name the newest intact epoch checkpoint a resume could start from instead
      int64_t newest = 0;
      for (const auto& f : fs::directory_iterator(ckdir)) {
        const std::string n = f.path().filename().string();
        if (n.rfind("epoch_", 0) != 0 || f.path().extension() != ".safetensors") continue;
        const int64_t e_n = std::atoll(n.c_str() + 6);
        if (e_n > newest && verify_checkpoint(f.path().string())) newest = e_n;
      }
      if (newest == 0) throw;
      throw Error(std::string(e.what()) + "; to resume from the end of epoch " + std::to_string(newest) + " instead, "
                  "copy " + (ckdir / ("epoch_" + std::to_string(newest) + ".safetensors")).string() + " over " +
                  last_ck + " (metrics.jsonl is trimmed to it)");
    }
    model->load_state_dict(to_map(ck.model), true);
    optim->load_state(to_map(ck.optimizer));
    ctx.rng().set_state(ck.rng_state);
    epoch_rng = ck.sampler_state;
    sampler.set_state(epoch_rng);  // the state at the start of the checkpoint's epoch
    st.epoch = ck.epoch;
    st.step = ck.step;
    LP_CHECK(ck.extra.count("trainer"), last_ck, ": missing field 'trainer' in the metadata");
    st.from_json(json::parse(ck.extra.at("trainer")));
    // The sampler's position only means something for the same data (checkpoints before this key: not checked).
    if (auto d = ck.extra.find("data"); d != ck.extra.end())
      LP_CHECK(d->second == data_summary(src), cfg.source, ": the training data changed since the run started (",
               data.train_name, " now gives '", data_summary(src), "'; the run had '", d->second,
               "'); restore the files, or start a new --out");
    res_last_ck = last_ck;
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
    ck.extra["data"] = data_summary(src);
    save_checkpoint(path, ck);
    res_last_ck = path;
  };
  auto save_weights = [&](const std::string& name, const NamedTensors& sd) {
    save_weights_file((dir / name).string(), sd, {{"format", "lowpass-model"}, {"model_type", cfg.model_type}});
  };

  if (!opt.quiet) {
    std::string prior = cfg.prior.type;
    char w[64];
    std::snprintf(w, sizeof w, " (weight %g", cfg.prior.weight);
    if (cfg.prior.type != "none") prior += w + (cfg.prior.type == "fourier" ? ", freq_limit " +
                                                std::to_string(cfg.prior.freq_limit) : std::string()) + ")";
    std::fprintf(log, "lowpass train: %s; %s model, %lld steps/epoch, prior %s\n", src.describe().c_str(),
                 cfg.model_type.c_str(), static_cast<long long>(src.batches_per_epoch()), prior.c_str());
    if (opt.resume)
      std::fprintf(log, "lowpass train: resuming %s at epoch %lld, batch %lld (step %lld)\n", last_ck.c_str(),
                   static_cast<long long>(st.epoch + 1), static_cast<long long>(st.step_in_epoch + 1),
                   static_cast<long long>(st.step + 1));
  }

  TrainResult res;
  res.stop_reason = "epochs";
  NamedTensors best_sd;
  if (opt.resume && fs::exists(dir / "best.safetensors")) {
    // checksum and finiteness checked; the model's tensor order kept for the file written later
    const std::string bp = (dir / "best.safetensors").string();
    std::map<std::string, Tensor> m;
    try {
      m = load_model_weights(ctx, bp);
    } catch (const Error& e) {  // the best epoch's checkpoint holds the same weights
      const std::string ep = (ckdir / ("epoch_" + std::to_string(st.best_epoch) + ".safetensors")).string();
      if (st.best_epoch < 1 || !verify_checkpoint(ep)) throw;
      std::fprintf(log, "lowpass train: %s; using the model weights of %s (the best epoch's checkpoint) instead\n",
                   e.what(), ep.c_str());
      m = load_model_weights(ctx, ep);
    }
    for (const auto& [k, v] : model->state_dict()) {
      LP_CHECK(m.count(k), bp, ": lacks tensor '", k, "' of the model being resumed");
      best_sd.emplace_back(k, m.at(k));
    }
  }
  {
    std::error_code ec;
    fs::create_directories(dir, ec);
    LP_CHECK(!ec, dir.string(), ": cannot create the run folder (--out): ", ec.message());
  }
  const RunLock lock(dir);
  {
    std::error_code ec;
    fs::create_directories(ckdir, ec);
    LP_CHECK(!ec, ckdir.string(), ": cannot create (", ec.message(), ")");
  }
  if (!opt.resume) {  // another run may have written here while this one loaded its data
    const auto found = run_files(dir);
    LP_CHECK(found.empty(), dir.string(), ": already holds a training run (", found.front(),
             "); use --resume, or a new --out");
  }
  for (const fs::path& d : {dir, ckdir})  // what killed writers left (docs/reliability.md)
    for (const auto& f : safetensors::remove_stale_temporaries(d.string()))
      if (!opt.quiet) std::fprintf(log, "lowpass train: removed %s (left by a stopped process)\n", f.c_str());
  write_config(cfg, (dir / "config.json").string());
  if (opt.resume) truncate_metrics(metrics_path, st.epoch);
  else safetensors::write_file_atomic(metrics_path, std::string_view());
  bool stop = false;
  // A resumed run already at max_steps (the same config resumed again, a requeued job) trains no further: the checks
  // below come after a step, so it took one more step on every resume.
  if (t.max_steps > 0 && st.step >= t.max_steps) stop = true, res.stop_reason = "max_steps";
  const auto run_start = std::chrono::steady_clock::now();  // for the whole run's ETA in the epoch lines
  // Epochs this process has run, for the ETA: a resume in the middle of an epoch ran only its rest.
  const double first_epoch = static_cast<double>(st.epoch) + static_cast<double>(st.step_in_epoch) /
                                                                 std::max<int64_t>(1, src.batches_per_epoch());
  for (; st.epoch < t.epochs && !stop; ) {
    if (st.step_in_epoch == 0) epoch_rng = sampler.state();
    else sampler.set_state(epoch_rng);
    src.start_epoch(st.epoch, sampler);
    for (int64_t k = 0; k < st.step_in_epoch; ++k) src.next(ctx);  // replay the sampler position
    Progress bar("epoch " + std::to_string(st.epoch + 1) + "/" + std::to_string(t.epochs),
                 src.batches_per_epoch(), "batch", t.progress && !opt.quiet, log);
    bar.start_at(st.step_in_epoch);
    for (; st.step_in_epoch < src.batches_per_epoch(); ++st.step_in_epoch) {
      auto t0 = std::chrono::steady_clock::now();
      Batch batch = src.next(ctx);
      // a skipped batch must not leave its statistics behind: BN running stats are restored on skip
      NamedTensors saved_buffers = opt.skip_nonfinite ? deep_copy(model->buffers()) : NamedTensors{};
      double task = 0, prior = 0, total = 0;
      auto losses_finite = [&] { return std::isfinite(task) && std::isfinite(prior) && std::isfinite(total); };
      std::string bad;
      if (gstep) {  // forward, backward, check and update in one run (a graph replay on a GPU), one read-back
        const GraphStepResult r = gstep->run(batch);
        task = r.task, prior = r.prior, total = r.total;
        if (!r.finite) {
          if (!losses_finite()) bad = "loss is not finite";
          else bad = "gradient of '" + optim->nonfinite_grad() + "' is not finite";
        }
      } else {
        Losses l = compute_losses(*model, batch, cfg.prior, /*training=*/true, t.counts_loss_weight);
        const std::vector<double> lv = l.scalars();  // one read-back (one device sync) for the three
        task = lv[0], prior = lv[1], total = lv[2];
        // ---- numerics guard (docs/reliability.md): loss first, then every gradient ----
        if (!losses_finite()) bad = "loss is not finite";
        optim->zero_grad();
        if (bad.empty()) {
          backward(l.total);
          std::string p = optim->nonfinite_grad();  // one reduction over the gradient block
          if (!p.empty()) bad = "gradient of '" + p + "' is not finite";
        }
      }
      if (!bad.empty()) {
        if (!gstep) optim->zero_grad();
        LP_CHECK(opt.skip_nonfinite, data.train_name, ": ", bad, " at step ", st.step + 1, " (epoch ", st.epoch + 1,
                 ", batch ", st.step_in_epoch + 1, "): task ", task, ", prior ", prior, ", total ", total,
                 "; last good checkpoint: ", res_last_ck.empty() ? "none yet" : res_last_ck,
                 " (lower train.lr, check the data, or skip such batches with --skip-nonfinite)");
        {
          NoGradGuard ng;
          for (size_t i = 0; i < saved_buffers.size(); ++i) model->buffers()[i].second.copy_(saved_buffers[i].second);
        }
        ++st.skipped, ++st.skipped_total;
        bar.update(1, "skipped a non-finite batch");
        if (stop_requested() && st.step_in_epoch + 1 < src.batches_per_epoch()) {
          ++st.step_in_epoch;
          stop = true;
          res.stop_reason = "signal";
          break;
        }
        continue;
      }
      if (!gstep) {
        optim->step();
        optim->zero_grad();
      }
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
      if (stop_requested() && st.step_in_epoch + 1 < src.batches_per_epoch()) {  // SIGINT/SIGTERM: stop here
        ++st.step_in_epoch;
        stop = true;
        res.stop_reason = "signal";
        break;
      }
    }
    bar.finish(stop ? std::string("stopped (") + (res.stop_reason == "signal" ? "signal" : "max_steps") +
                          "), resumable with --resume"
                    : std::string());
    if (stop) {  // mid-epoch stop: a checkpoint at this sampler position, no epoch line
      save_ck(last_ck);
      break;
    }
    // ---- end of epoch ----
    json line = {{"epoch", st.epoch + 1}, {"steps", st.step},
                 {"train_task_loss", st.sum_task / st.rows}, {"train_prior_loss", st.sum_prior / st.rows},
                 {"train_total_loss", st.sum_total / st.rows}, {"train_examples", st.rows},
                 {"examples_per_s", st.rows / std::max(st.seconds, 1e-9)}, {"train_seconds", st.seconds},
                 {"skipped_batches", st.skipped}};
    double key = st.sum_total / st.rows;  // without validation data the training loss decides
    if (data.valid) {
      auto t0 = std::chrono::steady_clock::now();
      // profile models: the validation NLL, JSD and count correlations too (what BPNet users watch per epoch)
      EvalResult v;
      try {
        v = evaluate_source(*model, *data.valid, cfg.prior, t.counts_loss_weight, ctx, data.valid_name,
                            /*full_profile_metrics=*/true);
      } catch (const Error& e) {  // the weights diverged without a non-finite training loss: say when, and what is kept
        if (std::string(e.what()).find("is not finite") == std::string::npos) throw;  // I/O and data errors as they are
        throw Error(std::string(e.what()) + ", validating epoch " + std::to_string(st.epoch + 1) + " (step " +
                    std::to_string(st.step) + "); last good checkpoint: " +
                    (res_last_ck.empty() ? std::string("none yet") : res_last_ck) +
                    " (the epoch's training is not kept; lower train.lr or check the data" +
                    (opt.skip_nonfinite ? "; --skip-nonfinite skips training batches, not validation)" : ")"));
      }
      line.update(v.to_json("valid_"));
      line["valid_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      key = t.early_stopping_on == "task" ? v.task : v.total;
    }
    st.epoch += 1;
    st.step_in_epoch = 0;
    st.sum_task = st.sum_prior = st.sum_total = st.rows = st.seconds = 0;
    st.skipped = 0;
    if (key < st.best_value) {
      st.best_value = key;
      st.best_epoch = st.epoch;
      best_sd = deep_copy(model->state_dict());  // a real copy (the reference aliases: §8.2)
      save_weights("best.safetensors", best_sd);
    }
    line["best_epoch"] = st.best_epoch;
    st.history.push_back(key);
    if (static_cast<int64_t>(st.history.size()) > t.patience + 1) st.history.erase(st.history.begin());
    if (t.early_stopping && early_stop(st.history, st.epoch, t.patience, t.min_delta, t.min_epochs))
      stop = true, res.stop_reason = "early_stopping";
    // A max_steps or signal stop at an epoch's end is recorded in its line; the checkpoints below are written
    // either way.
    if (!stop && t.max_steps > 0 && st.step >= t.max_steps) stop = true, res.stop_reason = "max_steps";
    if (!stop && stop_requested() && st.epoch < t.epochs) stop = true, res.stop_reason = "signal";
    line["stop"] = stop ? json(res.stop_reason) : json(nullptr);
    {
      std::ofstream m(metrics_path, std::ios::app);
      m << line.dump() << "\n";
      LP_CHECK(m.good(), metrics_path, ": write failed");
    }
    epoch_rng = sampler.state();
    save_ck(last_ck);  // first: a kill before epoch_<n> leaves a resumable folder (run_files)
    save_ck((ckdir / ("epoch_" + std::to_string(st.epoch) + ".safetensors")).string());
    save_weights("model.safetensors", model->state_dict());
    if (!opt.quiet) {
      std::fprintf(log, "epoch %lld: train loss %.5f", static_cast<long long>(st.epoch), line["train_total_loss"].get<double>());
      if (line.contains("valid_total_loss") && line["valid_total_loss"].is_number())
        std::fprintf(log, ", valid loss %.5f (task %.5f, prior %.5f)", line["valid_total_loss"].get<double>(),
                     line["valid_task_loss"].get<double>(), line["valid_prior_loss"].get<double>());
      if (line.contains("valid_auroc") && line["valid_auroc"].is_number())
        std::fprintf(log, ", valid auROC %.4f", line["valid_auroc"].get<double>());
      std::string eta;  // the rest of the run at this process's mean epoch time (early stopping may end it sooner)
      if (!stop && st.epoch < t.epochs) {
        const double per = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count() /
                           (static_cast<double>(st.epoch) - first_epoch);
        eta = ", run ETA " + Progress::format_duration(per * static_cast<double>(t.epochs - st.epoch));
      }
      std::fprintf(log, ", %.1f ex/s%s%s\n", line["examples_per_s"].get<double>(),
                   stop && res.stop_reason == "early_stopping" ? " — early stop" : "", eta.c_str());
    }
  }
  if (gstep && !opt.quiet && model->device().is_cuda())
    std::fprintf(log, "lowpass train: CUDA graph: %lld steps replayed, %lld captures\n",
                 static_cast<long long>(gstep->replays()), static_cast<long long>(gstep->captures()));
  gstep.reset();  // the graph's memory goes back before the test evaluation
  save_weights("model.safetensors", model->state_dict());
  if (best_sd.empty()) {  // stopped before the first epoch ended
    best_sd = deep_copy(model->state_dict());
    save_weights("best.safetensors", best_sd);
  }
  res.epochs = st.epoch;
  res.steps = st.step;
  res.skipped_batches = st.skipped_total;
  res.last_checkpoint = res_last_ck;
  res.best_epoch = st.best_epoch;
  res.best_value = st.best_value;
  // Under the `tune` conv backend: the route each conv shape ran on, with every route's time (docs/cuda.md).
  if (dev.is_cuda() && cuda::conv_backend(ctx, dev.index) == cuda::ConvBackend::Tune) {
    const std::string rep = cuda::conv_tune_report();
    safetensors::write_file_atomic((dir / "conv_tune.txt").string(), rep);
  }
  if (data.test && res.stop_reason != "max_steps" && res.stop_reason != "signal") {
    model->load_state_dict(to_map(best_sd), true);
    EvalResult te = evaluate_source(*model, *data.test, cfg.prior, t.counts_loss_weight, ctx, data.test_name,
                                    /*full_profile_metrics=*/true);
    res.test = te.to_json("test_");
    res.test["best_epoch"] = st.best_epoch;
    safetensors::write_file_atomic((dir / "test_metrics.json").string(), res.test.dump(2) + "\n");
  }
  return res;
}

}  // namespace lowpass
