// `lowpass simulate`: write train/valid/test .npz of the paper's simulated set (REFERENCE §5.3) or a
// profile simulation, the true motif positions (motif_positions.tsv) and a ready config (train_config.json).
// Test: build/tests/lowpass_tests -ts=simulate (library); docs/cli.md (command)
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "models/data/meme.h"
#include "models/arch/profile_net.h"
#include "models/data/simulate.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"

namespace lowpass::tools {

namespace fs = std::filesystem;

namespace {
struct SimulateArgs {
  std::string out, motif_file, motif_name, type = "binary";
  int64_t n = 4000, n_valid = -1, n_test = -1, length = -1, output_length = -1, motif_bound = 100;
  double gc = 0.5, positive_fraction = 0.5;
  uint64_t seed = 1;
};

void write_positions(std::ostream& f, const std::string& split, const ArrayDataset& ds, int64_t width) {
  const auto& st = ds.extra.at("motif_start");
  const auto& sd = ds.extra.at("motif_strand");
  const int64_t per = st.shape.size() > 1 ? st.shape[1] : 1;
  for (int64_t i = 0; i < ds.n; ++i)
    for (int64_t j = 0; j < per; ++j) {
      int64_t s = st.values[static_cast<size_t>(i * per + j)];
      if (s < 0) continue;
      f << split << '\t' << i << '\t' << s << '\t' << s + width << '\t'
        << (sd.values[static_cast<size_t>(i * per + j)] == 1 ? '+' : '-') << '\n';
    }
}
}  // namespace

CommandRun add_simulate_command(CLI::App& app) {
  auto a = std::make_shared<SimulateArgs>();
  CLI::App* sub = app.add_subcommand("simulate", "Simulate a dataset with known motif positions (npz + TSV)");
  sub->add_option("--out", a->out, "Output directory")->required();
  sub->add_option("--motif", a->motif_file, "MEME motif file (default: bundled JASPAR MA0080.6 SPI1)");
  sub->add_option("--motif-name", a->motif_name, "Motif id or name in the MEME file (default: the first)");
  sub->add_option("--type", a->type, "binary | profile")->check(CLI::IsMember({"binary", "profile"}));
  sub->add_option("--n", a->n, "Training examples (positives + negatives)")->check(integer_at_least(1));
  // -1 = not given (the default in the help text); a given value is checked.
  sub->add_option("--n-valid", a->n_valid, "Validation examples (default n/5)")
      ->check(integer_at_least(1))
      ->default_str("");
  sub->add_option("--n-test", a->n_test, "Test examples (default n/5)")->check(integer_at_least(1))->default_str("");
  sub->add_option("--gc", a->gc, "GC content of training positives' background (valid/test use 0.5)")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--positive-fraction", a->positive_fraction, "Fraction of positives")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--length", a->length, "Input length (default 1000 binary, 1346 profile)")
      ->check(integer_at_least(1))
      ->default_str("");
  sub->add_option("--output-length", a->output_length, "Profile output length (default 1000)")
      ->check(integer_at_least(1))
      ->default_str("");
  sub->add_option("--motif-bound", a->motif_bound, "Motif start within the central W + 2·bound bp")
      ->check(integer_at_least(0));
  sub->add_option("--seed", a->seed, "Random seed");
  return [a]() {
    Motif motif;
    std::string motif_src = "bundled SPI1 (JASPAR MA0080.6)";
    if (a->motif_file.empty()) {
      motif = default_motif();
    } else {
      auto all = read_meme(a->motif_file);
      motif = select_motif(all, a->motif_name, a->motif_file);
      motif_src = a->motif_file + " " + motif.id;
    }
    const bool binary = a->type == "binary";
    const int64_t nv = a->n_valid >= 0 ? a->n_valid : std::max<int64_t>(1, a->n / 5);
    const int64_t nt = a->n_test >= 0 ? a->n_test : std::max<int64_t>(1, a->n / 5);
    int64_t L = a->length, O = a->output_length;
    if (!binary) {
      // The profile model's geometry ties the lengths (input = output + 346 by default): derive the one not given
      // and refuse a pair the written train_config.json could not train, before anything is written.
      nlohmann::json m = nlohmann::json::object();
      if (L > 0) m["input_length"] = L;
      if (O > 0) m["output_length"] = O;
      try {
        const ProfileNetConfig c = ProfileNetConfig::from_json(m);
        L = c.input_length, O = c.output_length;
      } catch (const Error& e) {
        LP_CHECK(false, "simulate --type profile: --length/--output-length: ", e.what());
      }
    }
    make_output_folder(a->out, "the output folder (--out)");
    Rng rng(a->seed);
    std::ostringstream pos;  // motif_positions.tsv, written (temp + rename) after the npz files
    pos << "split\tindex\tstart\tend\tstrand\n";
    const char* splits[3] = {"train", "valid", "test"};
    const int64_t sizes[3] = {a->n, nv, nt};
    for (int k = 0; k < 3; ++k) {
      ArrayDataset ds;
      if (binary) {
        BinarySimOptions o;
        o.n = sizes[k];
        o.positive_fraction = a->positive_fraction;
        if (L > 0) o.length = L;
        o.gc = k == 0 ? a->gc : 0.5;  // REFERENCE §5.3: validation and test positives use gc 0.5
        o.motif_bound = a->motif_bound;
        ds = simulate_binary(motif, o, rng);
        L = o.length;
      } else {
        ProfileSimOptions o;
        o.n = sizes[k];
        o.positive_fraction = a->positive_fraction;
        if (L > 0) o.input_length = L;
        if (O > 0) o.output_length = O;
        o.gc = k == 0 ? a->gc : 0.5;
        o.motif_bound = a->motif_bound;
        ds = simulate_profile(motif, o, rng);
        L = o.input_length, O = o.output_length;
      }
      fs::path f = fs::path(a->out) / (std::string(splits[k]) + ".npz");
      ds.source = f.string();
      write_array_dataset(ds, f.string());
      write_positions(pos, splits[k], ds, motif.width());
    }
    nlohmann::json model = {{"type", a->type}, {"input_length", L}};
    if (!binary) model["output_length"] = O, model["num_strands"] = 2, model["controls"] = "shared";
    nlohmann::json cfg = {{"model", model},
                          {"data", {{"train", "train.npz"}, {"valid", "valid.npz"}, {"test", "test.npz"}}}};
    safetensors::write_file_atomic((fs::path(a->out) / "motif_positions.tsv").string(), pos.str());
    safetensors::write_file_atomic((fs::path(a->out) / "train_config.json").string(), cfg.dump(2) + "\n");
    nlohmann::json info = {{"type", a->type}, {"motif", motif_src}, {"motif_width", motif.width()},
                           {"n_train", a->n}, {"n_valid", nv}, {"n_test", nt}, {"gc_train", a->gc},
                           {"positive_fraction", a->positive_fraction}, {"length", L},
                           {"motif_bound", a->motif_bound}, {"seed", a->seed}};
    if (!binary) info["output_length"] = O;
    safetensors::write_file_atomic((fs::path(a->out) / "simulation.json").string(), info.dump(2) + "\n");
    std::cout << "wrote " << a->out << "/{train,valid,test}.npz (" << a->n << "/" << nv << "/" << nt << " "
              << a->type << " examples of length " << L << "), motif_positions.tsv, train_config.json\n";
    return 0;
  };
}

}  // namespace lowpass::tools
