// CUDA backend, attributions: the profile model's eval-mode attributions stage by stage, true DeepSHAP and fastISM,
// CPU vs CUDA. Run: build/tests/lowpass_tests -ts=cuda (skips with a message when no GPU is usable).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "models/arch/model.h"
#include "models/attr/attribute.h"
#include "models/loss/objective.h"
#include "tests/cuda_model_test.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;
using nlohmann::json;

TEST_SUITE("cuda") {

// Eval-mode attributions of the BPNet-geometry profile model, stage by stage, CPU vs CUDA in float32: the seed
// (centred logits), the input gradient for a ones seed and for the centred one, the attributions, and first-order
// weight gradients of Σ seed·logits. Localises a difference the training-step case below reports only in its
// gradients (one task without controls against two tasks with them).
TEST_CASE("profile attributions: CPU vs CUDA stage by stage (one task without controls, two with)") {
  LP_SKIP_WITHOUT_GPU();
  for (const bool controls : {false, true}) {
    CAPTURE(controls);
    json cfg = {{"type", "profile"}, {"input_length", 1346}, {"num_tasks", controls ? 2 : 1}, {"num_strands", 2}};
    if (!controls) cfg["controls"] = "none";
    Context cc(2, 47), gc(2, 47), bc(2, 48);
    auto mc = make_model(cfg, cc), mg = make_model(cfg, gc);
    mg->to(kGpu);
    const int64_t B = 4, T = mc->tasks(), O = mc->output_length();
    Tensor x = random_onehot(bc, B, mc->input_length(), DType::F32);
    Tensor ctl = controls ? Tensor::uniform(bc, {B, T, 2, O}, 0.0, 2.0, DType::F32) : Tensor();
    const double kink = kink_sensitivity(*mc, cfg, x, ctl);
    MESSAGE("controls " << controls << ": CPU float32 attributions under 1-ulp parameter perturbations " << kink);
    REQUIRE(kink <= 5e-6);  // no ReLU within rounding distance of zero (else CPU and GPU may legitimately differ)
    Tensor xc = x.detach(), xg = x.to(kGpu);
    xc.set_requires_grad(true), xg.set_requires_grad(true);
    ModelOutput oc = mc->forward(xc, ctl, false), og = mg->forward(xg, controls ? ctl.to(kGpu) : Tensor(), false);
    const double e_fwd = rel(og.profile_logits, oc.profile_logits);
    Tensor sc, sg;
    {
      NoGradGuard ng;
      Tensor lc = oc.profile_logits.detach(), lg = og.profile_logits.detach();
      sc = sub(lc, mean(lc, {3}, true)), sg = sub(lg, mean(lg, {3}, true));
    }
    const double e_seed = rel(sg, sc);
    Tensor onesc = Tensor::ones(cc, oc.profile_logits.shape(), DType::F32);
    Tensor g1c = grad({oc.profile_logits}, {xc}, {onesc}, false, true)[0];
    Tensor g1g = grad({og.profile_logits}, {xg}, {onesc.to(kGpu)}, false, true)[0];
    const double e_ones = rel(g1g, g1c);
    Tensor g2c = grad({oc.profile_logits}, {xc}, {sc}, false, true)[0];
    Tensor g2g = grad({og.profile_logits}, {xg}, {sg}, false, true)[0];
    const double e_centred = rel(g2g, g2c);
    Tensor g3g = grad({og.profile_logits}, {xg}, {sc.to(kGpu)}, false, true)[0];  // the CPU's seed on the GPU
    const double e_cpu_seed = rel(g3g, g2c);
    const double e_attr = rel(input_attributions(og, xg, false), input_attributions(oc, xc, false));
    MESSAGE("controls " << controls << ": forward " << e_fwd << ", seed " << e_seed << ", input grad (ones seed) "
                        << e_ones << ", (centred seed) " << e_centred << ", (the CPU's seed) " << e_cpu_seed
                        << ", attributions " << e_attr);
    CHECK(e_fwd <= 1e-5);
    CHECK(e_seed <= 1e-5);
    CHECK(e_ones <= 1e-5);
    CHECK(e_centred <= 1e-5);
    CHECK(e_cpu_seed <= 1e-5);
    CHECK(e_attr <= 1e-5);
    // first-order weight gradients of Σ seed·logits, every weight (not the biases: the centred seed sums to zero
    // over positions, so their gradients are sums that cancel to round-off)
    std::vector<Tensor> pc, pg;
    std::vector<std::string> names;
    for (auto& [k, p] : mc->parameters())
      if (k.find(".weight") != std::string::npos) names.push_back(k), pc.push_back(p);
    for (auto& [k, p] : mg->parameters())
      if (k.find(".weight") != std::string::npos) pg.push_back(p);
    auto wc = grad({oc.profile_logits}, pc, {sc}, false, true);
    auto wg = grad({og.profile_logits}, pg, {sc.to(kGpu)}, false, true);
    for (size_t i = 0; i < wc.size(); ++i) {
      if (!wc[i].defined() || !wg[i].defined()) continue;
      INFO("weight gradient of ", names[i]);
      const double e = rel(wg[i], wc[i]);
      if (e > 1e-6) MESSAGE("controls " << controls << ": " << names[i] << " " << e);
      CHECK(e <= 1e-5);
    }
  }
}

TEST_CASE("true DeepSHAP on CUDA equals the CPU's (binary with overlapping max-pools; BPNet profile and counts)") {
  LP_SKIP_WITHOUT_GPU();
  // float64: the rescale rules divide by input-minus-reference differences, so only float64 makes a 1e-9 comparison
  // meaningful. The DeepLIFT rules are engine ops (models/attr/deeplift.cpp) and run on the model's device.
  const json bin = {{"type", "binary"}, {"dtype", "float64"}, {"input_length", 60}, {"num_tasks", 2},
                    {"conv_depths", {8, 8, 8}}, {"conv_filter_sizes", {7, 5, 3}}, {"max_pool_size", 8},
                    {"max_pool_stride", 6}, {"fc_sizes", {10, 6}}};
  const json prof = {{"type", "profile"}, {"dtype", "float64"}, {"input_length", 60}, {"output_length", 36},
                     {"num_tasks", 2}, {"num_strands", 2}, {"controls", "matched"},
                     {"dil_conv_filter_sizes", {5, 3, 3}}, {"dil_conv_dilations", {1, 2, 4}},
                     {"dil_conv_depths", {8, 8, 8}}, {"prof_conv_kernel_size", 9}};
  struct Case { const json* cfg; const char* target; };
  for (auto c : {Case{&bin, "logits"}, Case{&bin, "logits:1"}, Case{&prof, "profile"}, Case{&prof, "counts:0"}}) {
    INFO("target ", std::string(c.target));
    const bool profile = c.cfg == &prof;
    Context cc(1, 51), gc(1, 51), bc(1, 52);  // cc and gc draw the same init
    auto mc = make_model(*c.cfg, cc), mg = make_model(*c.cfg, gc);
    mg->to(kGpu);
    Tensor x = random_onehot(bc, 3, 60, DType::F64);
    Tensor ctl = profile ? Tensor::uniform(bc, {3, 2, 2, 36}, 0.0, 2.0, DType::F64) : Tensor();
    attr::AttrOptions o;
    o.method = "deepshap";
    o.refs = 4;
    o.max_batch = 8;  // 12 (example, reference) pairs in chunks of 4
    o.target = attr::parse_target(c.target);
    const auto rc = attr::attribute(*mc, x, ctl, o), rg = attr::attribute(*mg, x, ctl, o);
    double biggest = 0;
    for (double v : rc.hyp.to_vector<double>()) biggest = std::max(biggest, std::fabs(v));
    CHECK(biggest > 1e-6);  // not all zeros
    CHECK(rel(rg.hyp, rc.hyp) <= 1e-9);
    REQUIRE(rg.delta_rel.size() == 3u);
    for (double d : rg.delta_rel) CHECK(d < 1e-3);  // summation to delta on the GPU too
  }
}

TEST_CASE("fastISM on CUDA equals the CPU's whole-pass ISM (binary; BPNet profile and counts, with controls)") {
  LP_SKIP_WITHOUT_GPU();
  // The device path splices windows by index_select (SpliceBase's rows); the CPU runs the host copy. float64: the
  // scores are differences of outputs, so only float64 makes a 1e-9 comparison meaningful.
  const json bin = {{"type", "binary"}, {"dtype", "float64"}, {"input_length", 47}, {"num_tasks", 2},
                    {"conv_depths", {8, 8, 8}}, {"conv_filter_sizes", {7, 5, 3}}, {"max_pool_size", 8},
                    {"max_pool_stride", 6}, {"fc_sizes", {10, 6}}};
  const json prof = {{"type", "profile"}, {"dtype", "float64"}, {"input_length", 61}, {"output_length", 37},
                     {"num_tasks", 2}, {"num_strands", 2}, {"controls", "matched"},
                     {"dil_conv_filter_sizes", {5, 3, 3}}, {"dil_conv_dilations", {1, 2, 4}},
                     {"dil_conv_depths", {8, 8, 8}}, {"prof_conv_kernel_size", 9}};
  struct Case { const json* cfg; const char* target; };
  for (auto c : {Case{&bin, "logits:1"}, Case{&prof, "profile"}, Case{&prof, "counts:0"}}) {
    INFO("target ", std::string(c.target));
    const bool profile = c.cfg == &prof;
    const int64_t L = profile ? 61 : 47;
    Context cc(1, 61), gc(1, 61), bc(1, 62);  // cc and gc draw the same init
    auto mc = make_model(*c.cfg, cc), mg = make_model(*c.cfg, gc);
    mg->to(kGpu);
    Tensor x = random_onehot(bc, 2, L, DType::F64);
    Tensor ctl = profile ? Tensor::uniform(bc, {2, 2, 2, 37}, 0.0, 2.0, DType::F64) : Tensor();
    attr::AttrOptions o;
    o.method = "ism";
    o.max_batch = 3;  // several passes per sequence
    o.target = attr::parse_target(c.target);
    attr::AttrOptions full = o;
    full.ism_full = true;
    const auto rc = attr::attribute(*mc, x, ctl, full), rg = attr::attribute(*mg, x, ctl, o);
    double biggest = 0;
    for (double v : rc.hyp.to_vector<double>()) biggest = std::max(biggest, std::fabs(v));
    CHECK(biggest > 1e-6);  // not all zeros
    CHECK(rel(rg.hyp, rc.hyp) <= 1e-9);
  }
}

}  // TEST_SUITE
