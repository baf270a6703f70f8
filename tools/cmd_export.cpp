// `lowpass export --config C.json --split test --out test.npz [--revcomp]`: one split of a training config's data
// as an npz (x, y, status, and control for profile models with controls), so that `predict`, `attribute` and
// `evaluate` run on what a genome (FASTA + peaks + bigWig) or FASTA-sequence config trains and tests on. valid/test
// are exactly the rows the trainer evaluates on (the same sampled negatives); train is one epoch of the sampler.
// Test: build/tests/lowpass_tests -ts=genome_train (models/train/datasets.h export_split)
#include <filesystem>
#include <iostream>

#include "models/train/config.h"
#include "models/train/datasets.h"
#include "tools/commands.h"

namespace lowpass::tools {

CommandRun add_export_command(CLI::App& app) {
  struct Args {
    std::string config, split = "test", out;
    bool revcomp = false, quiet = false;
    uint64_t seed = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("export", "Write one split of a training config's data as an npz "
                                                "(x, y, status[, control]) for predict, attribute and evaluate");
  sub->add_option("--config", a->config, "JSON training config (data.genome, data.sequences or npz data)")
      ->required();
  sub->add_option("--split", a->split, "Which split")->check(CLI::IsMember({"train", "valid", "test"}));
  sub->add_option("--out", a->out, "Output .npz file")->required();
  sub->add_flag("--revcomp", a->revcomp, "Also write each batch's reverse complements (as the trainer scores them)");
  sub->add_flag("--quiet", a->quiet, "No progress bar");
  sub->add_option("--seed", a->seed, "Seed of the sampled negatives (0: the trainer's valid/test draw)");
  return [a]() {
    // Before the split is drawn, not at the final rename after it.
    LP_CHECK(!std::filesystem::is_directory(a->out), a->out, ": is a folder; --out names the npz file (e.g. ",
             (std::filesystem::path(a->out) / (a->split + ".npz")).string(), ")");
    check_output_folder(std::filesystem::path(a->out).parent_path().string(), "the folder of --out");
    TrainConfig cfg = load_config(a->config);
    SplitSource split = open_split(cfg, a->split, a->revcomp);
    // Its folder is created, as predict's and evaluate's are (after the data loaded: a failed load makes none).
    if (const auto parent = std::filesystem::path(a->out).parent_path(); !parent.empty())
      make_output_folder(parent.string(), "the folder of --out");
    // Streamed: one batch in memory at a time, not the split (docs/cli.md, export).
    const ExportSummary r = write_split_npz(split, a->seed, a->out, !a->quiet);
    std::cout << "wrote " << a->out << ": " << r.rows << " rows of length " << r.length << " (" << r.status_ones
              << " with status 1): " << (split.revcomp ? r.rows / 2 : r.rows) << " " << a->split << " examples"
              << (split.revcomp ? " and their reverse complements"
                  : a->revcomp ? " (a profile model's test split has no reverse complements: the trainer tests "
                                 "without them)"
                               : "")
              << "\n";
    return 0;
  };
}

}  // namespace lowpass::tools
