// The two architectures: state_dict names/shapes equal the reference's, geometry checks, config errors,
// state_dict round trips, batch-norm modes, and the profile trunk wiring against a plain loop.
// Run: build/tests/lowpass_tests -ts=arch
#include <doctest/doctest.h>

#include <cmath>

#include "models/arch/binary_net.h"
#include "models/arch/profile_net.h"
#include "tests/gradcheck.h"
#include "tests/errors.h"

using namespace lowpass;
using nlohmann::json;

namespace {

std::vector<std::pair<std::string, Shape>> names_shapes(const Model& m) {
  std::vector<std::pair<std::string, Shape>> r;
  for (const auto& [k, v] : m.state_dict()) r.emplace_back(k, v.shape());
  return r;
}

Tensor one_hot(Context& ctx, int64_t B, int64_t L, DType dt) {
  std::vector<double> v(static_cast<size_t>(B * 4 * L), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l) {
      int64_t base = ctx.rng().randint(0, 5);  // 4 = N (all-zero column)
      if (base < 4) v[static_cast<size_t>((b * 4 + base) * L + l)] = 1.0;
    }
  Tensor t = Tensor::from_vector(ctx, {B, 4, L}, v);
  return dt == DType::F64 ? t : t.to(dt);
}

using test::error_of;

}  // namespace

TEST_SUITE("arch") {
TEST_CASE("binary default config: reference state_dict names, order and shapes") {
  Context ctx(1, 1);
  auto m = make_model(json{{"type", "binary"}, {"num_tasks", 4}}, ctx);
  using NS = std::vector<std::pair<std::string, Shape>>;
  NS expect;
  auto bn = [&](const std::string& p, int64_t c) {
    expect.push_back({p + ".weight", {c}});
    expect.push_back({p + ".bias", {c}});
    expect.push_back({p + ".running_mean", {c}});
    expect.push_back({p + ".running_var", {c}});
    expect.push_back({p + ".num_batches_tracked", {}});
  };
  expect.push_back({"conv_layers.0.weight", {64, 4, 15}});
  expect.push_back({"conv_layers.0.bias", {64}});
  bn("conv_layers.2", 64);
  expect.push_back({"conv_layers.4.weight", {64, 64, 15}});
  expect.push_back({"conv_layers.4.bias", {64}});
  bn("conv_layers.6", 64);
  expect.push_back({"conv_layers.8.weight", {64, 64, 13}});
  expect.push_back({"conv_layers.8.bias", {64}});
  bn("conv_layers.10", 64);
  expect.push_back({"fc_layers.0.weight", {50, 1536}});
  expect.push_back({"fc_layers.0.bias", {50}});
  bn("fc_layers.2", 50);
  expect.push_back({"fc_layers.4.weight", {15, 50}});
  expect.push_back({"fc_layers.4.bias", {15}});
  bn("fc_layers.6", 15);
  expect.push_back({"out_map_fc.weight", {4, 15}});
  expect.push_back({"out_map_fc.bias", {4}});
  CHECK(names_shapes(*m) == expect);
  CHECK(m->parameters().size() == 22);
  CHECK(m->buffers().size() == 15);
  auto* bnet = dynamic_cast<BinaryNet*>(m.get());
  REQUIRE(bnet);
  CHECK(bnet->cfg().conv_lengths() == std::vector<int64_t>{986, 972, 960});
  CHECK(bnet->cfg().pooled_length() == 24);
  CHECK(bnet->cfg().fc_input_size() == 1536);
  CHECK(m->input_length() == 1000);
  CHECK(m->output_length() == 4);
  // Forward at the default size, both modes.
  Tensor x = one_hot(ctx, 2, 1000, DType::F32);
  CHECK(m->forward(x, Tensor(), true).logits.shape() == Shape{2, 4});
  CHECK(m->forward(x, Tensor(), false).logits.shape() == Shape{2, 4});
}

TEST_CASE("binary: derived FC size, no-BN indices, geometry errors") {
  Context ctx(1, 2);
  auto m = make_model(json{{"type", "binary"}, {"input_length", 200}, {"num_tasks", 2}}, ctx);
  auto sd = names_shapes(*m);
  CHECK(sd[21].first == "fc_layers.0.weight");
  CHECK(sd[21].second == Shape{50, 256});  // 200 → 186 → 172 → 160 → pool 4 → 64·4
  auto nb = make_model(json{{"type", "binary"}, {"batch_norm", false}, {"input_length", 120}}, ctx);
  std::vector<std::string> names;
  for (auto& [k, s] : names_shapes(*nb)) names.push_back(k);
  CHECK(names == std::vector<std::string>{"conv_layers.0.weight", "conv_layers.0.bias", "conv_layers.3.weight",
                                          "conv_layers.3.bias", "conv_layers.6.weight", "conv_layers.6.bias",
                                          "fc_layers.0.weight", "fc_layers.0.bias", "fc_layers.3.weight",
                                          "fc_layers.3.bias", "out_map_fc.weight", "out_map_fc.bias"});
  CHECK(error_of([&] { make_model(json{{"type", "binary"}, {"input_length", 60}}, ctx); }).find("max_pool_size") !=
        std::string::npos);
  CHECK(error_of([&] { make_model(json{{"type", "binary"}, {"input_length", 20}}, ctx); })
            .find("conv_filter_sizes[1]") != std::string::npos);
  CHECK(error_of([&] { make_model(json{{"type", "binary"}, {"conv_widths", 3}}, ctx); }).find("model.conv_widths") !=
        std::string::npos);
  CHECK(error_of([&] { make_model(json{{"type", "binary"}, {"conv_depths", {64, 64}}}, ctx); })
            .find("model.conv_depths") != std::string::npos);
  CHECK(error_of([&] { make_model(json{{"type", "binary"}, {"num_tasks", 0}}, ctx); }).find("model.num_tasks") !=
        std::string::npos);
  CHECK(error_of([&] { make_model(json{{"type", "bpnet"}}, ctx); }).find("model.type") != std::string::npos);
  // Wrong input length is a user error too.
  CHECK(error_of([&] { m->forward(one_hot(ctx, 1, 100, DType::F32), Tensor(), true); }).find("(B, 4, 200)") !=
        std::string::npos);
}

TEST_CASE("profile default config: reference names and shapes, crop 1074, forward shapes") {
  Context ctx(2, 3);
  auto m = make_model(json{{"type", "profile"}, {"num_tasks", 4}}, ctx);
  auto* p = dynamic_cast<ProfileNet*>(m.get());
  REQUIRE(p);
  CHECK(p->cfg().crop_length() == 1074);
  CHECK(m->input_length() == 1346);
  CHECK(m->output_length() == 1000);
  std::vector<std::pair<std::string, Shape>> expect{{"dil_convs.0.weight", {64, 4, 21}}, {"dil_convs.0.bias", {64}}};
  for (int i = 1; i < 7; ++i) {
    expect.push_back({"dil_convs." + std::to_string(i) + ".weight", {64, 64, 3}});
    expect.push_back({"dil_convs." + std::to_string(i) + ".bias", {64}});
  }
  expect.push_back({"prof_large_conv.weight", {8, 64, 75}});
  expect.push_back({"prof_large_conv.bias", {8}});
  expect.push_back({"prof_one_conv.weight", {8, 4, 1}});
  expect.push_back({"prof_one_conv.bias", {8}});
  expect.push_back({"count_dense.weight", {8, 64}});
  expect.push_back({"count_dense.bias", {8}});
  expect.push_back({"count_one_conv.weight", {8, 4, 1}});
  expect.push_back({"count_one_conv.bias", {8}});
  CHECK(names_shapes(*m) == expect);
  Tensor x = one_hot(ctx, 1, 1346, DType::F32);
  Tensor c = Tensor::full(ctx, {1, 4, 2, 1000}, 1.0);
  auto out = m->forward(x, c, true);
  CHECK(out.profile_logits.shape() == Shape{1, 4, 2, 1000});
  CHECK(out.log_counts.shape() == Shape{1, 4, 2});
  // Without controls: 1×1 convs map S → S per task. Shared: control (B, 1, S, O).
  auto none = make_model(json{{"type", "profile"}, {"num_tasks", 3}, {"num_strands", 1}, {"controls", "none"}}, ctx);
  CHECK(names_shapes(*none)[16].second == Shape{3, 1, 1});
  auto shared = make_model(json{{"type", "profile"}, {"num_tasks", 3}, {"controls", "shared"}}, ctx);
  CHECK(names_shapes(*shared)[16].second == Shape{6, 4, 1});
  CHECK(shared->forward(x, Tensor::full(ctx, {1, 1, 2, 1000}, 2.0), true).profile_logits.shape() ==
        Shape{1, 3, 2, 1000});
  CHECK(error_of([&] { shared->forward(x, c, true); }).find("control must be (1, 1, 2, 1000)") != std::string::npos);
  CHECK(error_of([&] { none->forward(x, c, true); }).find("controls is \"none\"") != std::string::npos);
}

TEST_CASE("profile geometry: derived lengths and configs that cannot fit") {
  Context ctx(1, 4);
  auto a = ProfileNetConfig::from_json(json{{"type", "profile"}, {"input_length", 2346}});
  CHECK(a.output_length == 2000);
  auto b = ProfileNetConfig::from_json(json{{"type", "profile"}, {"output_length", 500}});
  CHECK(b.input_length == 846);
  auto c = ProfileNetConfig::from_json(json{{"type", "profile"}, {"dil_conv_filter_sizes", {21, 3, 3}}});
  CHECK(c.dil_conv_dilations == std::vector<int64_t>{1, 2, 4});
  CHECK(c.output_length == 1346 - 20 - 12 - 74);
  std::string e = error_of([] { ProfileNetConfig::from_json(json{{"type", "profile"}, {"input_length", 1346}, {"output_length", 1001}}); });
  CHECK(e.find("model.output_length") != std::string::npos);
  CHECK(e.find("1074") != std::string::npos);  // says where the crop lands
  e = error_of([] { ProfileNetConfig::from_json(json{{"type", "profile"}, {"input_length", 300}}); });
  CHECK(e.find("too short") != std::string::npos);
  e = error_of([] { ProfileNetConfig::from_json(json{{"type", "profile"}, {"dil_conv_filter_sizes", {20, 3}}}); });
  CHECK(e.find("even") != std::string::npos);
  e = error_of([] { ProfileNetConfig::from_json(json{{"type", "profile"}, {"dil_conv_dilations", {1, 2}}}); });
  CHECK(e.find("model.dil_conv_dilations") != std::string::npos);
  e = error_of([] { ProfileNetConfig::from_json(json{{"type", "profile"}, {"dil_conv_depths", {64, 32, 64, 64, 64, 64, 64}}}); });
  CHECK(e.find("model.dil_conv_depths[1]") != std::string::npos);
  e = error_of([] { ProfileNetConfig::from_json(json{{"type", "profile"}, {"controls", "matching"}}); });
  CHECK(e.find("model.controls") != std::string::npos);
}

TEST_CASE("profile forward equals a plain-loop implementation of the reference wiring") {
  Context ctx(1, 5);
  for (std::string controls : {"matched", "shared", "none"}) {
    INFO(controls);
    json cfg{{"type", "profile"}, {"controls", controls}, {"input_length", 23}, {"num_tasks", 2}, {"num_strands", 2},
             {"dil_conv_filter_sizes", {3, 3, 3}}, {"dil_conv_dilations", {1, 2, 3}}, {"dil_conv_depths", {3, 3, 2}},
             {"prof_conv_kernel_size", 5}, {"dtype", "float64"}};
    auto m = make_model(cfg, ctx);
    const int64_t B = 2, T = 2, S = 2, I = 23, O = m->output_length(), crop = 23 - 12;
    REQUIRE(O == 7);
    Tensor x = test::rand64(ctx, {B, 4, I});
    const int64_t Tc = controls == "shared" ? 1 : T;
    Tensor ctrl = controls == "none" ? Tensor() : test::rand64(ctx, {B, Tc, S, O}, 0.0, 3.0);
    auto out = m->forward(x, ctrl, true);
    std::map<std::string, std::vector<double>> P;
    for (auto& [k, v] : m->state_dict()) P[k] = v.to_vector<double>();
    auto xv = x.to_vector<double>();
    auto cv = ctrl.defined() ? ctrl.to_vector<double>() : std::vector<double>();
    std::vector<int64_t> ks{3, 3, 3}, ds{1, 2, 3}, cs{4, 3, 3, 2};
    for (int64_t b = 0; b < B; ++b) {
      // trunk with 'same' padding and running sums
      std::vector<std::vector<double>> in(4, std::vector<double>(I)), sum, last;
      for (int c = 0; c < 4; ++c)
        for (int64_t l = 0; l < I; ++l) in[c][l] = xv[(b * 4 + c) * I + l];
      for (int i = 0; i < 3; ++i) {
        auto& W = P["dil_convs." + std::to_string(i) + ".weight"];
        auto& Bi = P["dil_convs." + std::to_string(i) + ".bias"];
        const auto& src = i == 0 ? in : sum;
        std::vector<std::vector<double>> o(cs[i + 1], std::vector<double>(I));
        const int64_t pad = ds[i] * (ks[i] - 1) / 2;
        for (int64_t co = 0; co < cs[i + 1]; ++co)
          for (int64_t l = 0; l < I; ++l) {
            double s = Bi[co];
            for (int64_t ci = 0; ci < cs[i]; ++ci)
              for (int64_t k = 0; k < ks[i]; ++k) {
                int64_t p = l - pad + k * ds[i];
                if (p >= 0 && p < I) s += W[(co * cs[i] + ci) * ks[i] + k] * src[ci][p];
              }
            o[co][l] = std::max(s, 0.0);
          }
        if (i < 2) {
          if (sum.empty()) sum = o;
          else
            for (size_t c = 0; c < o.size(); ++c)
              for (int64_t l = 0; l < I; ++l) sum[c][l] += o[c][l];
        }
        last = o;
      }
      const int64_t st = (I - crop) / 2;
      std::vector<double> prof(T * S * O), cnt(T * S), gap(2);
      for (int64_t c = 0; c < 2; ++c) {
        for (int64_t l = 0; l < crop; ++l) gap[c] += last[c][st + l];
        gap[c] /= crop;
      }
      auto& WL = P["prof_large_conv.weight"];
      for (int64_t co = 0; co < T * S; ++co) {
        for (int64_t o = 0; o < O; ++o) {
          double s = P["prof_large_conv.bias"][co];
          for (int64_t ci = 0; ci < 2; ++ci)
            for (int64_t k = 0; k < 5; ++k) s += WL[(co * 2 + ci) * 5 + k] * last[ci][st + o + k];
          prof[co * O + o] = s;
        }
        double s = P["count_dense.bias"][co];
        for (int64_t ci = 0; ci < 2; ++ci) s += P["count_dense.weight"][co * 2 + ci] * gap[ci];
        cnt[co] = s;
      }
      const int64_t G = controls == "none" ? S : 2 * S;  // inputs per task group
      for (int64_t t = 0; t < T; ++t)
        for (int64_t s = 0; s < S; ++s) {
          const int64_t co = t * S + s;
          for (int64_t o = 0; o < O; ++o) {
            double v = P["prof_one_conv.bias"][co];
            for (int64_t g = 0; g < G; ++g) {
              double inp = g < S ? prof[(t * S + g) * O + o]
                                 : cv[(((b * Tc) + (Tc == 1 ? 0 : t)) * S + (g - S)) * O + o];
              v += P["prof_one_conv.weight"][co * G + g] * inp;
            }
            CHECK(out.profile_logits.to_vector<double>()[((b * T + t) * S + s) * O + o] == doctest::Approx(v).epsilon(1e-10));
          }
          double v = P["count_one_conv.bias"][co];
          for (int64_t g = 0; g < G; ++g) {
            double inp = cnt[t * S + g % S];
            if (g >= S) {
              inp = 0;
              for (int64_t o = 0; o < O; ++o) inp += cv[(((b * Tc) + (Tc == 1 ? 0 : t)) * S + (g - S)) * O + o];
            }
            v += P["count_one_conv.weight"][co * G + g] * inp;
          }
          CHECK(out.log_counts.to_vector<double>()[(b * T + t) * S + s] == doctest::Approx(v).epsilon(1e-10));
        }
    }
  }
}

TEST_CASE("state_dict round trip, strict loading errors, batch-norm modes") {
  Context ctx(1, 6);
  json cfg{{"type", "binary"}, {"input_length", 120}, {"num_tasks", 3}, {"dtype", "float64"}};
  auto a = make_model(cfg, ctx);
  auto b = make_model(cfg, ctx);
  Tensor x = one_hot(ctx, 5, 120, DType::F64);
  // Different init → different outputs; after loading, identical (eval mode and training mode).
  std::map<std::string, Tensor> sd;
  for (auto& [k, v] : a->state_dict()) sd[k] = v.clone();
  b->load_state_dict(sd);
  CHECK(test::rel_err(a->forward(x, Tensor(), false).logits.to_vector<double>(),
                      b->forward(x, Tensor(), false).logits.to_vector<double>()) == 0.0);
  // Training forward updates running stats and the counter; eval forward does not.
  auto before = a->buffers()[0].second.to_vector<double>();
  Tensor ya = a->forward(x, Tensor(), true).logits;
  CHECK(a->buffers()[0].second.to_vector<double>() != before);
  CHECK(a->buffers()[2].second.item() == 1.0);  // conv_layers.2.num_batches_tracked
  auto after = a->buffers()[0].second.to_vector<double>();
  a->forward(x, Tensor(), false);
  CHECK(a->buffers()[0].second.to_vector<double>() == after);
  // Training-mode BN: the batch sum of the logits does not depend on x (BN right before the output).
  Tensor x2 = one_hot(ctx, 5, 120, DType::F64);
  auto s1 = sum(b->forward(x, Tensor(), true).logits, {0}).to_vector<double>();
  auto s2 = sum(b->forward(x2, Tensor(), true).logits, {0}).to_vector<double>();
  CHECK(test::rel_err(s1, s2) < 1e-12);
  // Strict errors name the key.
  auto missing = sd;
  missing.erase("fc_layers.2.running_var");
  CHECK(error_of([&] { b->load_state_dict(missing); }).find("fc_layers.2.running_var") != std::string::npos);
  b->load_state_dict(missing, false);
  auto extra = sd;
  extra["conv_layers.1.weight"] = Tensor::zeros(ctx, {1});
  CHECK(error_of([&] { b->load_state_dict(extra); }).find("unknown key 'conv_layers.1.weight'") != std::string::npos);
  auto bad = sd;
  bad["out_map_fc.weight"] = Tensor::zeros(ctx, {2, 15}, DType::F64);
  CHECK(error_of([&] { b->load_state_dict(bad); }).find("out_map_fc.weight") != std::string::npos);
  // A float32 state loads into a float64 model (values converted).
  std::map<std::string, Tensor> sd32;
  for (auto& [k, v] : a->state_dict()) sd32[k] = v.to(DType::F32);
  b->load_state_dict(sd32);
  CHECK(b->parameters()[0].second.dtype() == DType::F64);
}
}

TEST_SUITE("arch") {
TEST_CASE("binary model with dropout: gradients reach every layer, the masks are scaled and random per step") {
  // Every parameter must get a gradient through the dropout layers (the mask is a constant, the product is not),
  // and eval mode must not drop anything.
  Context ctx(1, 31);
  auto m = make_model(json{{"type", "binary"}, {"input_length", 40}, {"conv_filter_sizes", {5, 3}},
                           {"conv_depths", {6, 4}}, {"max_pool_size", 4}, {"fc_sizes", {5}}, {"num_tasks", 1},
                           {"conv_drop_rate", 0.3}, {"fc_drop_rate", 0.2}, {"dtype", "float64"}},
                      ctx);
  Tensor x = one_hot(ctx, 8, 40, DType::F64);
  std::vector<Tensor> ps;
  for (auto& [k, p] : m->parameters()) ps.push_back(p);
  const ModelOutput a = m->forward(x, Tensor(), true);
  auto g = grad({sum_all(a.logits)}, ps, {}, false, true);
  for (size_t i = 0; i < ps.size(); ++i) {
    INFO(m->parameters()[i].first);
    REQUIRE(g[i].defined());
    CHECK(std::sqrt(sum_all(square(g[i])).item()) > 0);
  }
  // Two training forwards draw different masks; eval forwards are equal.
  const ModelOutput b = m->forward(x, Tensor(), true);
  CHECK(sum_all(square(sub(a.logits, b.logits))).item() > 0);
  CHECK(m->forward(x, Tensor(), false).logits.to_vector<double>() ==
        m->forward(x, Tensor(), false).logits.to_vector<double>());
}
}
