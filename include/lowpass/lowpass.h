// lowpass public C++ API: load/save a model, predict, attribute, train with a prior, the prior loss.
// Only the standard library appears here (pimpl); arrays are float32, row-major, (N, 4, L) for sequences.
// Reference: docs/api.md (in the source tree) ; link with `pkg-config --cflags --libs lowpass`.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

// The shared library exports these declarations only (it is built with hidden visibility, so that its internal
// copies of nlohmann-json, Eigen and the engine cannot clash with the embedding program's own).
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif
namespace lowpass::api {

// Every error the API raises (bad file, config, shape, option); what() names the file/field at fault.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};
// An allocation failed inside a call, in the API or in the engine; still an Error, so one catch serves both.
class OutOfMemory : public Error {
 public:
  OutOfMemory() : Error("out of memory") {}
  explicit OutOfMemory(const std::string& msg) : Error(msg) {}
};

// "0.1.0"; with " (CUDA backend compiled)" or " (CPU only)" in version_string().
std::string version();
std::string version_string();

// A float32 array, contiguous and row-major. Either owns its memory (shared between copies of the
// Array, released with the last one) or views a caller's buffer (the caller keeps it alive).
class Array {
 public:
  Array() = default;
  // Shapes: sizes >= 0 with at most 2^63 - 1 elements (else Error); zeros throws OutOfMemory when the
  // buffer cannot be allocated; copy_of needs non-null data for a non-empty shape.
  static Array view(const float* data, std::vector<int64_t> shape);        // no copy
  static Array copy_of(const float* data, std::vector<int64_t> shape);     // copies
  static Array zeros(std::vector<int64_t> shape);
  // Hand over memory kept alive by `owner` (e.g. an engine tensor or a NumPy array).
  static Array adopt(std::shared_ptr<void> owner, float* data, std::vector<int64_t> shape);

  bool empty() const { return data_ == nullptr && shape_.empty(); }
  const float* data() const { return data_; }
  float* mutable_data() const { return data_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t ndim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size() const;  // number of elements
  std::vector<float> to_vector() const;
  const std::shared_ptr<void>& owner() const { return owner_; }  // null for views

 private:
  std::shared_ptr<void> owner_;
  float* data_ = nullptr;
  std::vector<int64_t> shape_;
};

// Model outputs in eval mode. binary: logits (N, T). profile: profile_logits (N, T, S, O) (softmax
// over O) and log_counts (N, T, S).
struct Predictions {
  Array logits;
  Array profile_logits;
  Array log_counts;
};

// The methods of `lowpass attribute` (docs/attribution.md): grad | gradxinput | deepshap_ref |
// deepshap | ism | ig. target: "" (binary: logits, profile: profile) or logits[:t] | profile[:t] |
// profile_raw[:t] | counts[:t].
struct AttributionOptions {
  std::string method = "grad";
  std::string target;
  int64_t refs = -1;          // dinucleotide-shuffled references, >= 1 (-1: 10 for deepshap_ref, 20 for deepshap)
  uint64_t seed = 20200219;   // example i (0-based in x) uses seed + i + first_index
  int64_t first_index = 0;    // >= 0
  int64_t ig_steps = 50;       // ig: first midpoint-rule points per example
  double ig_tolerance = 0.05;  // ig: relative completeness error that redoes an example with 3× the points (0: never)
  int64_t ig_max_steps = 450;  // ig: points per example at most (50 → 150 → 450)
  int64_t batch = 16;         // sequences attributed per chunk (memory bound)
  int64_t max_batch = 64;     // sequences per forward pass inside a chunk
};

struct Attributions {
  Array hypothetical;  // (N, 4, L) hypothetical scores (what modisco-lite reads)
  Array actual;        // (N, 4, L) hypothetical ⊙ x
  // deepshap / ig: per example Σ actual − (f(x) − mean f(ref)) and that over |f(x) − mean f(ref)|.
  std::vector<double> delta, delta_relative;
  std::vector<int64_t> ig_steps;  // ig: the points each example used (ig_steps, or 3× and 9× after refinement)
};

// The attribution prior of a training step (docs/fourier_prior.md). Unset fields take the model type's default
// (prior_loss, which has no model, takes the binary ones): binary weight 1, freq_limit 150 at input length 1000;
// profile weight 50, freq_limit 200 at 1346; at other lengths freq_limit keeps the paper's cut-off per base:
// round(150 L / 1000), round(200 L / 1346).
// A freq_limit >= L/2 (every frequency weighted 1) is refused by train_step and losses.
struct PriorOptions {
  std::string type = "fourier";  // fourier | smoothness | sparsity | none
  std::optional<double> weight;
  std::optional<int64_t> freq_limit;
  std::optional<double> softness = 0.2;  // nullopt: hard cut-off at freq_limit
  double smooth_sigma = 3.0;
  double l2_weight = 0.0;                  // >= 0: λ₂·Σθ² added to the total
  std::string attribution_mode = "eval";   // eval (lowpass train's default) | train (the reference's; docs/api.md)
};

struct TrainStepOptions {
  PriorOptions prior;
  std::string optimizer = "adam";  // adam | sgd; the optimiser state persists across steps of a Model
  double lr = 1e-3;
  double counts_loss_weight = 20.0;  // profile only, >= 0 (lowpass train's "auto" is not available here)
};

struct StepResult {
  // Losses of this batch before the update: prior unweighted, total = task + weight · prior (+ l2_weight · Σθ²).
  double task = 0, prior = 0, total = 0;
  int64_t step = 0;                        // optimiser steps taken on this Model so far
};

// Where a model comes from. path: a model directory (config.json + best/model.safetensors, as
// `lowpass train` writes) or a .safetensors state_dict (lowpass- or PyTorch-written); config: for a
// bare .safetensors, a config.json path or JSON text, either {"model": {...}} or the model section.
struct LoadOptions {
  std::string config;
  std::string weights = "best";  // directories: best | last | a .safetensors path (relative to the current dir)
  int threads = 0;               // CPU threads, >= 0 (0 = all usable cores)
};

// Thread safety: the const calls (predict, attribute, save*, accessors) may run from several threads at once;
// train_step, losses, resume and set_threads wait for them and run alone (a lock inside the Model). Moving or
// destroying a Model while another thread uses it is undefined.
class Model {
 public:
  static Model load(const std::string& path, const LoadOptions& opt = {});
  // A freshly initialised model from its `model` config section: JSON text, or a config.json path.
  static Model create(const std::string& model_config_json, uint64_t seed = 0, int threads = 0);

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  // A model directory: config.json ({"model": ...}) + model.safetensors (state_dict). Refuses (Error) a
  // directory that holds a training run (best.safetensors, checkpoints/, or a config.json with more than
  // "model"): use a new directory, or save_weights. The optimiser state is not saved (save_checkpoint does).
  void save(const std::string& dir) const;
  void save_weights(const std::string& safetensors_path) const;  // state_dict only
  // A training checkpoint (the format `lowpass train` writes, docs/formats.md): weights, the optimiser's state, the
  // steps taken and the random generator, written atomically with a checksum. `resume` reads one (this API's or a
  // `lowpass train` run's, e.g. RUN/checkpoints/last.safetensors) into this model, so that train_step goes on where
  // it stopped; the next train_step's lr applies, and a `lowpass train` checkpoint's Adam betas/eps/weight decay
  // become this API's defaults. A corrupt file, or one of another architecture, is an Error naming it.
  void save_checkpoint(const std::string& path) const;
  void resume(const std::string& checkpoint_path);

  std::string type() const;  // binary | profile
  std::string dtype() const; // float32 | float64
  int64_t input_length() const;
  int64_t output_length() const;  // binary: T; profile: O
  int64_t tasks() const;
  int64_t strands() const;        // profile: S; binary: 1
  bool uses_control() const;      // profile models with controls: predict/attribute need `control`
  std::string config_json() const;             // the resolved `model` section
  std::vector<std::string> parameter_names() const;  // state_dict keys
  Array parameter(const std::string& name) const;    // a copy, float32
  void set_threads(int threads);

  // x (N, 4, L) one-hot (N bases all-zero columns); control (N, T|1, S, O) counts or empty. Eval mode,
  // `batch` sequences per forward pass. Every input (x, y, control) must have data and finite values: a NaN or
  // inf is an Error naming the array and its first bad index.
  Predictions predict(const Array& x, const Array& control = {}, int64_t batch = 64) const;
  Attributions attribute(const Array& x, const AttributionOptions& opt = {}, const Array& control = {}) const;
  // One optimiser step on task + weight · prior for this batch, with lowpass train's defaults (no
  // reverse-complement doubling: pass it in x if wanted). y: binary (N, T) in {1, 0, -1 = ignore}; profile
  // (N, T, S, O) counts. status (N): 1 = the prior applies, 0 = not; empty = the default (binary: any label 1;
  // profile: all).
  StepResult train_step(const Array& x, const Array& y, const std::vector<int>& status = {},
                        const TrainStepOptions& opt = {}, const Array& control = {});
  // The same losses without an update (training-mode forward; running statistics and the dropout RNG are
  // restored, so a train_step after losses() equals one without it).
  StepResult losses(const Array& x, const Array& y, const std::vector<int>& status = {},
                    const TrainStepOptions& opt = {}, const Array& control = {}) const;

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  Impl& self() const;  // throws Error on a moved-from Model
  std::unique_ptr<Impl> impl_;
};

// The Fourier prior on given attributions attr (N, 4, L) (grad × input), status (N) (empty: all 1):
// mean over status==1 rows of 1 − Σ_k w_k m_k / Σ_j m_j, m = |rfft(smooth_σ(Σ_bases |attr|))|.
// With `grad` non-null, *grad = d loss / d attr (N, 4, L).
double fourier_prior_loss(const Array& attr, const std::vector<int>& status = {}, int64_t freq_limit = 150,
                          std::optional<double> softness = 0.2, double smooth_sigma = 3.0, Array* grad = nullptr);
// Any prior of PriorOptions (fourier | smoothness | sparsity; weight and l2_weight are not applied). A fourier
// freq_limit >= L/2 is refused, as train_step refuses it.
double prior_loss(const Array& attr, const std::vector<int>& status, const PriorOptions& prior,
                  Array* grad = nullptr);

}  // namespace lowpass::api
#if defined(__GNUC__)
#pragma GCC visibility pop
#endif
