// The public C++ API (include/lowpass/lowpass.h) against the engine it wraps and against plain loops:
// predictions = the model's forward, save/load round trips, attributions = models/attr, grad = finite
// differences, an SGD step = p − lr·g, the Fourier prior = a direct DFT loop and its gradient = FD.
// Run: build-api/tests/lowpass_tests -ts=api
#include <doctest/doctest.h>

#include "tests/api_fixtures.h"

using namespace lowpass::apitest;

TEST_SUITE("api") {
TEST_CASE("Array: views borrow, copies and zeros own, adopt keeps the owner alive") {
  std::vector<float> buf = {1, 2, 3, 4, 5, 6};
  Array v = Array::view(buf.data(), {2, 3});
  CHECK(v.data() == buf.data());
  CHECK(v.size() == 6);
  CHECK(v.owner() == nullptr);
  Array c = Array::copy_of(buf.data(), {3, 2});
  CHECK(c.data() != buf.data());
  buf[0] = 9;
  CHECK(c.data()[0] == 1.f);
  CHECK(c.to_vector() == std::vector<float>({1, 2, 3, 4, 5, 6}));
  Array z = Array::zeros({0, 4, 7});
  CHECK(z.size() == 0);
  auto keep = std::make_shared<std::vector<float>>(5, 2.f);
  Array a = Array::adopt(keep, keep->data(), {5});
  keep.reset();
  CHECK(a.data()[4] == 2.f);  // still alive through the Array
  CHECK(Array().empty());
  CHECK_THROWS_AS(Array::zeros({-1, 3}), api::Error);
  CHECK(!api::version().empty());
}

TEST_CASE("predict equals the engine's eval forward, any batch size; save/load round trips") {
  auto m = api::Model::create(kBinary64, 11, 1);
  CHECK(m.type() == "binary");
  CHECK(m.dtype() == "float64");
  CHECK(m.input_length() == 37);
  CHECK(m.tasks() == 2);
  CHECK(!m.uses_control());
  Array x = onehot(5, 37, 3);
  auto p1 = m.predict(x, {}, 64), p2 = m.predict(x, {}, 1), p3 = m.predict(x, {}, 2);
  REQUIRE(p1.logits.shape() == std::vector<int64_t>{5, 2});
  CHECK(p1.profile_logits.empty());
  CHECK(max_abs_diff(p1.logits, p2.logits) == 0.0);
  CHECK(max_abs_diff(p1.logits, p3.logits) == 0.0);

  fs::path d = tmpdir("predict");
  m.save(d.string());
  CHECK(fs::exists(d / "config.json"));
  CHECK(fs::exists(d / "model.safetensors"));
  // The engine directly: load the directory, eval forward in float64.
  lowpass::Context ctx(1, 0);
  auto im = lowpass::attr::load_model_dir(d.string(), ctx);
  lowpass::Tensor xt = lowpass::cast(lowpass::Tensor::from_vector(ctx, {5, 4, 37}, x.to_vector()), lowpass::DType::F64);
  auto ref = im->forward(xt, {}, false).logits.to_vector<double>();
  for (int64_t i = 0; i < 10; ++i) CHECK(p1.logits.data()[i] == static_cast<float>(ref[i]));

  auto loaded = api::Model::load(d.string());
  CHECK(max_abs_diff(loaded.predict(x).logits, p1.logits) == 0.0);
  // A bare state_dict with the config as JSON text, as a path, and found beside the file.
  m.save_weights((d / "w.safetensors").string());
  api::LoadOptions lo;
  lo.config = kBinary64;
  CHECK(max_abs_diff(api::Model::load((d / "w.safetensors").string(), lo).predict(x).logits, p1.logits) == 0.0);
  lo.config = (d / "config.json").string();
  CHECK(max_abs_diff(api::Model::load((d / "w.safetensors").string(), lo).predict(x).logits, p1.logits) == 0.0);
  CHECK(max_abs_diff(api::Model::load((d / "w.safetensors").string()).predict(x).logits, p1.logits) == 0.0);
  // A training checkpoint (state_dict under "model.").
  lowpass::Checkpoint ck;
  ck.model = im->state_dict();
  lowpass::save_checkpoint((d / "ck.safetensors").string(), ck);
  CHECK(max_abs_diff(api::Model::load((d / "ck.safetensors").string()).predict(x).logits, p1.logits) == 0.0);
  // Parameters are copies with the state_dict names.
  auto names = m.parameter_names();
  REQUIRE(!names.empty());
  CHECK(names.front() == "conv_layers.0.weight");
  CHECK(m.parameter(names.front()).shape() == std::vector<int64_t>{6, 4, 5});
  fs::remove_all(d);
}

TEST_CASE("float32 models read the caller's buffer; profile outputs and controls") {
  auto m = api::Model::create(kBinary32, 2, 1);
  CHECK(m.dtype() == "float32");
  Array x = onehot(1, 37, 5);  // batch 1
  auto p = m.predict(x);
  CHECK(p.logits.shape() == std::vector<int64_t>{1, 1});
  CHECK(std::isfinite(p.logits.data()[0]));

  auto pm = api::Model::create(kProfile, 4, 1);
  CHECK(pm.uses_control());
  CHECK(pm.strands() == 2);
  CHECK(pm.output_length() == 19);
  Array xp = onehot(3, 41, 6);
  Array ctrl = Array::zeros({3, 2, 2, 19});
  for (int64_t i = 0; i < ctrl.size(); ++i) ctrl.mutable_data()[i] = float(i % 5);
  auto pp = pm.predict(xp, ctrl, 2);
  CHECK(pp.profile_logits.shape() == std::vector<int64_t>{3, 2, 2, 19});
  CHECK(pp.log_counts.shape() == std::vector<int64_t>{3, 2, 2});
  CHECK(pp.logits.empty());
  auto pp1 = pm.predict(xp, ctrl, 64);
  CHECK(max_abs_diff(pp.profile_logits, pp1.profile_logits) == 0.0);
  CHECK(max_abs_diff(pp.log_counts, pp1.log_counts) == 0.0);
  // Errors name the field and what was expected.
  try {
    pm.predict(xp);
    FAIL("no error without control");
  } catch (const api::Error& e) {
    CHECK(std::string(e.what()).find("control") != std::string::npos);
  }
  try {
    m.predict(onehot(2, 36, 1));
    FAIL("no error for a wrong length");
  } catch (const api::Error& e) {
    CHECK(std::string(e.what()).find("input_length is 37") != std::string::npos);
  }
  CHECK_THROWS_AS(m.predict(Array::zeros({2, 3, 37})), api::Error);
  CHECK_THROWS_AS(api::Model::load("/nonexistent/model"), api::Error);
  CHECK_THROWS_AS(api::Model::create(R"({"type": "binary", "bogus_key": 1})"), api::Error);
  fs::path d = tmpdir("bare");
  m.save_weights((d / "w.safetensors").string());  // carries its config: loads alone
  CHECK(api::Model::load((d / "w.safetensors").string()).input_length() == 37);
  {  // the same tensors without metadata (as other tools write them): the config must be given
    lowpass::Context ctx(1, 0);
    lowpass::NamedTensors t;
    for (auto& [k, v] : lowpass::safetensors::load(ctx, (d / "w.safetensors").string()).map()) t.emplace_back(k, v);
    lowpass::safetensors::save((d / "plain.safetensors").string(), t);
  }
  try {
    api::Model::load((d / "plain.safetensors").string());
    FAIL("no error without a config");
  } catch (const api::Error& e) {
    CHECK(std::string(e.what()).find("none in its metadata") != std::string::npos);
  }
  fs::remove_all(d);
}

TEST_CASE("attribute: every method equals models/attr; grad equals finite differences of predict") {
  auto m = api::Model::create(kBinary64, 21, 1);
  fs::path d = tmpdir("attr");
  m.save(d.string());
  lowpass::Context ctx(1, 0);
  auto im = lowpass::attr::load_model_dir(d.string(), ctx);
  Array x = onehot(3, 37, 8);
  lowpass::Tensor xt = lowpass::cast(lowpass::Tensor::from_vector(ctx, {3, 4, 37}, x.to_vector()), lowpass::DType::F64);
  for (std::string method : {"grad", "gradxinput", "deepshap_ref", "deepshap", "ism", "ig"}) {
    CAPTURE(method);
    api::AttributionOptions o;
    o.method = method;
    o.refs = 3;
    o.ig_steps = 8;
    o.batch = 2;  // chunks of 2 and 1: results must not depend on chunking
    auto r = m.attribute(x, o);
    REQUIRE(r.hypothetical.shape() == std::vector<int64_t>{3, 4, 37});
    lowpass::attr::AttrOptions io;
    io.method = method;
    io.target = lowpass::attr::default_target(*im);
    io.refs = 3;
    io.ig_steps = 8;
    auto ir = lowpass::attr::attribute(*im, xt, {}, io, 0);
    auto h = ir.hyp.to_vector<double>(), a = ir.actual.to_vector<double>();
    double worst = 0;
    for (size_t i = 0; i < h.size(); ++i) {
      worst = std::max(worst, std::abs(h[i] - r.hypothetical.data()[i]) / (1e-6 + std::abs(h[i])));
      CHECK(r.actual.data()[i] == doctest::Approx(float(a[i])).epsilon(1e-5));
    }
    CHECK(worst < 1e-5);
    if (method == "deepshap" || method == "ig") CHECK(r.delta.size() == 3);
  }
  // grad: d(Σ_t logits)/dx against central differences of the engine's float64 forward (x off the one-hot).
  auto g = m.attribute(x).hypothetical;
  lowpass::Rng r(1);
  auto xv = x.to_vector();
  for (int rep = 0; rep < 12; ++rep) {
    const int64_t i = r.randint(0, x.size());
    const int64_t b = i / (4 * 37);
    const double h = 1e-6;
    auto f = [&](double dv) {
      std::vector<double> xx(xv.begin(), xv.end());
      xx[i] += dv;
      lowpass::NoGradGuard ng;
      auto o = im->forward(lowpass::Tensor::from_vector(ctx, {3, 4, 37}, xx), {}, false).logits.to_vector<double>();
      return o[b * 2] + o[b * 2 + 1];
    };
    const double fd = (f(h) - f(-h)) / (2 * h);
    CHECK(g.data()[i] == doctest::Approx(fd).epsilon(1e-5).scale(1e-6));
  }
  api::AttributionOptions bad;
  bad.method = "nope";
  CHECK_THROWS_AS(m.attribute(x, bad), api::Error);
  fs::remove_all(d);
}

TEST_CASE("train_step: losses equal compute_losses, one SGD step is p - lr g, losses() changes nothing") {
  for (const char* cfg : {kBinary64, kProfile}) {
    auto m = api::Model::create(cfg, 5, 1);
    CAPTURE(m.type());
    fs::path d = tmpdir("train");
    m.save(d.string());
    const bool bin = m.type() == "binary";
    const int64_t N = 4, L = m.input_length();
    Array x = onehot(N, L, 12);
    Array y = bin ? Array::zeros({N, 2}) : Array::zeros({N, 2, 2, 19});
    for (int64_t i = 0; i < y.size(); ++i) y.mutable_data()[i] = bin ? float((i / 2) % 2) : float((i * 7) % 4);
    Array ctrl = bin ? Array() : Array::zeros({N, 2, 2, 19});
    for (int64_t i = 0; i < ctrl.size(); ++i) ctrl.mutable_data()[i] = float(i % 3);
    std::vector<int> status = {1, 0, 1, 1};
    api::TrainStepOptions o;
    o.optimizer = "sgd";
    o.lr = 0.05;
    o.prior.freq_limit = 3;  // a short sequence: keep some bins above the limit
    o.prior.attribution_mode = "eval";

    // The engine directly on a copy: losses and parameter gradients.
    lowpass::Context ctx(1, 0);
    auto im = lowpass::attr::load_model_dir(d.string(), ctx);
    lowpass::Batch b;
    b.x = lowpass::cast(lowpass::Tensor::from_vector(ctx, x.shape(), x.to_vector()), lowpass::DType::F64);
    b.y = lowpass::cast(lowpass::Tensor::from_vector(ctx, y.shape(), y.to_vector()), lowpass::DType::F64);
    if (!bin) b.control = lowpass::cast(lowpass::Tensor::from_vector(ctx, ctrl.shape(), ctrl.to_vector()), lowpass::DType::F64);
    b.status = status;
    lowpass::PriorConfig pc;
    pc.weight = bin ? 1.0 : 50.0;  // the model type's default weight
    pc.freq_limit = 3;
    pc.attribution_mode = "eval";
    lowpass::Losses l = lowpass::compute_losses(*im, b, pc, true);
    lowpass::backward(l.total);

    auto before = m.predict(x, ctrl);
    auto lv = m.losses(x, y, status, o, ctrl);
    auto again = m.predict(x, ctrl);  // running statistics untouched by losses()
    CHECK(max_abs_diff(bin ? again.logits : again.profile_logits, bin ? before.logits : before.profile_logits) == 0.0);
    CHECK(lv.task == doctest::Approx(l.task.item()).epsilon(1e-10));
    CHECK(lv.prior == doctest::Approx(l.prior.item()).epsilon(1e-10));
    CHECK(l.prior.item() > 0);
    auto st = m.train_step(x, y, status, o, ctrl);
    CHECK(st.step == 1);
    CHECK(st.total == doctest::Approx(l.total.item()).epsilon(1e-10));
    for (auto& [name_, p_] : im->parameters()) {
      auto& name = name_; auto& p = p_;  // named copies: clang < 16 cannot capture structured bindings
      CAPTURE(name);
      auto pv = p.to_vector<double>();
      auto gv = p.grad().defined() ? p.grad().to_vector<double>() : std::vector<double>(pv.size(), 0.0);
      Array after = m.parameter(name);
      for (size_t i = 0; i < pv.size(); ++i)
        CHECK(after.data()[i] == doctest::Approx(float(pv[i] - 0.05 * gv[i])).epsilon(1e-6).scale(1e-6));
    }
    // A few Adam steps lower the loss on this batch.
    o.optimizer = "adam";
    o.lr = 0.01;
    double first = m.losses(x, y, status, o, ctrl).total;
    for (int i = 0; i < 15; ++i) m.train_step(x, y, status, o, ctrl);
    CHECK(m.losses(x, y, status, o, ctrl).total < first);
    CHECK_THROWS_AS(m.train_step(x, Array::zeros({N, 3}), status, o, ctrl), api::Error);
    // A cut-off at or above L/2 weights every frequency 1 (a prior on the DC share alone): refused, naming it.
    o.prior.freq_limit = L / 2;
    try {
      m.train_step(x, y, status, o, ctrl);
      FAIL("freq_limit = L/2 accepted");
    } catch (const api::Error& e) {
      CHECK(std::string(e.what()).find("prior.freq_limit") != std::string::npos);
    }
    CHECK_THROWS_AS(m.losses(x, y, status, o, ctrl), api::Error);
    o.prior.freq_limit.reset();  // the default scales with L and is accepted
    CHECK(m.losses(x, y, status, o, ctrl).prior > 0);
    fs::remove_all(d);
  }
}

TEST_CASE("fourier_prior_loss equals a plain DFT loop; its gradient equals finite differences") {
  lowpass::Rng r(4);
  for (int64_t L : {1, 2, 17, 64, 101}) {
    CAPTURE(L);
    const int64_t N = 3;
    Array a = Array::zeros({N, 4, L});
    for (int64_t i = 0; i < a.size(); ++i) a.mutable_data()[i] = float((r.uniform() < 0.5 ? -1 : 1) * r.uniform(0.1, 1.0));
    std::vector<int> status = {1, 0, 1};
    for (auto [K_, s_, sigma_] : {std::tuple{5L, 0.2, 3.0}, std::tuple{2L, -1.0, 0.0}, std::tuple{150L, 0.2, 1.5}}) {
      // K < L/2, as train_step requires: the largest one allowed where K_ is not (none at L = 1).
      auto K = std::min<int64_t>(K_, L / 2 - 1); auto s = s_; auto sigma = sigma_;  // named copies (clang < 16)
      std::optional<double> soft = s > 0 ? std::optional<double>(s) : std::nullopt;
      CHECK_THROWS_AS(api::fourier_prior_loss(a, status, L / 2, soft, sigma), api::Error);
      if (K < 0) continue;
      Array g;
      const double v = api::fourier_prior_loss(a, status, K, soft, sigma, &g);
      CHECK(v == doctest::Approx(plain_fourier_prior(a, status, K, s, sigma)).epsilon(1e-9));
      REQUIRE(g.shape() == a.shape());
      for (int64_t b = 0; b < 4; ++b) {  // rows with status 0 get no gradient
        const int64_t i = (1 * 4 + b % 4) * L + r.randint(0, L);
        CHECK(g.data()[i] == 0.f);
      }
      for (int rep = 0; rep < 6; ++rep) {
        const int64_t i = r.randint(0, a.size());
        const float h = 1.0f / 1024;
        auto f = [&](float dv) {
          Array aa = Array::copy_of(a.data(), a.shape());
          aa.mutable_data()[i] += dv;
          return plain_fourier_prior(aa, status, K, s, sigma);
        };
        const double fd = (f(h) - f(-h)) / (2 * h);
        CHECK(g.data()[i] == doctest::Approx(fd).epsilon(1e-3).scale(1e-4));
      }
    }
  }
  CHECK(api::fourier_prior_loss(Array::zeros({2, 4, 9}), {0, 0}, 3) == 0.0);
  CHECK_THROWS_AS(api::fourier_prior_loss(Array::zeros({2, 3, 9})), api::Error);
  CHECK_THROWS_AS(api::fourier_prior_loss(Array::zeros({2, 4, 9}), {1}), api::Error);
  api::PriorOptions p;
  p.type = "smoothness";
  Array a = Array::zeros({1, 4, 4});
  a.mutable_data()[0] = 1, a.mutable_data()[2] = 3;  // Σ|a| per position: 1 0 3 0 → TV 1 + 3 + 3 = 7
  CHECK(api::prior_loss(a, {}, p) == doctest::Approx(7.0));
}

TEST_CASE("a bare training checkpoint passes the checkpoint's format and checksum checks; a corrupt one fails") {
  auto m = api::Model::create(kBinary32, 3, 1);
  fs::path d = tmpdir("corrupt");
  m.save_weights((d / "w.safetensors").string());
  lowpass::Context ctx(1, 0);
  lowpass::Checkpoint ck;
  for (auto& [k, t] : lowpass::safetensors::load(ctx, (d / "w.safetensors").string()).map()) ck.model.emplace_back(k, t);
  const std::string path = (d / "ck.safetensors").string();
  lowpass::save_checkpoint(path, ck);
  api::LoadOptions lo;
  lo.config = kBinary32;
  Array x = onehot(3, 37, 1);
  CHECK(max_abs_diff(api::Model::load(path, lo).predict(x).logits, m.predict(x).logits) == 0.0);
  // One bit of the last tensor's data flipped: the file still parses, only the checksum can tell.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-2, std::ios::end);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x40);
    f.seekp(-2, std::ios::end);
    f.write(&c, 1);
  }
  const std::string e = error_of([&] { (void)api::Model::load(path, lo); });
  CHECK(has(e, path));
  CHECK(has(e, "checksum"));
  fs::remove_all(d);
}

TEST_CASE("save refuses a training run's directory, so that load(dir) never returns other weights") {
  auto m = api::Model::create(kBinary32, 4, 1);
  auto other = api::Model::create(kBinary32, 5, 1);
  Array x = onehot(2, 37, 2);
  fs::path d = tmpdir("saverun");
  other.save_weights((d / "best.safetensors").string());
  std::string e = error_of([&] { m.save(d.string()); });
  CHECK(has(e, "best.safetensors"));
  CHECK(has(e, "new directory"));
  CHECK(has(e, "save_weights"));
  CHECK(!fs::exists(d / "model.safetensors"));
  fs::remove(d / "best.safetensors");
  {
    std::ofstream f(d / "config.json");
    f << R"({"model": {"type": "binary", "input_length": 37}, "train": {"epochs": 3}})";
  }
  e = error_of([&] { m.save(d.string()); });
  CHECK(has(e, "\"train\""));
  fs::remove(d / "config.json");
  fs::create_directories(d / "checkpoints");
  CHECK(has(error_of([&] { m.save(d.string()); }), "checkpoints"));
  fs::remove_all(d / "checkpoints");
  // A directory save() wrote itself (or an empty one) is written over.
  m.save(d.string());
  other.save(d.string());
  CHECK(max_abs_diff(api::Model::load(d.string()).predict(x).logits, other.predict(x).logits) == 0.0);
  fs::remove_all(d);
}

TEST_CASE("the API trains with lowpass train's defaults: attribution_mode eval; the C options carry the rest") {
  for (const char* type : {"binary", "profile"})
    CHECK(api::PriorOptions{}.attribution_mode ==
          lowpass::default_config(type)["prior"]["attribution_mode"].get<std::string>());
  lp_train_options to;
  lp_train_options_init(&to);
  CHECK(to.attribution_mode == nullptr);
  CHECK(to.counts_loss_weight < 0);
  CHECK(to.l2_weight == 0.0);
  // Through C: the binary model (batch norm) gives another prior in train mode; l2_weight adds l2·Σθ²; the counts
  // weight reaches a profile model's task loss.
  const int64_t N = 4, L = 37;
  Array x = onehot(N, L, 6);
  std::vector<float> y = {1, 0, 0, 1};
  lp_view xv = lp_view_3d(x.data(), N, 4, L), yv = {y.data(), 2, {N, 1, 0, 0}};
  auto step = [&](const lp_train_options& o, lp_step_result* r) {
    lp_model* cm = nullptr;
    REQUIRE(lp_model_create(kBinary32, 8, 1, &cm) == LP_OK);
    const lp_status st = lp_model_train_step(cm, &xv, &yv, nullptr, nullptr, &o, r);
    lp_model_free(cm);
    return st;
  };
  to.freq_limit = 4;
  lp_step_result ev{}, tr{}, l2{};
  REQUIRE(step(to, &ev) == LP_OK);
  auto cpp = api::Model::create(kBinary32, 8, 1);
  api::TrainStepOptions so;
  so.prior.freq_limit = 4;
  CHECK(cpp.losses(x, Array::view(y.data(), {N, 1}), {}, so).prior == doctest::Approx(ev.prior).epsilon(1e-9));
  to.attribution_mode = "train";
  REQUIRE(step(to, &tr) == LP_OK);
  CHECK(tr.task == ev.task);
  CHECK(tr.prior != ev.prior);
  to.attribution_mode = "bogus";
  CHECK(step(to, &tr) == LP_ERR_INVALID_ARGUMENT);
  CHECK(has(lp_last_error(), "attribution_mode"));
  to.attribution_mode = nullptr;
  to.l2_weight = 0.5;
  REQUIRE(step(to, &l2) == LP_OK);
  double sq = 0;
  for (const auto& n : cpp.parameter_names()) {
    if (has(n, "running_") || has(n, "num_batches")) continue;
    Array p = cpp.parameter(n);
    for (int64_t i = 0; i < p.size(); ++i) sq += double(p.data()[i]) * p.data()[i];
  }
  CHECK(l2.total - ev.total == doctest::Approx(0.5 * sq).epsilon(1e-4));
  to.l2_weight = 0;
  to.counts_loss_weight = std::nan("");
  CHECK(step(to, &l2) == LP_ERR_INVALID_ARGUMENT);
  CHECK(has(lp_last_error(), "counts_loss_weight"));

  lp_model* pm = nullptr;
  REQUIRE(lp_model_create(kProfile, 2, 1, &pm) == LP_OK);
  std::vector<float> py(N * 2 * 2 * 19), pc(N * 2 * 2 * 19);
  for (size_t i = 0; i < py.size(); ++i) py[i] = float((i * 7) % 4), pc[i] = float(i % 3);
  const lp_view pyv = {py.data(), 4, {N, 2, 2, 19}}, pcv = {pc.data(), 4, {N, 2, 2, 19}};
  Array px = onehot(N, 41, 2);
  const lp_view pxv = lp_view_3d(px.data(), N, 4, 41);
  lp_train_options po;
  lp_train_options_init(&po);
  po.prior = "none";
  po.lr = 1e-12;  // the weights barely move between the two steps
  lp_step_result w20{}, w0{};
  REQUIRE(lp_model_train_step(pm, &pxv, &pyv, nullptr, &pcv, &po, &w20) == LP_OK);
  po.counts_loss_weight = 0;
  REQUIRE(lp_model_train_step(pm, &pxv, &pyv, nullptr, &pcv, &po, &w0) == LP_OK);
  CHECK(w0.task < w20.task);
  lp_model_free(pm);
}

TEST_CASE("losses() leaves the dropout RNG as it was: losses then train_step equals train_step alone") {
  const char* drop =
      R"({"type": "binary", "input_length": 37, "num_tasks": 1, "conv_depths": [6, 5], "conv_filter_sizes": [5, 3],
          "max_pool_size": 4, "max_pool_stride": 3, "fc_sizes": [7], "conv_drop_rate": 0.3, "fc_drop_rate": 0.3})";
  auto a = api::Model::create(drop, 9, 1), b = api::Model::create(drop, 9, 1);
  Array x = onehot(4, 37, 4);
  Array y = Array::zeros({4, 1});
  y.mutable_data()[0] = 1, y.mutable_data()[2] = 1;
  api::TrainStepOptions so;
  so.prior.freq_limit = 4;
  const double l1 = a.losses(x, y, {}, so).total, l2 = a.losses(x, y, {}, so).total;
  CHECK(l1 == l2);
  const auto sa = a.train_step(x, y, {}, so), sb = b.train_step(x, y, {}, so);
  CHECK(sa.total == sb.total);
  CHECK(sa.total == doctest::Approx(l1).epsilon(1e-9));  // the same masks (a no-grad vs a grad forward)
  for (const auto& n : a.parameter_names()) CHECK(max_abs_diff(a.parameter(n), b.parameter(n)) == 0.0);
}

TEST_CASE("save_checkpoint + resume: training goes on bit for bit (Adam state, steps, dropout RNG); corrupt refused") {
  const char* drop =
      R"({"type": "binary", "input_length": 37, "num_tasks": 1, "conv_depths": [6, 5], "conv_filter_sizes": [5, 3],
          "max_pool_size": 4, "max_pool_stride": 3, "fc_sizes": [7], "conv_drop_rate": 0.2})";
  fs::path d = tmpdir("resume");
  Array x = onehot(6, 37, 11);
  Array y = Array::zeros({6, 1});
  for (int i : {0, 2, 3}) y.mutable_data()[i] = 1;
  api::TrainStepOptions so;
  so.prior.freq_limit = 4;
  so.lr = 0.01;
  // A: 5 steps straight. B: 3 steps, checkpoint; C: a fresh model of another seed resumes it for 2 steps.
  auto a = api::Model::create(drop, 4, 1), b = api::Model::create(drop, 4, 1);
  std::vector<double> la;
  for (int i = 0; i < 5; ++i) la.push_back(a.train_step(x, y, {}, so).total);
  for (int i = 0; i < 3; ++i) b.train_step(x, y, {}, so);
  const std::string ck = (d / "ck.safetensors").string();
  b.save_checkpoint(ck);
  auto c = api::Model::create(drop, 99, 1);
  c.resume(ck);
  for (int i = 3; i < 5; ++i) {
    const auto s = c.train_step(x, y, {}, so);
    CHECK(s.total == la[i]);
    CHECK(s.step == i + 1);
  }
  for (const auto& n : a.parameter_names()) CHECK(max_abs_diff(a.parameter(n), c.parameter(n)) == 0.0);
  // Without the optimiser state (weights alone), training starts a fresh Adam. The weights file and the checkpoint
  // carry their config: either loads alone (no config.json beside them), with b's predictions.
  b.save_weights((d / "w.safetensors").string());
  auto w = api::Model::load((d / "w.safetensors").string());
  CHECK(max_abs_diff(w.predict(x).logits, b.predict(x).logits) == 0.0);
  CHECK(max_abs_diff(api::Model::load(ck).predict(x).logits, b.predict(x).logits) == 0.0);
  CHECK(w.train_step(x, y, {}, so).step == 1);
  // Another architecture, or a flipped byte, is an Error naming the file.
  std::string two_tasks = drop;  // 2 tasks: another output layer, the layers before it fit
  const std::string one = "\"num_tasks\": 1";
  two_tasks.replace(two_tasks.find(one), one.size(), "\"num_tasks\": 2");
  auto other = api::Model::create(two_tasks, 1, 1);
  std::vector<Array> before;
  for (const auto& n : other.parameter_names()) before.push_back(other.parameter(n));
  std::string e = error_of([&] { other.resume(ck); });
  INFO(e);
  CHECK((has(e, ck) && has(e, "do not fit")));
  size_t k = 0;  // a failed resume changes nothing, not even the layers that fitted
  for (const auto& n : other.parameter_names()) CHECK(max_abs_diff(other.parameter(n), before[k++]) == 0.0);
  {
    std::fstream f(ck, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  e = error_of([&] { c.resume(ck); });
  CHECK((has(e, ck) && has(e, "checksum")));
  fs::remove_all(d);
}
}  // TEST_SUITE
