// Attribution methods on a batch, all returning hypothetical scores (B, 4, L) (what modisco-lite
// reads) and actual scores = hypothetical ⊙ one-hot. g = ∂f_x/∂x (target.h), r̄ = mean reference.
//   grad          hyp = g                                          (REFERENCE §4.1 input gradients)
//   gradxinput    hyp = g ⊙ x (so modisco's hyp⊙x equals g⊙x)
//   deepshap_ref  hyp_b = g_b − Σ_c r̄_c g_c, r̄ = mean of k (10) dinucleotide shuffles (§4.1, what the paper ran)
//   deepshap      hyp_b = mean_k Σ_c (e_b − r_k)_c m_k,c with DeepLIFT rescale multipliers m_k (deeplift.h)
//   ism           hyp_b = Δf(x with base b) − mean_b' Δf, identity edits 0 before centring; each mutant recomputes
//                 only the windows of positions the edit reaches (Model::mutant_forward, fastISM) unless ism_full
//   ig            hyp_b = Σ_c (e_b − x₀)_c Ḡ_c, Ḡ = mean gradient at x₀ + (i + ½)/m (x − x₀), x₀ = 0; an example
//                 whose relative completeness error exceeds ig_tolerance (and whose absolute error exceeds 1e-6) is
//                 redone with 3m points (reusing the m) while 3m <= ig_max_steps
// Test: build/tests/lowpass_tests -ts=attr
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/attr/target.h"

namespace lowpass::attr {

struct AttrOptions {
  std::string method = "grad";  // grad | gradxinput | deepshap_ref | deepshap | ism | ig
  Target target;
  int64_t refs = -1;             // shuffled references: -1 = 10 for deepshap_ref, 20 for deepshap
  uint64_t seed = 20200219;      // shuffles of example i use Rng(seed + i): results do not depend on batching
  int64_t ig_steps = 50;          // first midpoint-rule points per example
  double ig_tolerance = 0.05;      // relative completeness error that triggers 3× the points (0: never)
  int64_t ig_max_steps = 450;      // points per example at most (50 → 150 → 450)
  int64_t max_batch = 64;        // sequences per forward pass (ISM mutants, DeepSHAP pairs ×2, IG steps); fastISM
                                 // runs max_batch × MutantForward::rows_per_sequence() mutants' windows per pass
  bool ism_full = false;         // ism: a whole forward pass per mutant, not fastISM's windows (the reference)
  // The shuffled references deepshap_ref / deepshap use: refs, or the method's default.
  int64_t refs_used() const { return refs > 0 ? refs : (method == "deepshap_ref" ? 10 : 20); }
};

struct AttrResult {
  Tensor hyp;     // (B, 4, L) hypothetical scores
  Tensor actual;  // (B, 4, L) hyp ⊙ x
  // Convergence (deepshap, ig): per example Σ actual − (f(x) − mean f(ref)) and that over |f(x) − mean f(ref)|.
  std::vector<double> delta, delta_rel;
  std::vector<double> difference;  // the f(x) − mean f(ref) of each example (the denominator of delta_rel)
  std::vector<double> model_delta_rel;  // attribute_mean of several models: each example's largest model delta_rel
  std::vector<int64_t> steps;  // ig: midpoint-rule points each example used
};

// x (B, 4, L) one-hot on the model's device and dtype; control (B, ...) or undefined; first_index =
// the global index of x[0] (seeds the shuffles). The model runs in eval mode.
AttrResult attribute(Model& model, const Tensor& x, const Tensor& control, const AttrOptions& opt,
                     int64_t first_index = 0);

// The mean of several models' attributions (a fold ensemble; model k with control[k]), on the host: hyp and actual
// averaged; delta the mean of the models' deltas, which is the completeness error of the mean attribution against
// the mean difference (every method's scores and differences are linear in the model's); delta_rel that over the
// mean |difference|; steps (ig) the most any model used for the example. The mean's error is no bound on a model's
// (their errors can cancel): model_delta_rel keeps the largest model delta_rel. One model: attribute()'s result.
AttrResult attribute_mean(const std::vector<Model*>& models, const Tensor& x, const std::vector<Tensor>& controls,
                          const AttrOptions& opt, int64_t first_index = 0);

// Values v (row-major, shape s) as a tensor of `like`'s context, dtype and device.
Tensor make_like(const Tensor& like, const Shape& s, const std::vector<double>& v);

// Pieces, public for tests.
Tensor input_gradient(Model& model, const Tensor& x, const Tensor& control, const Target& t);  // (B, 4, L)
// f_x(x') for each row of xs (N, 4, L), where row i uses the seed of x[owner[i]]; no graph.
std::vector<double> target_values(Model& model, const Tensor& xs, const Tensor& control_rows, const Tensor& seed_rows,
                                  const Target& t);
// hyp_b = mean_k Σ_c (e_b − r_k)_c m_k,c for refs/mults (B*k, 4, L) grouped by example.
Tensor combine_mult_and_diffref(const Tensor& mults, const Tensor& refs, int64_t k);

}  // namespace lowpass::attr
