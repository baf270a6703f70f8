// Sub-commands of the lowpass program: each add_<name>_command registers its options on `app` and
// returns the function that runs it (exit code). One file per sub-command: tools/cmd_<name>.cpp.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/npz.h"
#include "engine/tensor.h"
#include "models/attr/genome_regions.h"
#include "models/attr/model_dir.h"

namespace lowpass::tools {

using CommandRun = std::function<int()>;

// The inputs `predict` and `attribute` share: model directories (several: averaged) and their weights, sequences
// from an npz, a FASTA or genome regions, threads, device, progress. Their Args derive from this.
struct ModelInputArgs {
  std::vector<std::string> models;
  std::string npz, fasta, weights = "best";
  // The file the rows of x come from when they are not genome regions, for messages.
  std::string array_file() const { return fasta.empty() ? npz : fasta; }
  std::string regions, genome, cache_dir;  // genome regions instead of --npz
  std::vector<std::string> controls;       // --controls (profile models with controls, with --regions)
  int threads = 0;
  std::string device = "cpu";
  bool quiet = false;
};
// "a,b,,c" -> {"a", "b", "c"}: the comma-separated file lists of evaluate and report.
std::vector<std::string> split_list(const std::string& s);

void add_model_input_options(CLI::App* sub, ModelInputArgs& a, const std::string& model_help,
                             const std::string& npz_help);
// The parse-time checks of those options (one input source; one --weights file serves one --model). A sub-command
// that sets its own parse_complete_callback (CLI11 keeps one per sub-command) calls this from it.
void check_model_input_options(const ModelInputArgs& a);
// --controls (repeatable: one control track's comma-separated strand bigWigs each), for predict, attribute and
// variants (tools/cmd_predict.cpp).
CLI::Option* add_controls_option(CLI::App* sub, std::vector<std::string>& controls);
// Its values as attr::InputFiles::controls: each option's strand files, split at commas.
std::vector<std::vector<std::string>> control_files(const std::vector<std::string>& controls);
// The input choice of `a` for attr::open_inputs (model_dir: the first --model).
attr::InputFiles input_files(const ModelInputArgs& a);
// Output folders, checked before the work rather than when its first output is written (marginalize and attribute
// write theirs after a whole pass over the inputs). `what` names the folder in errors ("the output folder (--out)").
// make_output_folder creates `dir` with its parents and refuses one this user cannot write into;
// check_output_folder, for a command that creates its folder only once its work succeeded, refuses now a `dir` that
// exists but cannot be written into or that is a file (a missing one is left to be created).
void make_output_folder(const std::string& dir, const std::string& what);
void check_output_folder(const std::string& dir, const std::string& what);
// make_output_folder(out) for predict/attribute/marginalize, then removes the temporaries of `outputs` (file
// names) that killed runs left there (safetensors::remove_stale_temporaries). Earlier outputs stay until the new
// ones replace them: a run that fails keeps the last complete set.
void prepare_output_dir(const std::string& out, const std::vector<std::string>& outputs);
// After a successful run of predict/attribute (`cmd`) into `out`: removes the side files of an earlier run that this
// one did not write, so that they cannot describe its rows — `own` (files only `cmd` writes; a name may hold one
// '*', e.g. "pred_t*_s*.bw") except those in `written`, and regions.bed / sequences.tsv unless this run wrote them or
// `other` (the other command's main output, which they may describe) is in `out`.
void remove_earlier_side_files(const std::string& out, const std::vector<std::string>& own,
                               const std::vector<std::string>& written, const std::string& other);
// The type of the model ("binary" | "profile") that made the attribution file `attr_file` of N rows of length L:
// the attribute.json `lowpass attribute` writes beside attr.npz (tools/cmd_attribute.cpp), when it describes a file
// of that shape; "" when there is none (or it describes another file). An attribute.json with another model_type is
// an Error naming it. evaluate and report take the paper's default high-frequency cut-off of that type.
std::string attribution_model_type(const std::string& attr_file, int64_t N, int64_t L);
// What predict, attribute and marginalize open from ModelInputArgs: the models (several: averaged), the input rows
// (attr::open_inputs with the first model) and each model's region windows with its control tracks.
struct ModelInputs {
  const ModelInputArgs& args;
  attr::ModelSet set;
  attr::RegionWindows rw;
  attr::FastaInputs fasta;
  std::map<std::string, npy::Array> arrays;  // --npz: shapes only (x, control), the rows come from `npz`
  std::shared_ptr<npy::NpzRowReader> npz;    // --npz: read batch by batch, never whole
  std::vector<attr::RegionWindows> rws;  // per model (attr::windows_per_model)
  DType dtype = DType::F32;              // the models' parameters'

  ModelInputs(Context& ctx, const ModelInputArgs& a, const std::string& cmd);
  Model& model() { return set.front(); }
  const npy::Array& x() const { return arrays.at("x"); }
  // Input rows [s, s + n) as one-hot (n, 4, L) of `dt` (default: the models'): npz/FASTA rows or genome windows.
  Tensor rows(Context& ctx, int64_t s, int64_t n, std::optional<DType> dt = std::nullopt) const;
  // The control rows [s, s + n) of each model: the npz's `control` array when it has one (the same for every
  // model), else each model's region controls (undefined without).
  std::vector<Tensor> control_rows(Context& ctx, int64_t s, int64_t n) const;
};

// `lowpass report`'s inputs (comma-separated lists as on its command line) and the page it writes, OUT/index.html
// (tools/cmd_report.cpp); `lowpass demo` draws its picture with it too.
struct ReportArgs {
  std::string out, runs, labels, attr, ohe, examples = "0", metrics, metric_labels;
  std::string npz, predictions, prediction_labels;  // observed vs predicted profiles (profile models)
  int64_t window = 0, spectrum_examples = 200;
};
std::string write_report(const ReportArgs& a);  // returns the path of index.html

CommandRun add_simulate_command(CLI::App& app);
CommandRun add_train_command(CLI::App& app);
CommandRun add_demo_command(CLI::App& app);

}  // namespace lowpass::tools
