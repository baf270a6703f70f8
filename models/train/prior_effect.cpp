// Prior vs no prior on simulated data: per seed, train both and report test auROC and the mean
// high-frequency share Σ_{k≥K+1}|A_k| / Σ_{k≥1}|A_k| of grad×input on test positives (eval mode).
// Test: build/tests/lowpass_tests -ts=train
#include "models/train/prior_effect.h"

#include <filesystem>
#include <fstream>
#include <numeric>

#include "engine/error.h"
#include "engine/npz.h"
#include "engine/safetensors.h"
#include "models/data/meme.h"
#include "models/data/simulate.h"
#include "models/eval/fourier_metrics.h"
#include "models/loss/fourier_prior.h"
#include "models/train/config.h"
#include "models/train/evaluate.h"
#include "models/train/trainer.h"

namespace lowpass {

namespace fs = std::filesystem;
using nlohmann::json;

double PriorEffectSummary::mean(bool prior, double PriorEffectRun::*field) const {
  double s = 0;
  int n = 0;
  for (const auto& r : runs)
    if (r.prior == prior) s += r.*field, ++n;
  return n ? s / n : 0.0;
}

PriorEffectSummary run_prior_effect(const PriorEffectOptions& o) {
  LP_CHECK(!o.work_dir.empty(), "prior effect: work_dir is required");
  // Absolute from here on: the run configs hold absolute data paths, and a relative one would be read against the
  // work dir a second time (`lowpass demo` with the default --out demo_out looked for demo_out/demo_out/data).
  const fs::path work = fs::absolute(o.work_dir).lexically_normal();
  const fs::path data = work / "data";
  std::error_code ec;
  fs::create_directories(data, ec);
  LP_CHECK(!ec, work.string(), ": cannot create the work folder ", data.string(), ": ", ec.message());
  Motif motif = default_motif();
  Rng rng(o.data_seed);
  const int64_t sizes[3] = {o.n_train, o.n_valid, o.n_test};
  const char* names[3] = {"train", "valid", "test"};
  for (int k = 0; k < 3; ++k) {
    BinarySimOptions so;
    so.n = sizes[k];
    so.length = o.length;
    so.gc = k == 0 ? o.gc : 0.5;
    so.motif_bound = std::min<int64_t>(100, (o.length - motif.width()) / 2);
    ArrayDataset ds = simulate_binary(motif, so, rng);
    write_array_dataset(ds, (data / (std::string(names[k]) + ".npz")).string());
  }
  PriorEffectSummary sum;
  sum.freq_limit = default_freq_limit("binary", o.length);  // the paper's 0.15 cycles/bp
  ArrayDataset test = read_array_dataset((data / "test.npz").string(), "binary");
  std::vector<int64_t> positives;
  for (int64_t i = 0; i < test.n; ++i)
    if (test.status[static_cast<size_t>(i)] == 1) positives.push_back(i);
  {  // the test positives' one-hot, for pictures of the attributions saved below (lowpass demo, lowpass report)
    Context hc(1, 0);
    const size_t row = static_cast<size_t>(4 * test.length);
    std::vector<float> ohe;
    for (int64_t i : positives)
      ohe.insert(ohe.end(), test.x.begin() + static_cast<std::ptrdiff_t>(i * row),
                 test.x.begin() + static_cast<std::ptrdiff_t>((i + 1) * row));
    sum.positives_ohe = (data / "test_positives_ohe.npz").string();
    sum.positives = static_cast<int64_t>(positives.size());
    npy::save_npz(sum.positives_ohe,
                  NamedTensors{{"arr_0", Tensor::from_vector(hc, {static_cast<int64_t>(positives.size()), 4,
                                                                  test.length}, ohe)}});
  }

  for (uint64_t seed : o.seeds) {
    for (bool with_prior : {false, true}) {
      json model = {{"type", "binary"}, {"input_length", o.length}};
      model.update(o.model);
      json train = {{"seed", seed}, {"progress", !o.quiet}};
      train.update(o.train);
      json prior = {{"type", with_prior ? "fourier" : "none"}, {"freq_limit", sum.freq_limit},
                    {"attribution_mode", "eval"}};
      if (with_prior) prior.update(o.prior);
      json user = {{"model", model},
                   {"data", {{"train", (data / "train.npz").string()}, {"valid", (data / "valid.npz").string()},
                             {"test", (data / "test.npz").string()}}},
                   {"train", train},
                   {"prior", prior}};
      const std::string run = (with_prior ? "prior_seed" : "noprior_seed") + std::to_string(seed);
      const fs::path dir = work / "runs" / run;
      fs::remove_all(dir);
      TrainConfig cfg = resolve_config(user, run, work.string());
      TrainOptions to;
      to.out_dir = dir.string();
      to.quiet = o.quiet;
      TrainResult r = train_model(cfg, to);

      // Attributions of the best weights on the test positives, eval mode.
      Context ctx(static_cast<int>(cfg.train.threads), seed);
      auto m = make_model(cfg.model, ctx);
      m->load_state_dict(safetensors::load(ctx, (dir / "best.safetensors").string()).map(), true);
      Tensor attr = eval_attributions(*m, test, positives, ctx);
      auto shares = high_freq_shares(attr, sum.freq_limit);
      const std::string attr_path = (dir / "test_positives_attr.npz").string();
      npy::save_npz(attr_path, NamedTensors{{"arr_0", attr}});

      PriorEffectRun pr;
      pr.seed = seed;
      pr.prior = with_prior;
      pr.test_auroc = r.test.value("test_auroc", 0.0);
      pr.hf_share = std::accumulate(shares.begin(), shares.end(), 0.0) / static_cast<double>(shares.size());
      pr.epochs = r.epochs;
      pr.dir = dir.string();
      pr.attr_path = attr_path;
      std::ifstream mf(dir / "metrics.jsonl");
      std::string line;
      double eps = 0;
      int64_t ne = 0;
      while (std::getline(mf, line))
        if (!line.empty()) eps += json::parse(line).value("examples_per_s", 0.0), ++ne;
      pr.examples_per_s = ne ? eps / static_cast<double>(ne) : 0.0;
      if (o.log)
        std::fprintf(o.log, "%-16s epochs %lld  test auROC %.4f  high-freq share %.4f  %.1f ex/s\n", run.c_str(),
                     static_cast<long long>(pr.epochs), pr.test_auroc, pr.hf_share, pr.examples_per_s);
      sum.runs.push_back(pr);
    }
  }
  return sum;
}

}  // namespace lowpass
