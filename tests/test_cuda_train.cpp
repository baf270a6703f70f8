// CUDA backend, model level: the fused prior chain and the model-sized ops against the CPU, the whole training step
// with the Fourier prior (losses, every parameter gradient, the update, BN running stats) CPU vs CUDA at
// ‖Δ‖/‖ref‖ ≤ 1e-4 (float32) / 1e-9 (float64), and `train` on a GPU with device-independent checkpoints. GEMMs:
// tests/test_cuda_gemm.cpp; attributions: tests/test_cuda_attr.cpp; optimisers: tests/test_cuda_optim.cpp.
// Run: build/tests/lowpass_tests -ts=cuda  (skips with a message when no GPU is usable).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>
#include <memory>

#include "engine/optim.h"
#include "engine/safetensors.h"
#include "kernels/cuda/conv_backend.h"
#include "kernels/cuda/runtime.h"
#include "models/arch/model.h"
#include "models/data/array_dataset.h"
#include "models/data/simulate.h"
#include "models/loss/objective.h"
#include "models/train/config.h"
#include "models/train/trainer.h"
#include "tests/cuda_model_test.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A fresh temporary folder holding train.npz: n simulated binary SPI1 examples of length L.
fs::path small_training_set(const std::string& name, int64_t n, int64_t L, uint64_t seed) {
  fs::path d = fs::temp_directory_path() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  Rng rng(seed);
  BinarySimOptions so;
  so.n = n, so.length = L, so.motif_bound = 5;
  write_array_dataset(simulate_binary(default_motif(), so, rng), (d / "train.npz").string());
  return d;
}

struct StepResult {
  Losses losses;
  NamedTensors grads, params_after, buffers_after;
};

// One training step (compute_losses with create_graph attributions, backward, SGD with momentum) on `m`.
StepResult train_step(Model& m, const Batch& b, const PriorConfig& prior) {
  StepResult r;
  SgdOptions so;  // SGD with momentum: linear in the gradient, so parameters after the step inherit its accuracy
  so.lr = 0.01, so.momentum = 0.9;  // (Adam's sign-like first step would amplify round-off in tiny entries; the
  Sgd opt(m.parameters(), so);      //  Adam kernel itself is compared in "Adam and SGD updates match the CPU")
  opt.zero_grad();
  r.losses = compute_losses(m, b, prior, /*training=*/true, 20.0);
  backward(r.losses.total);
  for (auto& [k, p] : m.parameters()) r.grads.emplace_back(k, p.grad().defined() ? p.grad().to(Device{}) : Tensor());
  opt.step();
  for (auto& [k, p] : m.parameters()) r.params_after.emplace_back(k, p.detach().to(Device{}));
  for (auto& [k, p] : m.buffers()) r.buffers_after.emplace_back(k, p.detach().to(Device{}));
  return r;
}

// ‖Δ‖ / max(‖ref‖, floor·largest gradient norm): gradients that vanish in exact arithmetic (biases in front of a
// softmax over positions) are compared against the model's gradient scale, not against their own round-off.
double grad_err(const Tensor& got, const Tensor& ref, double scale, double floor = 1e-3) {
  auto a = got.to_vector<double>(), b = ref.to_vector<double>();
  REQUIRE(a.size() == b.size());
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]), n += b[i] * b[i];
  return std::sqrt(d) / std::max(std::sqrt(n), floor * scale);
}

// ref64: the same step in float64 on the CPU (float32 runs only). A float32 gradient that is badly conditioned
// (a bias in front of a training-mode batch norm sums terms that cancel) is then held to the CPU's own float32
// accuracy: ‖g − ref64‖ ≤ max(tol, 10·‖c − ref64‖), both measured as grad_err.
// reduced: bfloat16 GEMMs, whose round-off (2^-9 per product) reaches every gradient of the double backward: each
// tensor's error is measured against the model's largest gradient norm (floor 1), not against its own norm, and held
// to kReducedGradTol. Measured on the H200 (bfloat16 operands, float32 sums): binary model 0.13 (training-mode batch
// norm over 16 examples: the train-mode logits differ by 1.7 %, the eval-mode ones by 0.025 %), profile 0.003.
// The training curve with bf16 follows the CPU's within 5e-2 ("train --device cuda --cuda-graph, and with bf16").
constexpr double kReducedGradTol = 0.25;
void compare_steps(const StepResult& g, const StepResult& c, double tol, const StepResult* ref64 = nullptr,
                   bool reduced = false) {
  for (auto [name_, a_, b_] : {std::tuple{"task", g.losses.task, c.losses.task},
                            std::tuple{"prior", g.losses.prior, c.losses.prior},
                            std::tuple{"total", g.losses.total, c.losses.total}}) {
    auto name = name_; auto a = a_; auto b = b_;  // named copies: clang < 16 cannot capture structured bindings
    INFO("loss ", name, ": cuda ", a.item(), " cpu ", b.item());
    CHECK(std::abs(a.item() - b.item()) <= tol * std::max(1.0, std::abs(b.item())));
  }
  CHECK(c.losses.prior.item() > 0);  // the prior is really in the step
  REQUIRE(g.grads.size() == c.grads.size());
  double scale = 0;
  for (auto& [k, t] : c.grads) scale = std::max(scale, std::sqrt(sum_all(square(t)).item()));
  double worst = 0;
  for (size_t i = 0; i < c.grads.size(); ++i) {
    INFO("gradient of ", c.grads[i].first);
    REQUIRE(c.grads[i].second.defined());
    REQUIRE(g.grads[i].second.defined());
    if (reduced) {
      const double e = grad_err(g.grads[i].second, c.grads[i].second, scale, 1.0);
      worst = std::max(worst, e);
      CHECK(e <= kReducedGradTol);
    } else if (ref64 == nullptr) {
      CHECK(grad_err(g.grads[i].second, c.grads[i].second, scale) <= tol);
    } else {
      const Tensor& r = ref64->grads[i].second;
      const double e_gpu = grad_err(g.grads[i].second, r, scale), e_cpu = grad_err(c.grads[i].second, r, scale);
      INFO("float32 vs float64 reference: cuda ", e_gpu, ", cpu ", e_cpu);
      CHECK(e_gpu <= std::max(tol, 10 * e_cpu));
    }
    // reduced: biases initialised to 0 in front of batch norm have gradients that vanish in exact arithmetic, so
    // after one step they hold nothing but round-off; the whole parameter vector is compared below instead
    if (!reduced) CHECK(rel(g.params_after[i].second, c.params_after[i].second) <= tol);
  }
  if (reduced) {
    double d = 0, n = 0;
    for (size_t i = 0; i < c.params_after.size(); ++i) {
      const Tensor diff = sub(g.params_after[i].second, c.params_after[i].second);
      d += sum_all(square(diff)).item(), n += sum_all(square(c.params_after[i].second)).item();
    }
    MESSAGE("parameters after the step, all tensors: rel err " << std::sqrt(d / n));
    CHECK(std::sqrt(d / n) <= tol);
  }
  if (reduced) MESSAGE("largest gradient error against the model's gradient scale: " << worst);
  for (size_t i = 0; i < c.buffers_after.size(); ++i) {
    INFO("buffer ", c.buffers_after[i].first);
    CHECK(rel(g.buffers_after[i].second, c.buffers_after[i].second) <= tol);
  }
}

// The same model (same seed → same init and dropout masks) on the CPU and, moved, on the GPU, whose float32 GEMMs
// compute with `math` (set on the model's and the batch's Context: ops run on their first input's).
void check_step(const json& model_cfg, const PriorConfig& prior, int64_t B, bool profile, double tol, uint64_t seed,
                cuda::GemmMath math = cuda::GemmMath::Float32) {
  Context cc(2, seed), gc(2, seed), bc(2, seed + 1);  // cc and gc draw the same init and dropout masks
  cuda::set_gemm_math(gc, 0, math), cuda::set_gemm_math(bc, 0, math);
  auto mc = make_model(model_cfg, cc), mg = make_model(model_cfg, gc);
  mg->to(kGpu);
  for (auto& [k, p] : mg->parameters()) CHECK(!p.is_cpu());
  const DType t = mc->dtype();
  Batch b;
  b.x = random_onehot(bc, B, mc->input_length(), t);
  if (profile) {
    const int64_t T = mc->tasks(), O = mc->output_length();
    b.y = Tensor::uniform(bc, {B, T, 2, O}, 0.0, 4.0, t);
    if (model_cfg.value("controls", std::string("matched")) != "none")
      b.control = Tensor::uniform(bc, {B, T, 2, O}, 0.0, 2.0, t);
    b.status.assign(static_cast<size_t>(B), 1);
    b.status[0] = 0;
  } else {
    std::vector<double> y(static_cast<size_t>(B * mc->tasks()));
    for (size_t i = 0; i < y.size(); ++i) y[i] = i % 3 == 0 ? 1.0 : 0.0;
    b.y = Tensor::from_vector(cc, {B, mc->tasks()}, y);
  }
  {  // eval-mode forward first (no dropout, no running-stat update): the GPU model computes the CPU's function
    NoGradGuard ng;
    Tensor ctl = b.control.defined() ? b.control.to(kGpu) : Tensor();
    ModelOutput oc = mc->forward(b.x, b.control, false), og = mg->forward(b.x.to(kGpu), ctl, false);
    Tensor c1 = profile ? oc.profile_logits : oc.logits, g1 = profile ? og.profile_logits : og.logits;
    MESSAGE("eval forward rel err " << rel(g1, c1));
    CHECK(rel(g1, c1) <= tol);
    if (profile) CHECK(rel(og.log_counts, oc.log_counts) <= tol);
  }
  {  // training-mode forward (batch statistics; updates the running stats of both models alike)
    NoGradGuard ng;
    Tensor ctl = b.control.defined() ? b.control.to(kGpu) : Tensor();
    ModelOutput oc = mc->forward(b.x, b.control, true), og = mg->forward(b.x.to(kGpu), ctl, true);
    Tensor c1 = profile ? oc.profile_logits : oc.logits, g1 = profile ? og.profile_logits : og.logits;
    MESSAGE("train forward rel err " << rel(g1, c1));
    CHECK(rel(g1, c1) <= tol);
    Losses lc = compute_losses(*mc, b, prior, false, 20.0), lg = compute_losses(*mg, b, prior, false, 20.0);
    MESSAGE("eval losses cpu " << lc.task.item() << " " << lc.prior.item() << " cuda " << lg.task.item() << " "
                               << lg.prior.item());
  }
  if (t == DType::F32 && math == cuda::GemmMath::Float32) {  // the data must not sit on a ReLU kink (above)
    const double s = kink_sensitivity(*mc, model_cfg, b.x, b.control);
    MESSAGE("CPU float32 attributions under 1-ulp parameter perturbations: " << s);
    REQUIRE_MESSAGE(s <= tol / 10, "the test data puts a ReLU within rounding distance of zero (choose another seed)");
  }
  std::unique_ptr<StepResult> r64;
  if (t == DType::F32) {  // the float64 reference of the same step, from the same weights and running stats
    json cfg64 = model_cfg;
    cfg64["dtype"] = "float64";
    Context c64(2, seed);
    auto m64 = make_model(cfg64, c64);
    std::map<std::string, Tensor> sd;
    for (auto& [k, v] : mc->state_dict()) sd[k] = v;
    m64->load_state_dict(sd);
    Batch b64 = b;
    b64.x = b.x.to(DType::F64), b64.y = b.y.to(DType::F64);
    if (b.control.defined()) b64.control = b.control.to(DType::F64);
    r64 = std::make_unique<StepResult>(train_step(*m64, b64, prior));
  }
  StepResult rc = train_step(*mc, b, prior);
  StepResult rg = train_step(*mg, b, prior);  // the host batch is moved inside compute_losses
  compare_steps(rg, rc, tol, r64.get(), math == cuda::GemmMath::BF16);
}

}  // namespace

TEST_SUITE("cuda") {

TEST_CASE("fused Fourier prior (cuFFT chain): values and gradients equal the CPU's, rows subsets, awkward sizes") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 33);
  // C 4: the smoothing kernel's DNA instance and the sign codes; 3 the generic instance; 6 the backward reading a.
  // all: every row scored (the CUDA-graph step's row set), else every third row skipped. The spectrum side keeps
  // the scored rows padded to prior_fft_rows (kernels/cuda/prior_tiles.h): B 256 scores 171 rows in 192, B 20 13 in 15.
  struct Case { int64_t B, C, L; double sigma; bool all; };
  for (auto c : {Case{1, 4, 2, 3.0, false}, Case{3, 4, 17, 3.0, false}, Case{7, 4, 61, 1.0, false},
                 Case{20, 4, 200, 3.0, false},
                 Case{256, 4, 1000, 3.0, false}, Case{9, 4, 1346, 3.0, false}, Case{4, 4, 100, 0.0, false},
                 Case{5, 4, 1100, 3.0, true}, Case{4, 3, 300, 3.0, false}, Case{3, 6, 257, 3.0, true}}) {
    for (DType t : {DType::F32, DType::F64}) {
      INFO("B ", c.B, " C ", c.C, " L ", c.L, " sigma ", c.sigma, " all rows ", c.all, " ", dtype_name(t));
      const double tol = t == DType::F32 ? 1e-5 : 1e-12;
      std::vector<int64_t> rows;
      for (int64_t b = 0; b < c.B; ++b)
        if (c.all || b % 3 != 1 || c.B == 1) rows.push_back(b);
      std::vector<double> w(static_cast<size_t>(c.L / 2));
      for (size_t i = 0; i < w.size(); ++i) w[i] = i < w.size() / 4 ? 1.0 : 1.0 / (1.0 + std::pow(double(i), 0.2));
      Tensor a = Tensor::uniform(ctx, {c.B, c.C, c.L}, -1, 1, t), ag = a.to(kGpu);
      a.set_requires_grad(true), ag.set_requires_grad(true);
      Tensor yc = fourier_prior_scores(a, rows, w, c.sigma), yg = fourier_prior_scores(ag, rows, w, c.sigma);
      CHECK(!yg.is_cpu());
      CHECK(rel(yg, yc) <= tol);
      CHECK(rel(fourier_prior_scores_composed(ag, rows, w, c.sigma), yc) <= tol);
      Tensor v = Tensor::uniform(ctx, yc.shape(), 0.5, 1.5, t);
      auto gc = grad({yc}, {a}, {v}), gg = grad({yg}, {ag}, {v.to(kGpu)});
      CHECK(rel(gg[0], gc[0]) <= tol * 10);
      // a second backward of the same forward (its unit spectrum gradient spent: dX for g from the saved spectrum)
      Tensor v2 = Tensor::uniform(ctx, yc.shape(), -1.5, 1.5, t);
      auto gc2 = grad({yc}, {a}, {v2}), gg2 = grad({yg}, {ag}, {v2.to(kGpu)});
      CHECK(rel(gg2[0], gc2[0]) <= tol * 10);
    }
  }
}

TEST_CASE("model-sized ops on CUDA tensors match the CPU (the paper's binary and BPNet layer shapes)") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 34);
  auto cmp = [&](const char* what, const Tensor& got, const Tensor& ref) {
    const double e = rel(got, ref);
    MESSAGE(std::string(what) << ": rel err " << e);
    CHECK(e <= 1e-5);
  };
  Tensor xo = random_onehot(ctx, 16, 1000, DType::F32), xg = xo.to(kGpu);
  Tensor w1 = Tensor::uniform(ctx, {64, 4, 15}, -0.3, 0.3), b1 = Tensor::uniform(ctx, {64}, -0.3, 0.3);
  Tensor h1 = conv1d(xo, w1, b1), h1g = conv1d(xg, w1.to(kGpu), b1.to(kGpu));
  cmp("one-hot conv 4->64 K15 L1000 B16", h1g, h1);
  Tensor w2 = Tensor::uniform(ctx, {64, 64, 15}, -0.1, 0.1), b2 = Tensor::uniform(ctx, {64}, -0.1, 0.1);
  Tensor h2 = conv1d(relu(h1), w2, b2), h2g = conv1d(relu(h1g), w2.to(kGpu), b2.to(kGpu));
  cmp("conv 64->64 K15 L986 B16", h2g, h2);
  Tensor dy = Tensor::uniform(ctx, h2.shape(), -1, 1);
  cmp("conv input grad 64->64 K15", conv1d_input_grad(dy.to(kGpu), w2.to(kGpu), h1.size(2), {}),
      conv1d_input_grad(dy, w2, h1.size(2), {}));
  cmp("conv weight grad 64->64 K15", conv1d_weight_grad(relu(h1g), dy.to(kGpu), 15, {}),
      conv1d_weight_grad(relu(h1), dy, 15, {}));
  Tensor dy1 = Tensor::uniform(ctx, h1.shape(), -1, 1);
  cmp("one-hot conv weight grad", conv1d_weight_grad(xg, dy1.to(kGpu), 15, {}), conv1d_weight_grad(xo, dy1, 15, {}));
  Tensor gm = Tensor::uniform(ctx, {64}, 0.5, 1.5), bt = Tensor::uniform(ctx, {64}, -0.5, 0.5);
  Tensor rm = Tensor::zeros(ctx, {64}), rv = Tensor::ones(ctx, {64});
  Tensor rmg = rm.to(kGpu), rvg = rv.to(kGpu);
  Tensor n = batch_norm(h2, gm, bt, rm, rv, true), ng = batch_norm(h2g, gm.to(kGpu), bt.to(kGpu), rmg, rvg, true);
  cmp("batch norm (16, 64, 986) train", ng, n);
  cmp("running mean", rmg, rm);
  cmp("max pool 40", max_pool1d(ng, 40, 40), max_pool1d(n, 40, 40));
  Tensor flat = reshape(max_pool1d(n, 40, 40), {16, -1}), flatg = reshape(max_pool1d(ng, 40, 40), {16, -1});
  Tensor wf = Tensor::uniform(ctx, {50, flat.size(1)}, -0.05, 0.05), bf = Tensor::uniform(ctx, {50}, -0.05, 0.05);
  cmp("linear (16, 1536) x (50, 1536)^T", linear(flatg, wf.to(kGpu), bf.to(kGpu)), linear(flat, wf, bf));
  // BPNet: one-hot K21 'same', dilated K3 d64 'same', K75 valid over the crop, global average pool.
  Tensor xp = random_onehot(ctx, 4, 1346, DType::F32), xpg = xp.to(kGpu);
  Tensor wp = Tensor::uniform(ctx, {64, 4, 21}, -0.3, 0.3), bp = Tensor::uniform(ctx, {64}, -0.3, 0.3);
  Tensor p1 = conv1d(xp, wp, bp, Conv1dOpts::same(21)), p1g = conv1d(xpg, wp.to(kGpu), bp.to(kGpu), Conv1dOpts::same(21));
  cmp("one-hot conv K21 same L1346", p1g, p1);
  Tensor wd = Tensor::uniform(ctx, {64, 64, 3}, -0.1, 0.1), bd = Tensor::uniform(ctx, {64}, -0.1, 0.1);
  Tensor p2 = conv1d(p1, wd, bd, Conv1dOpts::same(3, 64)), p2g = conv1d(p1g, wd.to(kGpu), bd.to(kGpu), Conv1dOpts::same(3, 64));
  cmp("dilated conv K3 d64 same", p2g, p2);
  Tensor wl = Tensor::uniform(ctx, {2, 64, 75}, -0.05, 0.05);
  cmp("conv 64->2 K75 valid", conv1d(center_crop(p2g, 2, 1074), wl.to(kGpu), Tensor()),
      conv1d(center_crop(p2, 2, 1074), wl, Tensor()));
  cmp("global average pool", global_avg_pool1d(p2g), global_avg_pool1d(p2));
  cmp("log_softmax over 1000", log_softmax(slice(p2g, 2, 0, 1000), 2), log_softmax(slice(p2, 2, 0, 1000), 2));
}

TEST_CASE("training step with the Fourier prior: CPU vs CUDA (losses, every gradient, update, BN stats)") {
  LP_SKIP_WITHOUT_GPU();
  PriorConfig prior;
  prior.attribution_mode = "eval";
  SUBCASE("binary, the paper's architecture, float32") {
    prior.freq_limit = 150;
    json cfg = {{"type", "binary"}, {"input_length", 1000}, {"num_tasks", 1}};
    check_step(cfg, prior, 16, false, 1e-4, 41);
  }
  SUBCASE("binary, awkward sizes, float64") {
    prior.freq_limit = 11;
    json cfg = {{"type", "binary"}, {"input_length", 77}, {"num_tasks", 3}, {"conv_depths", {5, 7}},
                {"conv_filter_sizes", {9, 4}}, {"max_pool_size", 6}, {"fc_sizes", {6}}, {"dtype", "float64"}};
    check_step(cfg, prior, 5, false, 1e-9, 42);
  }
  SUBCASE("profile with matched controls, BPNet geometry, float32") {
    prior.weight = 50, prior.freq_limit = 200;
    json cfg = {{"type", "profile"}, {"input_length", 1346}, {"num_tasks", 2}, {"num_strands", 2}};
    check_step(cfg, prior, 4, true, 1e-4, 43);
  }
  SUBCASE("profile, BPNet geometry, one task, no controls, float32") {
    prior.weight = 50, prior.freq_limit = 200;
    json cfg = {{"type", "profile"}, {"input_length", 1346}, {"num_tasks", 1}, {"num_strands", 2},
                {"controls", "none"}};
    // seed 45 put a ReLU on a kink (kink_sensitivity 5.7e-4): the GPU's cuBLAS order for the first conv switched it
    check_step(cfg, prior, 4, true, 1e-4, 47);
  }
  SUBCASE("profile, two tasks (grouped 1x1 heads), small, float64") {
    prior.weight = 50, prior.freq_limit = 5;
    json cfg = {{"type", "profile"}, {"input_length", 41}, {"num_tasks", 2}, {"num_strands", 2},
                {"dil_conv_filter_sizes", {5, 3}}, {"dil_conv_dilations", {1, 2}}, {"dil_conv_depths", 4},
                {"prof_conv_kernel_size", 7}, {"dtype", "float64"}};
    check_step(cfg, prior, 3, true, 1e-9, 46);
  }
  // bfloat16 GEMMs (8-bit significands, float32 sums): every gradient within kReducedGradTol of the model's gradient
  // scale (compare_steps, reduced), the losses, the forward and the whole updated parameter vector within 5e-2
  SUBCASE("binary, the paper's architecture, float32 with bf16 GEMMs") {
    prior.freq_limit = 150;
    json cfg = {{"type", "binary"}, {"input_length", 1000}, {"num_tasks", 1}};
    check_step(cfg, prior, 16, false, 5e-2, 41, cuda::GemmMath::BF16);
  }
  SUBCASE("profile with matched controls, BPNet geometry, float32 with bf16 GEMMs") {
    prior.weight = 50, prior.freq_limit = 200;
    json cfg = {{"type", "profile"}, {"input_length", 1346}, {"num_tasks", 2}, {"num_strands", 2}};
    check_step(cfg, prior, 4, true, 5e-2, 43, cuda::GemmMath::BF16);
  }
  SUBCASE("profile, awkward sizes, float64") {
    prior.weight = 50, prior.freq_limit = 7;
    json cfg = {{"type", "profile"}, {"input_length", 61}, {"num_tasks", 1}, {"num_strands", 2},
                {"dil_conv_filter_sizes", {5, 3, 3}}, {"dil_conv_dilations", {1, 2, 4}}, {"dil_conv_depths", 6},
                {"prof_conv_kernel_size", 9}, {"dtype", "float64"}};
    check_step(cfg, prior, 3, true, 1e-9, 44);
  }
}

TEST_CASE("train --device cuda: same curve as the CPU, checkpoints load on the CPU, resume crosses devices") {
  LP_SKIP_WITHOUT_GPU();
  const fs::path d = small_training_set("lowpass_test_cuda_train", 96, 120, 7);
  auto cfg_for = [&](const std::string& device, int64_t epochs) {
    json user = {{"model", {{"type", "binary"}, {"input_length", 120}, {"conv_depths", {8, 8}},
                            {"conv_filter_sizes", {9, 5}}, {"max_pool_size", 8}, {"fc_sizes", {8}}}},
                 {"data", {{"train", (d / "train.npz").string()}}},
                 {"train", {{"batch_size", 16}, {"epochs", epochs}, {"seed", 3}, {"threads", 2}, {"progress", false},
                            {"early_stopping", false}, {"device", device}}},
                 {"prior", {{"freq_limit", 20}, {"attribution_mode", "eval"}}}};
    return resolve_config(user, "cuda.json", d.string());
  };
  TrainOptions to;
  to.quiet = true;
  to.out_dir = (d / "cpu").string();
  TrainResult rc = train_model(cfg_for("cpu", 2), to);
  to.out_dir = (d / "gpu").string();
  TrainResult rg = train_model(cfg_for("cuda", 1), to);
  to.resume = true;  // the GPU run's checkpoint, continued on the CPU
  TrainResult rr = train_model(cfg_for("cpu", 2), to);
  CHECK(rc.steps == rr.steps);
  CHECK(rg.steps * 2 == rr.steps);
  auto losses = [](const fs::path& f) {
    std::vector<double> v;
    std::ifstream in(f);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) v.push_back(json::parse(line)["train_total_loss"].get<double>());
    return v;
  };
  auto lc = losses(d / "cpu" / "metrics.jsonl"), lg = losses(d / "gpu" / "metrics.jsonl");
  REQUIRE(lc.size() == 2);
  REQUIRE(lg.size() == 2);  // epoch 1 on the GPU, epoch 2 resumed on the CPU
  // Same init, batches and dropout masks (host RNG): the curves differ by float32 round-off only, which Adam
  // amplifies a little over the steps.
  CHECK(std::abs(lg[0] - lc[0]) <= 1e-3 * std::abs(lc[0]));
  CHECK(std::abs(lg[1] - lc[1]) <= 1e-2 * std::abs(lc[1]));
  Context ctx(1, 0);
  auto wc = safetensors::load(ctx, (d / "cpu" / "model.safetensors").string()).named();
  auto wg = safetensors::load(ctx, (d / "gpu" / "model.safetensors").string()).named();
  REQUIRE(wc.size() == wg.size());
  for (size_t i = 0; i < wc.size(); ++i) {
    INFO(wc[i].first);
    CHECK(rel(wg[i].second, wc[i].second) <= 0.1);
  }
  fs::remove_all(d);
}

TEST_CASE("train --device cuda --cuda-graph, with bf16 GEMMs, with train.cuda_conv tune: each follows the CPU's curve") {
  LP_SKIP_WITHOUT_GPU();
  const fs::path d = small_training_set("lowpass_test_cuda_graph_train", 96, 120, 8);
  std::string conv = "default";
  auto cfg_for = [&](const std::string& device, bool graph, bool bf16) {
    json user = {{"model", {{"type", "binary"}, {"input_length", 120}, {"conv_depths", {8, 8}},
                            {"conv_filter_sizes", {9, 5}}, {"max_pool_size", 8}, {"fc_sizes", {8}}}},
                 {"data", {{"train", (d / "train.npz").string()}, {"valid", (d / "train.npz").string()}}},
                 {"train", {{"batch_size", 16}, {"epochs", 2}, {"seed", 3}, {"threads", 2}, {"progress", false},
                            {"early_stopping", false}, {"device", device}, {"cuda_graph", graph}, {"bf16", bf16},
                            {"cuda_conv", device == "cpu" ? std::string("default") : conv}}},
                 {"prior", {{"freq_limit", 20}, {"attribution_mode", "eval"}}}};
    return resolve_config(user, "cuda_graph.json", d.string());
  };
  TrainOptions to;
  to.quiet = true;
  to.out_dir = (d / "cpu").string();
  train_model(cfg_for("cpu", false, false), to);
  auto lines = [](const fs::path& f) {
    std::vector<json> v;
    std::ifstream in(f);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) v.push_back(json::parse(line));
    return v;
  };
  const auto lc = lines(d / "cpu" / "metrics.jsonl");
  REQUIRE(lc.size() == 2);
  // The graph step differs from the CPU by float32 round-off (Adam amplifies it over the epoch); bf16 GEMMs by
  // bfloat16 round-off of the products, stated at 5e-2. "tune": the graph step with every conv shape timed on its
  // first (eager) step; the choices land in DIR/conv_tune.txt.
  for (const char* run : {"graph", "bf16", "tune"}) {
    const bool bf16 = std::string(run) == "bf16";
    conv = std::string(run) == "tune" ? "tune" : "default";
    to.out_dir = (d / run).string();
    TrainResult rg = train_model(cfg_for("cuda", !bf16, bf16), to);
    if (conv == "tune") {
      std::ifstream f(d / run / "conv_tune.txt");
      std::stringstream ss;
      ss << f.rdbuf();
      CHECK(ss.str().find("forward B ") != std::string::npos);
      CHECK(ss.str().find("weight-grad") != std::string::npos);
    } else if (cuda::default_conv_backend() != cuda::ConvBackend::Tune) {  // LOWPASS_CUDA_CONV=tune: every run tunes
      CHECK(!fs::exists(d / run / "conv_tune.txt"));
    }
    CHECK(rg.epochs == 2);
    const auto lg = lines(d / run / "metrics.jsonl");
    REQUIRE(lg.size() == 2);
    for (size_t e = 0; e < 2; ++e)
      for (const char* k : {"train_total_loss", "valid_total_loss"}) {
        INFO(run, " epoch ", e + 1, " ", k);
        const double a = lg[e][k].get<double>(), b = lc[e][k].get<double>();
        CHECK(std::isfinite(a));
        CHECK(std::abs(a - b) <= (bf16 ? 5e-2 : e == 0 ? 1e-3 : 1e-2) * std::abs(b));
      }
  }
  fs::remove_all(d);
}

TEST_CASE("without a usable GPU, --device cuda stops with the reason and CPU runs are unaffected") {
  if (cuda::available()) {
    MESSAGE("skipped: a GPU is usable here");
    return;
  }
  Context ctx(1, 5);
  auto m = make_model(json{{"type", "binary"}, {"input_length", 50}, {"conv_depths", {4}}, {"conv_filter_sizes", {5}},
                           {"max_pool_size", 4}, {"fc_sizes", {4}}},
                      ctx);
  CHECK_THROWS_AS(m->to(kGpu), Error);
  for (auto& [k, p] : m->parameters()) CHECK(p.is_cpu());  // a failed move leaves the model where it was
  const fs::path d = small_training_set("lowpass_test_cuda_nogpu", 16, 50, 1);
  json user = {{"model", {{"type", "binary"}, {"input_length", 50}, {"conv_depths", {4}}, {"conv_filter_sizes", {5}},
                          {"max_pool_size", 4}, {"fc_sizes", {4}}}},
               {"data", {{"train", (d / "train.npz").string()}}},
               {"train", {{"epochs", 1}, {"device", "cuda"}, {"progress", false}}}};
  TrainOptions to;
  to.quiet = true;
  to.out_dir = (d / "run").string();
  std::string msg;
  try {
    train_model(resolve_config(user, "nogpu.json", d.string()), to);
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO(msg);
  CHECK(msg.find("train.device") != std::string::npos);
  CHECK(msg.find(cuda::unavailable_reason()) != std::string::npos);
  fs::remove_all(d);
}

}  // TEST_SUITE
