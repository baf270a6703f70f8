// `lowpass data-stats --config C.json [--json]`: what training would sample from the config's data, per split:
// peaks kept and dropped (per reason), positive bins/windows, negatives per epoch, batches per epoch and, for
// profile models, the suggested counts-loss weight (median total count in the output window / 10).
// Test: build/tests/lowpass_tests -ts=genome_train (models/train/datasets.h data_stats)
#include <cstring>
#include <iostream>

#include <nlohmann/json.hpp>

#include "models/train/config.h"
#include "models/train/datasets.h"
#include "tools/commands.h"

namespace lowpass::tools {

CommandRun add_data_stats_command(CLI::App& app) {
  struct Args {
    std::string config;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("data-stats", "Print what training would sample from a config's data");
  sub->add_option("--config", a->config, "JSON training config")->required();
  sub->add_flag("--json", a->json, "Print one JSON document instead of the summary");
  return [a]() {
    TrainConfig cfg = load_config(a->config);
    const nlohmann::json st = data_stats(cfg);
    if (a->json) {
      std::cout << st.dump(2) << "\n";
      return 0;
    }
    std::cout << "data-stats for " << a->config << " (" << cfg.model_type << " model)\n";
    for (const char* split : {"train", "valid", "test"}) {
      const nlohmann::json& s = st[split];
      if (s.is_null()) {
        std::cout << split << ": none\n";
        continue;
      }
      std::string what = s["describe"].get<std::string>();
      if (what.rfind(std::string(split) + ": ", 0) == 0) what.erase(0, std::strlen(split) + 2);  // npz: "train: f.npz"
      std::cout << split << ": " << what << "\n  positives " << s.at("positives")
                << ", negatives/epoch " << s.at("negatives_per_epoch") << ", batches/epoch "
                << s.at("batches_per_epoch") << "\n";
      if (s.contains("stats")) {
        std::cout << "  ";
        bool first = true;
        for (auto& [k, v] : s["stats"].items()) {
          std::cout << (first ? "" : ", ") << k << " " << v.dump();
          first = false;
        }
        std::cout << "\n";
      }
    }
    if (st.contains("suggested_counts_loss_weight"))
      std::cout << "suggested train.counts_loss_weight: " << st["suggested_counts_loss_weight"].get<double>()
                << " (median positive total count / 10; config has "
                << (cfg.train.counts_loss_weight_auto ? std::string("\"auto\": this value")
                                                      : nlohmann::json(cfg.train.counts_loss_weight).dump())  // 100.0, not 100.000000
                << ")\n";
    return 0;
  };
}

}  // namespace lowpass::tools
