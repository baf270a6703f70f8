// The README's main job as a library call: simulate the paper's binary set (REFERENCE §5.3), train
// with and without the Fourier prior over several seeds, and measure test auROC and the
// high-frequency share of grad×input on held-out positives (REFERENCE §4.5a). Used by `lowpass demo`
// and the end-to-end test. Test: build/tests/lowpass_tests -ts=train
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowpass {

struct PriorEffectOptions {
  std::string work_dir;                 // data/ and runs/<prior|noprior>_seed<s>/ are written here
  int64_t n_train = 2000, n_valid = 400, n_test = 400, length = 400;
  double gc = 0.5;                      // training positives' background GC content
  uint64_t data_seed = 1;
  std::vector<uint64_t> seeds{1, 2, 3}; // training seeds
  nlohmann::json model = nlohmann::json::object();  // overrides of the model section (type binary)
  nlohmann::json train = nlohmann::json::object();  // overrides of the train section
  nlohmann::json prior = nlohmann::json::object();  // overrides of the prior section (with-prior runs)
  bool quiet = true;
  std::FILE* log = nullptr;             // per-run summary lines (nullptr = none)
};

struct PriorEffectRun {
  uint64_t seed = 0;
  bool prior = false;
  double test_auroc = 0;
  double hf_share = 0;        // mean over test positives
  double examples_per_s = 0;  // training rows per second, mean over epochs
  int64_t epochs = 0;
  std::string dir;            // the run's model directory (metrics.jsonl, best.safetensors)
  std::string attr_path;      // DIR/test_positives_attr.npz: grad×input (P, 4, L) of the best weights
};

struct PriorEffectSummary {
  std::vector<PriorEffectRun> runs;
  int64_t freq_limit = 0;  // K used by the prior and the metric
  std::string positives_ohe;  // WORK/data/test_positives_ohe.npz: the one-hot (P, 4, L) the attributions belong to
  int64_t positives = 0;      // P
  double mean(bool prior, double PriorEffectRun::*field) const;
};

PriorEffectSummary run_prior_effect(const PriorEffectOptions& o);

}  // namespace lowpass
