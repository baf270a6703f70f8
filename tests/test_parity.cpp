// Golden parity with the PyTorch twin (tests/fixtures/make_parity_fixtures.py): outputs, task and prior
// losses, attributions, every parameter gradient and the updated running stats, ‖Δ‖/‖ref‖ ≤ 1e-4 in
// float32 (≤ 1e-6 in float64; the fixtures hold float32 roundings of float64 results).
// Run: build/tests/lowpass_tests -ts=parity
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "engine/safetensors.h"
#include "models/loss/baseline_priors.h"
#include "models/loss/fourier_prior.h"
#include "models/loss/objective.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using nlohmann::json;

namespace {

const char* kDir = "tests/fixtures/";

std::string g_what;  // what is being compared, for LP_PARITY_VERBOSE=1

// ‖got − ref‖ / max(‖ref‖, floor). The floor (a fraction of the case's whole gradient norm) keeps
// gradients that are 0 in exact arithmetic (e.g. the profile head's biases: softmax over O is shift
// invariant) from being compared as ratios of round-off.
double rel(const Tensor& got, const Tensor& ref, double floor = 0.0) {
  REQUIRE(got.defined());
  REQUIRE(got.numel() == ref.numel());
  auto a = got.to_vector<double>(), b = ref.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  double e = std::sqrt(num) / std::max({std::sqrt(den), floor, 1e-300});
  if (std::getenv("LP_PARITY_VERBOSE")) std::fprintf(stderr, "%-60s %.3g\n", g_what.c_str(), e);
  return e;
}

struct Case {
  const safetensors::File* f;
  std::string prefix;     // "train/", "eval_attr/", "matched/", ...
  std::string state;      // prefix of the initial state
  json model_cfg;
  PriorConfig prior;
  double cw = 20.0;
  std::string grad_of;    // "total" or "task"
};

Tensor get(const Case& c, const std::string& k) { return c.f->at(c.prefix + k).tensor; }

void run_case(const Case& c, DType dt, double tol) {
  Context ctx(2, 0);
  json cfg = c.model_cfg;
  cfg["dtype"] = dt == DType::F64 ? "float64" : "float32";
  auto m = make_model(cfg, ctx);
  std::map<std::string, Tensor> sd;
  const std::string sp = c.state + "state.";
  for (const auto& [k, e] : c.f->tensors)
    if (k.rfind(sp, 0) == 0) sd[k.substr(sp.size())] = e.tensor;
  m->load_state_dict(sd);
  // With the scored rows apart, the batch's rows are also rotated by one, so that putting the outputs back in batch
  // order is not its own inverse (the fixtures' statuses alternate); the references rotate alike (`ref`).
  const int64_t B = get(c, "input.x").size(0);
  std::vector<int64_t> perm(static_cast<size_t>(B));
  for (int64_t i = 0; i < B; ++i) perm[static_cast<size_t>(i)] = c.prior.scored_rows_only ? (i + 1) % B : i;
  auto ref = [&](const std::string& k) { return index_select(get(c, k), 0, perm); };
  Batch b;
  b.x = ref("input.x");
  b.y = ref("input.y");
  if (c.f->contains(c.prefix + "input.control")) b.control = ref("input.control");
  const std::vector<double> st = get(c, "input.status").to_vector<double>();
  for (int64_t i : perm) b.status.push_back(static_cast<int>(st[static_cast<size_t>(i)]));
  Losses l = compute_losses(*m, b, c.prior, true, c.cw);
  const std::string tag = c.prefix + (dt == DType::F64 ? " float64 " : " float32 ") +
                          (c.prior.scored_rows_only ? "scored rows " : "all rows ");
  g_what = tag + "outputs/losses";
  INFO(tag);
  if (m->type() == "binary") {
    CHECK(rel(l.outputs.logits, ref("out.logits")) <= tol);
  } else {
    CHECK(rel(l.outputs.profile_logits, ref("out.profile_logits")) <= tol);
    CHECK(rel(l.outputs.log_counts, ref("out.log_counts")) <= tol);
  }
  CHECK(rel(l.task, get(c, "loss.task")) <= tol);
  const bool noise = c.grad_of == "task";  // reference train-mode binary attributions: round-off only
  if (!noise) {
    // With scored_rows_only the attributions are the scored rows' (the fixture's status has unscored rows).
    const std::vector<int64_t>& rows = l.attribution_rows;
    CHECK(rows.empty() != c.prior.scored_rows_only);
    Tensor ref_attr = ref("attributions");
    CHECK(rel(l.attributions, rows.empty() ? ref_attr : index_select(ref_attr, 0, rows)) <= tol);
    CHECK(rel(l.prior, get(c, "loss.prior")) <= tol);
    CHECK(rel(l.total, get(c, "loss.total")) <= tol);
    // The same attributions under the hard cut-off and the baseline priors (unscored rows put back as zeros).
    Tensor a = l.attributions.detach();
    if (!rows.empty()) a = index_add(a, 0, rows, ref_attr.size(0));
    PriorConfig hard = c.prior;
    CHECK(rel(fourier_prior_loss(a, b.status, hard.freq_limit, std::nullopt, hard.smooth_sigma),
              get(c, "loss.prior_hard")) <= tol);
    CHECK(rel(smoothness_prior_loss(a, b.status), get(c, "loss.prior_smoothness")) <= tol);
    CHECK(rel(sparsity_prior_loss(a, b.status), get(c, "loss.prior_sparsity")) <= tol);
  } else {
    // Both sides are 0 up to round-off: relative to the per-example scale (eval-mode attributions).
    double n = std::sqrt(sum_all(square(l.attributions.to(DType::F64))).item());
    double scale = std::sqrt(sum_all(square(c.f->at("eval_attr/attributions").tensor)).item());
    CHECK(n <= (dt == DType::F64 ? 1e-9 : 1e-2) * scale);
  }
  std::vector<Tensor> ps;
  std::vector<std::string> names;
  for (auto& [k, p] : m->parameters()) ps.push_back(p), names.push_back(k);
  auto g = grad({c.grad_of == "task" ? l.task : l.total}, ps, {}, false, true);
  double all = 0;
  for (size_t i = 0; i < ps.size(); ++i)
    for (double v : get(c, "grad_" + c.grad_of + "." + names[i]).to_vector<double>()) all += v * v;
  const double floor = 1e-3 * std::sqrt(all);
  for (size_t i = 0; i < ps.size(); ++i) {
    g_what = tag + "grad " + names[i];
    INFO(g_what);
    CHECK(rel(g[i], get(c, "grad_" + c.grad_of + "." + names[i]), floor) <= tol);
  }
  for (auto& [k, v] : m->buffers()) {
    if (!c.f->contains(c.prefix + "after." + k)) continue;
    g_what = tag + "buffer " + k;
    INFO(g_what);
    CHECK(rel(v, get(c, "after." + k)) <= tol);
  }
}

bool load(Context& ctx, const std::string& name, safetensors::File& f) {
  std::string path = std::string(kDir) + name;
  if (!std::filesystem::exists(path)) {
    MESSAGE("parity fixture ", path, " is absent (make it with tests/fixtures/make_parity_fixtures.py); skipped");
    return false;
  }
  f = safetensors::load(ctx, path);
  return true;
}

PriorConfig prior_from(const json& j) {
  PriorConfig p;
  p.type = j.at("prior").get<std::string>();
  p.weight = j.at("weight").get<double>();
  p.freq_limit = j.at("freq_limit").get<int64_t>();
  p.softness = j.at("softness").is_null() ? std::nullopt : std::optional<double>(j.at("softness").get<double>());
  p.smooth_sigma = j.at("sigma").get<double>();
  return p;
}

}  // namespace

TEST_SUITE("parity") {
TEST_CASE("binary model vs the PyTorch twin (training-mode batch norm)") {
  Context ctx(1, 0);
  safetensors::File f;
  if (!load(ctx, "binary_parity.safetensors", f)) return;
  json model = json::parse(f.metadata.at("model"));
  PriorConfig prior = prior_from(json::parse(f.metadata.at("prior")));
  for (DType dt : {DType::F32, DType::F64}) {
    const double tol = dt == DType::F32 ? 1e-4 : 1e-6;
    // The reference: attributions from the training forward (0 up to round-off); gradients of the task loss.
    // Its rows interact through the batch statistics, so every row's attributions are taken either way.
    PriorConfig all = prior;
    all.scored_rows_only = false;
    run_case(Case{&f, "train/", "", model, all, 20.0, "task"}, dt, tol);
    // attribution_mode eval: running-statistics attributions; every gradient of task + λ·prior; the attributions'
    // forward on the scored rows only (the default), then on every row.
    for (bool only : {true, false}) {
      PriorConfig ev = prior;
      ev.attribution_mode = "eval";
      ev.scored_rows_only = only;
      run_case(Case{&f, "eval_attr/", "", model, ev, 20.0, "total"}, dt, tol);
    }
  }
}

TEST_CASE("profile model vs the PyTorch twin (matched, shared and no controls)") {
  Context ctx(1, 0);
  safetensors::File f;
  if (!load(ctx, "profile_parity.safetensors", f)) return;
  json pj = json::parse(f.metadata.at("prior"));
  PriorConfig prior = prior_from(pj);
  for (std::string v : {"matched", "shared", "none"}) {
    json model = json::parse(f.metadata.at(v));
    for (DType dt : {DType::F32, DType::F64})
      for (bool only : {true, false}) {  // the prior's rows apart (the default), then every row's attributions
        PriorConfig p = prior;
        p.scored_rows_only = only;
        run_case(Case{&f, v + "/", v + "/", model, p, pj.at("counts_loss_weight").get<double>(), "total"}, dt,
                 dt == DType::F32 ? 1e-4 : 1e-6);
      }
  }
}
}
