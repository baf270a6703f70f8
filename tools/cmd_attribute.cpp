// `lowpass attribute --model DIR --npz X.npz --method grad|gradxinput|deepshap_ref|deepshap|ism|ig --out DIR`:
// ohe.npz and attr.npz (N, 4, L) in the layout modisco-lite reads (hypothetical scores), streamed in
// batches, and attribute.json (model type, method, target, inputs); deepshap/ig also write convergence.json
// (per-example summation-to-delta error).
// Several --model directories (folds): the mean of their scores (attr::attribute_mean).
// Genome regions: --regions BED --genome FASTA instead of --npz: windows centred on the summits, plus
// regions.bed (row → window) and attr.bw (per-base Σ_b hyp·onehot, mean over overlapping windows).
// Test: build/tests/lowpass_tests -ts=attr (library parts); docs/attribution.md.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "engine/npz.h"
#include "engine/safetensors.h"
#include "models/attr/attribute.h"
#include "models/attr/genome_regions.h"
#include "models/attr/model_dir.h"
#include "models/data/bigwig.h"
#include "models/data/json_file.h"
#include "models/train/progress.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"
#include "tools/interrupt.h"

namespace lowpass::tools {

std::string attribution_model_type(const std::string& attr_file, int64_t N, int64_t L) {
  namespace fs = std::filesystem;
  const fs::path info = fs::path(attr_file).parent_path() / "attribute.json";
  std::error_code ec;
  if (!fs::is_regular_file(info, ec)) return "";
  const nlohmann::json j = parse_json_file(info.string());
  if (!j.is_object() || j.value("format", "") != "lowpass-attribution") return "";
  const auto n = j.find("rows"), l = j.find("input_length"), t = j.find("model_type");
  if (n == j.end() || l == j.end() || !n->is_number_integer() || !l->is_number_integer() || *n != N || *l != L)
    return "";  // another file's (attr.npz replaced, or a file put beside it)
  LP_CHECK(t != j.end() && t->is_string() && (*t == "binary" || *t == "profile"), info.string(),
           ": model_type must be \"binary\" or \"profile\"");
  return t->get<std::string>();
}

CommandRun add_attribute_command(CLI::App& app) {
  struct Args : ModelInputArgs {
    std::string out, method = "deepshap", target;
    int64_t refs = -1, steps = 50, max_steps = 450, batch = 16, max_batch = 64;
    bool ism_full = false;
    double tolerance = 0.05;
    uint64_t seed = 20200219;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("attribute", "Attribution scores (hypothetical, N×4×L) for modisco-lite");
  add_model_input_options(sub, *a, "Model directory",
                          "Input npz with x (N, 4, L) (and control for profile models with controls)");
  sub->add_option("--out", a->out, "Output directory (ohe.npz, attr.npz, attribute.json, convergence.json)")
      ->required();
  sub->add_option("--method", a->method, "grad | gradxinput | deepshap_ref | deepshap | ism | ig")
      ->check(CLI::IsMember({"grad", "gradxinput", "deepshap_ref", "deepshap", "ism", "ig"}));
  sub->add_option("--target", a->target,
                  "logits[:t] | profile[:t] | profile_raw[:t] | counts[:t] (default: logits or profile)")
      ->check(target_name());
  sub->add_option("--refs", a->refs, "Dinucleotide-shuffled references (default 10 deepshap_ref, 20 deepshap)")
      ->check(integer_at_least(1))
      ->default_str("");  // -1: the method's default
  sub->add_option("--seed", a->seed, "Seed of the shuffles (example i uses seed + i)");
  sub->add_option("--ig-steps", a->steps, "Integrated-gradient steps (midpoint rule), first try")
      ->check(integer_at_least(1));
  sub->add_option("--ig-tolerance", a->tolerance,
                  "Relative completeness error above which an example is redone with 3x the steps (0: never)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--ig-max-steps", a->max_steps, "Integrated-gradient steps per example at most")
      ->check(integer_at_least(1));
  sub->add_option("--batch", a->batch, "Sequences attributed per chunk (memory bound)")->check(integer_at_least(1));
  sub->add_option("--max-batch", a->max_batch, "Sequences per forward pass inside a chunk")
      ->check(integer_at_least(1));
  sub->add_flag("--ism-full", a->ism_full, "ism: a whole forward pass per mutant (the reference for fastISM)")
      ->group("");  // hidden: for tests and the bench
  return [a]() {
    Context ctx(a->threads, 0);
    ModelInputs in(ctx, *a, "attribute");
    Model& model = in.model();
    attr::ModelSet& set = in.set;
    const attr::RegionWindows& rw = in.rw;
    const int64_t N = in.x().shape[0], L = in.x().shape[2];
    std::unique_ptr<attr::TrackAccumulator> track;
    std::vector<int64_t> order;  // windows in genome order: attr.bw is written as the windows pass
    bool streamed = false;
    if (!a->regions.empty()) {
      track = std::make_unique<attr::TrackAccumulator>(rw.fasta->chrom_sizes());
      streamed = attr::windows_in_order_or_note(rw, order, "attribute",
                                                "attr.bw is held until the end (8 bytes per covered base)", std::cerr);
    }
    attr::AttrOptions o;
    o.method = a->method;
    o.target = a->target.empty() ? attr::default_target(model) : attr::parse_target(a->target);
    o.refs = a->refs;
    o.seed = a->seed;
    o.ig_steps = a->steps;
    o.ig_tolerance = a->tolerance;
    o.ig_max_steps = a->max_steps;
    o.max_batch = a->max_batch;
    o.ism_full = a->ism_full;
    namespace fs = std::filesystem;
    prepare_output_dir(a->out, {"ohe.npz", "attr.npz", "attr.bw", "regions.bed"});
    if (streamed) track->stream((fs::path(a->out) / "attr.bw").string(), order);
    StopOnSignal stop_on_signal;  // SIGINT/SIGTERM: stop between batches, removing the unfinished npz
    // ohe.npz: the input as float32 (N, 4, L), appended batch by batch beside attr.npz (each row read once). The
    // two are renamed into place together after the last batch: a run that fails or is stopped leaves the earlier
    // pair as it was, never a new ohe beside an old attr.
    npy::NpzWriter ohe((fs::path(a->out) / "ohe.npz").string());
    ohe.begin("arr_0", npy::NpyDType::F4, {N, 4, L});
    npy::NpzWriter w((fs::path(a->out) / "attr.npz").string());
    w.begin("arr_0", npy::NpyDType::F4, {N, 4, L});
    nlohmann::json conv = nlohmann::json::array();
    double worst = 0, worst_model = 0;
    int64_t refined = 0, above = 0, nonfinite = 0;  // ig: examples redone with more steps; still above the tolerance at the end
    Progress bar("attribute " + a->method, N, "seq", !a->quiet);
    for (int64_t s = 0; s < N; s += a->batch) {
      const int64_t n = std::min(a->batch, N - s);
      Tensor x = in.rows(ctx, s, n);
      ohe.append(x.dtype() == DType::F32 ? x : cast(x, DType::F32));
      auto r = attr::attribute_mean(set.pointers(), x, in.control_rows(ctx, s, n), o, s);
      w.append(r.hyp);
      if (track) {  // per-base contribution Σ_b hyp·onehot
        auto h = r.hyp.to_vector<float>();
        auto xo = x.to_vector<float>();
        std::vector<float> v(static_cast<size_t>(L));
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t p = 0; p < L; ++p) {
            float acc = 0;
            for (int64_t b = 0; b < 4; ++b) acc += h[(i * 4 + b) * L + p] * xo[(i * 4 + b) * L + p];
            v[p] = acc;
          }
          track->add(rw.chrom[s + i], rw.start[s + i], v.data(), L);
        }
        if (streamed && s + n < N) track->release(rw.chrom[s + n], rw.start[s + n]);
      }
      for (size_t i = 0; i < r.delta.size(); ++i) {
        conv.push_back({{"index", s + static_cast<int64_t>(i)}, {"delta", r.delta[i]}, {"relative", r.delta_rel[i]}});
        // Ensembles: the worst model's error too, which is what each model's refinement acted on.
        const double judged = r.model_delta_rel.empty() ? r.delta_rel[i] : r.model_delta_rel[i];
        if (!r.model_delta_rel.empty()) {
          conv.back()["model_relative"] = r.model_delta_rel[i];
          if (std::isfinite(judged)) worst_model = std::max(worst_model, judged);
        }
        if (!r.steps.empty()) {
          conv.back()["steps"] = r.steps[i];
          refined += r.steps[i] > o.ig_steps;
          above += o.ig_tolerance > 0 && !(judged <= o.ig_tolerance);
        }
        if (std::isfinite(r.delta_rel[i])) worst = std::max(worst, r.delta_rel[i]);
        else ++nonfinite;
      }
      bar.update(n, r.delta.empty() ? "" : "max rel delta " + std::to_string(worst));
      throw_if_interrupted();
    }
    ohe.end();
    w.end();
    bar.finish();
    // attr.bw and regions.bed go to temporaries first, renamed into place just after ohe.npz and attr.npz.
    std::unique_ptr<BigWigWriter> bw;
    std::unique_ptr<safetensors::AtomicFile> bed;
    if (track) {
      Progress wbar("write attr.bw", track->blocks() * attr::TrackAccumulator::kBlock, "bases", !a->quiet);
      bw = track->write((fs::path(a->out) / "attr.bw").string(), [&] {
        wbar.update(attr::TrackAccumulator::kBlock);
        throw_if_interrupted();
      });
      wbar.finish();
      bed = std::make_unique<safetensors::AtomicFile>((fs::path(a->out) / "regions.bed").string());
      attr::write_region_bed(rw, *bed);
      throw_if_interrupted();
    }
    // attribute.json: what made the scores (the model type sets evaluate's default high-frequency cut-off). The
    // earlier one goes before the pair is renamed and this one is written whole after it, so that none ever
    // describes a pair it did not come with (a kill in between leaves none).
    nlohmann::json info{{"format", "lowpass-attribution"},
                        {"lowpass_version", LOWPASS_VERSION},
                        {"model_type", model.type()},
                        {"models", a->models},
                        {"weights", a->weights},
                        {"method", a->method},
                        {"target", o.target.name()},
                        {"rows", N},
                        {"input_length", L},
                        {"seed", a->seed}};
    if (a->method == "deepshap" || a->method == "deepshap_ref") info["refs"] = o.refs_used();
    if (a->method == "ig")
      info.update({{"ig_steps", o.ig_steps}, {"ig_tolerance", o.ig_tolerance}, {"ig_max_steps", o.ig_max_steps}});
    info["input"] = !a->regions.empty() ? nlohmann::json{{"regions", a->regions}, {"genome", a->genome}}
                    : !a->fasta.empty() ? nlohmann::json{{"fasta", a->fasta}}
                                        : nlohmann::json{{"npz", a->npz}};
    std::error_code ec;
    fs::remove(fs::path(a->out) / "attribute.json", ec);
    LP_CHECK(!ec, a->out, "/attribute.json: cannot remove the earlier run's (", ec.message(), ")");
    w.close();
    ohe.close();
    if (bw) bw->commit(), bed->commit();
    safetensors::write_file_atomic((fs::path(a->out) / "attribute.json").string(), info.dump(1) + "\n");
    if (!conv.empty()) {  // written whole (temp + rename): a full disk fails here, never leaves half a JSON
      nlohmann::json j{{"method", a->method}, {"target", o.target.name()}, {"max_relative_delta", worst},
                       {"nonfinite", nonfinite}};
      if (set.size() > 1) j["models"] = a->models, j["max_model_relative_delta"] = worst_model;  // scores: the mean
      if (a->method == "ig")
        j.update({{"ig_steps", o.ig_steps}, {"ig_tolerance", o.ig_tolerance}, {"ig_max_steps", o.ig_max_steps},
                  {"refined", refined}, {"above_tolerance", above}});
      j["examples"] = conv;
      const std::string text = j.dump(1) + "\n";
      safetensors::write_file_atomic((fs::path(a->out) / "convergence.json").string(), text);
    }
    if (!a->fasta.empty()) {
      attr::write_sequence_table(in.fasta, (fs::path(a->out) / "sequences.tsv").string());
      std::cout << "wrote " << a->out << "/sequences.tsv; ";
    }
    if (track) {
      std::cout << "wrote " << a->out << "/attr.bw and regions.bed; ";
    }
    std::vector<std::string> written = {"ohe.npz", "attr.npz", "attribute.json"};
    if (!conv.empty()) written.push_back("convergence.json");
    if (!a->fasta.empty()) written.push_back("sequences.tsv");
    if (track) written.push_back("attr.bw"), written.push_back("regions.bed");
    remove_earlier_side_files(a->out, {"attr.bw", "convergence.json"}, written, "predictions.npz");
    std::cout << "wrote " << a->out << "/ohe.npz and attr.npz (" << N << " x 4 x " << L << ", method " << a->method
              << ", target " << o.target.name()
              << (set.size() > 1 ? ", mean of " + std::to_string(set.size()) + " models" : std::string()) << ")";
    if (!conv.empty()) std::cout << "; max relative summation-to-delta error " << worst;
    if (!conv.empty() && set.size() > 1) std::cout << " (of any one model: " << worst_model << ")";
    if (nonfinite > 0) std::cout << " (" << nonfinite << " example(s) with a non-finite error: NaN in their scores?)";
    if (a->method == "ig" && o.ig_tolerance > 0)
      std::cout << "; " << refined << " of " << N << " examples redone with more steps, " << above
                << " still above the tolerance " << o.ig_tolerance << " at " << o.ig_max_steps << " steps";
    std::cout << "\n";
    return 0;
  };
}

}  // namespace lowpass::tools
