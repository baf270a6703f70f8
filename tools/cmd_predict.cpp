// `lowpass predict --model DIR --npz X.npz --out DIR`: predictions.npz with the model's outputs in
// eval mode, one forward per batch: binary logits (N, T); profile logits (N, T, S, O) streamed, then log counts
// (N, T, S) kept in memory and written after them.
// Genome regions: --regions BED --genome FASTA instead of --npz (windows centred on summits), plus regions.bed and,
// for profile models, pred_t<t>_s<s>.bw = softmax(profile logits)·(exp(log counts) − 1) per base (the expected
// counts: the counts head predicts log(1 + n); mean over overlaps).
// Several --model directories (folds): the mean of their logits, profile logits and log counts (attr::forward_mean).
// Test: build/tests/lowpass_tests -ts=attr (library parts); docs/attribution.md.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>

#include "engine/npz.h"
#include "engine/safetensors.h"
#include "models/data/bigwig.h"
#include "models/attr/genome_regions.h"
#include "models/attr/model_dir.h"
#include "models/train/progress.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"
#include "tools/interrupt.h"

namespace lowpass::tools {

void check_model_input_options(const ModelInputArgs& a) {
  usage_check(!a.npz.empty() || !a.regions.empty() || !a.fasta.empty(), "give --npz, --fasta or --regions");
  usage_check(a.models.size() <= 1 || a.weights == "best" || a.weights == "last",
              "--weights " + a.weights + ": one weights file cannot serve " + std::to_string(a.models.size()) +
                  " --model directories (use best or last, or one --model)");
}

void add_model_input_options(CLI::App* sub, ModelInputArgs& a, const std::string& model_help,
                             const std::string& npz_help) {
  sub->add_option("--model", a.models, model_help + "; repeat it to average several models (e.g. the folds of "
                  "one experiment)")
      ->required()
      ->take_all();
  CLI::Option* npz = sub->add_option("--npz", a.npz, npz_help);
  CLI::Option* fasta = sub->add_option(
      "--fasta", a.fasta, "FASTA of sequences (each centred in the input length: cropped or N-padded; sequences.tsv)");
  CLI::Option* regions = sub->add_option(
      "--regions", a.regions, "BED/narrowPeak of genome regions (windows centred on summits; needs --genome)");
  CLI::Option* genome = sub->add_option("--genome", a.genome, "Reference FASTA for --regions");
  sub->add_option("--cache-dir", a.cache_dir, "Where to put the FASTA index when its folder is read-only")
      ->needs(regions);
  add_controls_option(sub, a.controls)->needs(regions);
  npz->excludes(regions);
  fasta->excludes(npz);
  fasta->excludes(regions);
  regions->needs(genome);
  genome->needs(regions);
  sub->parse_complete_callback([&a]() { check_model_input_options(a); });
  sub->add_option("--weights", a.weights,
                  "best | last | a .safetensors state_dict or a training checkpoint "
                  "(DIR/checkpoints/epoch_N.safetensors)")
      ->check(weights_choice());
  sub->add_option("--threads", a.threads, "CPU threads (0 = all)")->check(integer_at_least(0));
  sub->add_option("--device", a.device, "cpu | cuda | cuda:N (model and batches on that device)")->check(device_name());
  sub->add_flag("--quiet", a.quiet, "No progress bar");
}

CLI::Option* add_controls_option(CLI::App* sub, std::vector<std::string>& controls) {
  return sub
      ->add_option("--controls", controls,
                   "Profile models with controls: a control track's strand bigWigs, comma-separated; repeat per "
                   "task for matched controls (default: the training run's data.genome.controls)")
      ->take_first()
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

std::vector<std::vector<std::string>> control_files(const std::vector<std::string>& controls) {
  std::vector<std::vector<std::string>> r;
  for (const auto& c : controls) r.push_back(split_list(c));
  return r;
}

attr::InputFiles input_files(const ModelInputArgs& a) {
  attr::InputFiles in;
  in.npz = a.npz, in.fasta = a.fasta, in.regions = a.regions, in.genome = a.genome, in.cache_dir = a.cache_dir;
  in.controls = control_files(a.controls), in.model_dir = a.models.front();
  return in;
}

void make_output_folder(const std::string& dir, const std::string& what) {
  namespace fs = std::filesystem;
  check_output_folder(dir, what);  // a file of that name; a folder that cannot be written into
  std::error_code ec;
  fs::create_directories(dir, ec);
  LP_CHECK(!ec && fs::is_directory(dir), dir, ": cannot create ", what, ": ",
           ec ? ec.message() : std::string("a file of that name exists"));
  check_output_folder(dir, what);
}

void check_output_folder(const std::string& dir, const std::string& what) {
  namespace fs = std::filesystem;
  const std::string d = dir.empty() ? "." : dir;
  std::error_code ec;
  if (!fs::exists(d, ec)) return;
  LP_CHECK(fs::is_directory(d, ec), d, ": cannot create ", what, ": a file of that name exists");
  LP_CHECK(::access(d.c_str(), W_OK | X_OK) == 0, d, ": cannot write into ", what, ": ", std::strerror(errno));
}

void prepare_output_dir(const std::string& out, const std::vector<std::string>& outputs) {
  make_output_folder(out, "the output folder (--out)");
  safetensors::remove_stale_temporaries(out, outputs);
}

namespace {
// `name` matches `pattern`, whose each '*' stands for one or more digits ("pred_t*_s*.bw").
bool matches_digits(const std::string& name, const std::string& pattern) {
  size_t i = 0, j = 0;
  while (j < pattern.size()) {
    if (pattern[j] == '*') {
      const size_t k = i;
      while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i;
      if (i == k) return false;
      ++j;
    } else {
      if (i >= name.size() || name[i] != pattern[j]) return false;
      ++i, ++j;
    }
  }
  return i == name.size();
}
}  // namespace

void remove_earlier_side_files(const std::string& out, const std::vector<std::string>& own,
                               const std::vector<std::string>& written, const std::string& other) {
  namespace fs = std::filesystem;
  const bool other_there = fs::exists(fs::path(out) / other);
  const auto was_written = [&](const std::string& n) {
    return std::find(written.begin(), written.end(), n) != written.end();
  };
  std::error_code ec;
  for (fs::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (was_written(n)) continue;
    bool stale = !other_there && (n == "regions.bed" || n == "sequences.tsv");
    for (const auto& o : own) stale = stale || matches_digits(n, o);
    std::error_code rm;
    if (stale) fs::remove(it->path(), rm);  // best effort: the run itself succeeded
  }
}

ModelInputs::ModelInputs(Context& ctx, const ModelInputArgs& a, const std::string& cmd)
    : args(a), set(attr::load_model_dirs(a.models, ctx, a.weights, a.device)) {
  dtype = model().parameters().front().second.dtype();
  arrays = attr::open_inputs(cmd, model(), input_files(a), rw, &fasta);
  if (!a.npz.empty()) npz = std::make_shared<npy::NpzRowReader>(a.npz);
  rws = attr::windows_per_model(rw, set.const_models(), a.models, input_files(a));
}

Tensor ModelInputs::rows(Context& ctx, int64_t s, int64_t n, std::optional<DType> dt) const {
  const DType t = dt.value_or(dtype);
  if (!args.regions.empty()) return attr::region_rows(ctx, rw, s, n, t);
  if (npz) return attr::npz_rows(ctx, *npz, "x", s, n, t, args.npz + ":x", true);
  return attr::fasta_rows(ctx, fasta, s, n, t);
}

std::vector<Tensor> ModelInputs::control_rows(Context& ctx, int64_t s, int64_t n) const {
  std::vector<Tensor> c;
  if (arrays.count("control")) {
    const Tensor t = attr::npz_rows(ctx, *npz, "control", s, n, dtype, args.npz + ":control", true);
    c.assign(rws.size(), t);
  } else {
    for (const auto& w : rws) c.push_back(attr::region_control_rows(ctx, w, s, n, dtype));
  }
  return c;
}

CommandRun add_predict_command(CLI::App& app) {
  struct Args : ModelInputArgs {
    std::string out;
    int64_t batch = 64;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "predict", "Predict with a trained model on one-hot sequences (--npz), a FASTA (--fasta) or genome regions "
                 "(--regions)");
  add_model_input_options(sub, *a, "Model directory (config.json + best/model.safetensors)",
                          "Input npz with x (N, 4, L) and, for profile models with controls, control");
  sub->add_option("--out", a->out, "Output directory (predictions.npz)")->required();
  sub->add_option("--batch", a->batch, "Sequences per forward pass")->check(integer_at_least(1));
  return [a]() {
    namespace fs = std::filesystem;
    Context ctx(a->threads, 0);
    ModelInputs in(ctx, *a, "predict");
    Model& model = in.model();
    const attr::RegionWindows& rw = in.rw;
    const int64_t N = in.x().shape[0];
    const bool profile = model.type() == "profile", tracks = profile && !a->regions.empty();
    const int64_t T = model.tasks(), S = profile ? model_strands(model) : 0;
    std::vector<std::string> track_names;  // pred_t<t>_s<s>.bw, index t·S + s
    if (tracks)
      for (int64_t k = 0; k < T * S; ++k)
        track_names.push_back("pred_t" + std::to_string(k / S) + "_s" + std::to_string(k % S) + ".bw");
    std::vector<std::string> outputs = {"predictions.npz"};
    outputs.insert(outputs.end(), track_names.begin(), track_names.end());
    if (!a->regions.empty()) outputs.push_back("regions.bed");
    prepare_output_dir(a->out, outputs);
    const std::string path = (fs::path(a->out) / "predictions.npz").string();
    // One forward per batch feeds everything: logits or profile_logits are streamed into the npz (its first array),
    // log_counts (N, T, S: small) is kept and written after them, and the bigWig tracks are accumulated. Every
    // output goes to a temporary first; all are renamed into place together at the end.
    StopOnSignal stop_on_signal;  // SIGINT/SIGTERM: stop between batches, removing the unfinished temporaries
    npy::NpzWriter w(path);
    std::vector<float> log_counts;  // (N, T, S)
    Shape counts_shape;
    std::vector<attr::TrackAccumulator> acc;
    const int64_t O = profile ? model.output_length() : 0, off = (rw.length - O) / 2;
    std::vector<int64_t> order;  // windows in genome order: the tracks are written as the windows pass
    const bool streamed = tracks && attr::windows_in_order_or_note(rw, order, "predict",
                                                                   "the tracks are held until the end (8 bytes per "
                                                                   "covered base per track)", std::cerr);
    std::vector<float> v(static_cast<size_t>(O));
    Progress bar("predict", N, "seq", !a->quiet);
    for (int64_t s = 0; s < N; s += a->batch) {
      const int64_t n = std::min(a->batch, N - s);
      ModelOutput o = attr::forward_mean(in.set, in.rows(ctx, s, n), in.control_rows(ctx, s, n));
      const Tensor& y = profile ? o.profile_logits : o.logits;
      if (s == 0) {
        Shape shp = y.shape();
        shp[0] = N;
        w.begin(profile ? "profile_logits" : "logits", npy::NpyDType::F4, shp);
        if (profile) {
          counts_shape = o.log_counts.shape();
          counts_shape[0] = N;
          LP_CHECK(y.size(2) == S && y.size(1) == T, "predict: the model's profile_logits are ", shape_str(y.shape()),
                   " but its config says ", T, " task(s) and ", S, " strand(s)");
        }
        if (tracks) {
          acc.reserve(static_cast<size_t>(T * S));
          for (int64_t k = 0; k < T * S; ++k) {
            acc.emplace_back(rw.fasta->chrom_sizes());
            if (streamed) acc.back().stream((fs::path(a->out) / track_names[k]).string(), order);
          }
        }
      }
      w.append(y);
      if (profile) {
        const std::vector<float> c = o.log_counts.to_vector<float>();
        log_counts.insert(log_counts.end(), c.begin(), c.end());
      }
      if (tracks) {  // expected counts per base of the output window, centred in each input window
        const auto p = o.profile_logits.to_vector<double>();
        const auto c = o.log_counts.to_vector<double>();
        for (int64_t i = 0; i < n; ++i)
          for (int64_t k = 0; k < T * S; ++k) {
            attr::expected_counts(p.data() + (i * T * S + k) * O, c[i * T * S + k], O, v.data());
            acc[k].add(rw.chrom[s + i], rw.start[s + i] + off, v.data(), O);
          }
        if (streamed && s + n < N)
          for (auto& t : acc) t.release(rw.chrom[s + n], rw.start[s + n] + off);
      }
      bar.update(n);
      throw_if_interrupted();
    }
    w.end();
    bar.finish();
    if (profile) {
      w.begin("log_counts", npy::NpyDType::F4, counts_shape);
      w.append_raw(log_counts.data(), log_counts.size() * sizeof(float));
      w.end();
    }
    std::vector<std::unique_ptr<BigWigWriter>> bws;
    if (tracks) {
      int64_t blocks = 0;
      for (const auto& t : acc) blocks += t.blocks();
      Progress wbar("write " + std::to_string(T * S) + " bigWig track(s)", blocks * attr::TrackAccumulator::kBlock,
                    "bases", !a->quiet);
      for (int64_t k = 0; k < T * S; ++k)
        bws.push_back(acc[k].write((fs::path(a->out) / track_names[k]).string(), [&] {
          wbar.update(attr::TrackAccumulator::kBlock);
          throw_if_interrupted();
        }));
      wbar.finish();
    }
    std::unique_ptr<safetensors::AtomicFile> bed;
    if (!a->regions.empty()) {
      bed = std::make_unique<safetensors::AtomicFile>((fs::path(a->out) / "regions.bed").string());
      attr::write_region_bed(rw, *bed);
    }
    throw_if_interrupted();
    std::vector<std::string> written = {"predictions.npz"};
    if (!a->fasta.empty()) written.push_back("sequences.tsv");
    if (bed) written.push_back("regions.bed");
    written.insert(written.end(), track_names.begin(), track_names.end());
    // Everything is complete: earlier side files this run does not replace go first, then the renames.
    remove_earlier_side_files(a->out, {"pred_t*_s*.bw"}, written, "attr.npz");
    if (!a->fasta.empty()) attr::write_sequence_table(in.fasta, (fs::path(a->out) / "sequences.tsv").string());
    for (auto& b : bws) b->commit();
    if (bed) bed->commit();
    w.close();
    if (tracks) std::cout << "wrote " << T * S << " predicted-profile bigWig track(s) to " << a->out << "\n";
    std::cout << "wrote " << path << " (" << N << " sequences"
              << (in.set.size() > 1 ? ", mean of " + std::to_string(in.set.size()) + " models" : std::string())
              << ")\n";
    return 0;
  };
}

}  // namespace lowpass::tools
