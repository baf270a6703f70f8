// The public C++ API's robustness: bad and empty inputs, allocations the machine cannot make, refused options,
// one Model shared by threads, the caller's locale. Fixtures: tests/api_fixtures.h.
// Run: build-api/tests/lowpass_tests -ts=api
#include <doctest/doctest.h>

#include <locale>
#include <thread>

#include "tests/api_fixtures.h"

using namespace lowpass::apitest;

TEST_SUITE("api") {
TEST_CASE("an allocation the machine cannot make is api::OutOfMemory, and LP_ERR_OUT_OF_MEMORY through C") {
#ifdef LP_TEST_ASAN
  MESSAGE("skipped under AddressSanitizer");
#else
  // 2^50 rows: the (N, 1) result alone would need 4 PiB, past any address space, whatever the overcommit setting.
  // The rows are never read: the result is allocated before the first batch.
  const int64_t N = int64_t{1} << 50;
  std::vector<float> row(4 * 37, 0.0f);
  auto m = api::Model::create(kBinary32, 2, 1);
  CHECK_THROWS_AS((void)m.predict(Array::view(row.data(), {N, 4, 37}), {}, 64), api::OutOfMemory);
  lp_model* cm = nullptr;
  REQUIRE(lp_model_create(kBinary32, 2, 1, &cm) == LP_OK);
  lp_view x = lp_view_3d(row.data(), N, 4, 37);
  lp_array* out = nullptr;
  CHECK(lp_model_predict(cm, &x, nullptr, &out, nullptr) == LP_ERR_OUT_OF_MEMORY);
  CHECK(std::string(lp_last_error()) == "out of memory");
  CHECK(out == nullptr);
  lp_model_free(cm);
#endif
}

TEST_CASE("inputs with no data or a non-finite value are api::Errors naming the array and the first bad index") {
  auto m = api::Model::create(kBinary32, 2, 1);
  const int64_t N = 2, L = 37;
  Array x = onehot(N, L, 3);
  Array y = Array::zeros({N, 1});
  api::TrainStepOptions so;
  so.prior.freq_limit = 4;
  CHECK(has(error_of([&] { m.train_step(x, Array::view(nullptr, {N, 1}), {}, so); }), "y has no data"));
  CHECK(has(error_of([&] { (void)m.losses(x, Array::view(nullptr, {N, 1}), {}, so); }), "y has no data"));
  Array bad = Array::copy_of(x.data(), x.shape());
  bad.mutable_data()[(1 * 4 + 2) * L + 5] = std::nanf("");
  const std::string e = error_of([&] { (void)m.predict(bad); });
  CHECK(has(e, "x[1, 2, 5]"));
  CHECK(has(e, "nan"));
  CHECK(has(error_of([&] { (void)m.attribute(bad); }), "x[1, 2, 5]"));
  CHECK(has(error_of([&] { m.train_step(bad, y, {}, so); }), "x[1, 2, 5]"));
  CHECK(has(error_of([&] { (void)m.losses(bad, y, {}, so); }), "x[1, 2, 5]"));
  bad.mutable_data()[(1 * 4 + 2) * L + 5] = INFINITY;
  CHECK(has(error_of([&] { (void)m.predict(bad); }), "inf"));
  Array yi = Array::zeros({N, 1});
  yi.mutable_data()[1] = -INFINITY;
  CHECK(has(error_of([&] { m.train_step(x, yi, {}, so); }), "y[1, 0]"));
  yi.mutable_data()[1] = -1;  // -1: the label is ignored
  CHECK(error_of([&] { m.train_step(x, yi, {}, so); }).empty());

  auto p = api::Model::create(kProfile, 2, 1);
  Array px = onehot(N, 41, 3);
  CHECK(has(error_of([&] { (void)p.predict(px, Array::view(nullptr, {N, 2, 2, 19})); }), "control has no data"));
  Array c = Array::zeros({N, 2, 2, 19});
  c.mutable_data()[3] = std::nanf("");
  CHECK(has(error_of([&] { (void)p.predict(px, c); }), "control[0, 0, 0, 3]"));
  CHECK(has(error_of([&] { (void)p.attribute(px, {}, c); }), "control[0, 0, 0, 3]"));
  CHECK(has(error_of([&] { p.train_step(px, Array::zeros({N, 2, 2, 19}), {}, {}, c); }), "control[0, 0, 0, 3]"));
  // Counts are >= 0, as the command line's npz and bigWig readers require (a fold-change track is not counts).
  c = Array::zeros({N, 2, 2, 19});
  c.mutable_data()[2 * 2 * 19 + 19 + 5] = -1;  // [1, 0, 1, 5]
  const std::string neg = error_of([&] { (void)p.predict(px, c); });
  CHECK_MESSAGE(has(neg, "predict: control[1, 0, 1, 5] is -1: counts must be >= 0"), neg);
  CHECK(has(error_of([&] { (void)p.attribute(px, {}, c); }), "control[1, 0, 1, 5] is -1"));
  CHECK(has(error_of([&] { p.train_step(px, Array::zeros({N, 2, 2, 19}), {}, {}, c); }), "control[1, 0, 1, 5] is -1"));
  Array py = Array::zeros({N, 2, 2, 19});
  py.mutable_data()[7] = -0.5f;
  const Array c0 = Array::zeros({N, 2, 2, 19});
  CHECK(has(error_of([&] { p.train_step(px, py, {}, {}, c0); }), "train_step: y[0, 0, 0, 7] is -0.5: counts must be"));
  CHECK(has(error_of([&] { (void)p.losses(px, py, {}, {}, c0); }), "losses: y[0, 0, 0, 7] is -0.5"));
  // A control of the wrong shape is named with the shape the model wants.
  CHECK(has(error_of([&] { (void)p.predict(px, Array::zeros({N, 1, 2, 19})); }), "control must be (2, 2, 2, 19)"));
}

#ifndef LP_TEST_ASAN
TEST_CASE("a failed engine allocation is api::OutOfMemory and LP_ERR_OUT_OF_MEMORY, with the engine's message") {
  // 10^14 positions: the first activation alone needs petabytes.
  const char* huge = R"({"type": "binary", "input_length": 100000000000000})";
  try {
    (void)api::Model::create(huge, 0, 1);
    FAIL("created");
  } catch (const api::OutOfMemory& e) {
    CHECK(has(e.what(), "out of host memory"));
  }
  lp_model* cm = nullptr;
  CHECK(lp_model_create(huge, 0, 1, &cm) == LP_ERR_OUT_OF_MEMORY);
  CHECK(cm == nullptr);
  CHECK(has(lp_last_error(), "out of host memory"));
  CHECK_THROWS_AS(Array::zeros({int64_t{1} << 40, int64_t{1} << 10}), api::OutOfMemory);
}
#endif

TEST_CASE("shapes past 2^63 elements, null copies and moved-from Models are api::Errors") {
  const std::vector<int64_t> big = {int64_t{1} << 32, int64_t{1} << 32};
  CHECK(has(error_of([&] { (void)Array::zeros(big); }), "2^63"));
  CHECK(has(error_of([&] { (void)Array::view(nullptr, big); }), "2^63"));
  CHECK(has(error_of([&] { (void)Array::copy_of(nullptr, {3}); }), "null"));
  CHECK(Array::copy_of(nullptr, {0, 4}).size() == 0);
  auto m = api::Model::create(kBinary32, 2, 1);
  api::Model n = std::move(m);
  CHECK(n.type() == "binary");
  Array x = onehot(1, 37, 1);
  CHECK(has(error_of([&] { (void)m.predict(x); }), "moved from"));  // NOLINT(bugprone-use-after-move)
  CHECK(has(error_of([&] { (void)m.type(); }), "moved from"));
  CHECK(has(error_of([&] { m.save("/nonexistent"); }), "moved from"));
  CHECK(has(error_of([&] { m.train_step(x, Array::zeros({1, 1})); }), "moved from"));
  m = std::move(n);  // assigned again: usable
  CHECK(m.predict(x).logits.size() == 1);
}

TEST_CASE("options the CLI and the config refuse are refused, with messages that name no CLI flag") {
  auto m = api::Model::create(kBinary32, 2, 1);
  Array x = onehot(2, 37, 5);
  Array y = Array::zeros({2, 1});
  api::AttributionOptions ao;
  ao.method = "deepshap";
  for (int64_t refs : {0, -5}) {
    ao.refs = refs;
    CHECK(has(error_of([&] { (void)m.attribute(x, ao); }), "refs must be >= 1"));
  }
  ao.refs = 2;
  ao.first_index = -1;
  CHECK(has(error_of([&] { (void)m.attribute(x, ao); }), "first_index"));
  ao.first_index = 0;
  ao.method = "shap";
  std::string e = error_of([&] { (void)m.attribute(x, ao); });
  CHECK(has(e, "method 'shap'"));
  CHECK(!has(e, "--"));
  ao.method = "grad";
  for (const char* t : {"logit", "logits:-1"}) {
    ao.target = t;
    e = error_of([&] { (void)m.attribute(x, ao); });
    CHECK(has(e, "target"));
    CHECK(!has(e, "--"));
  }

  api::TrainStepOptions so;
  so.prior.freq_limit = 4;
  for (double w : {-1.0, double(NAN)}) {
    CAPTURE(w);
    so.prior.l2_weight = w;
    CHECK(has(error_of([&] { m.train_step(x, y, {}, so); }), "l2_weight"));
    so.prior.l2_weight = 0;
    so.counts_loss_weight = w;
    CHECK(has(error_of([&] { (void)m.losses(x, y, {}, so); }), "counts_loss_weight"));
    so.counts_loss_weight = 20;
  }
  for (int s : {5, -2}) CHECK(has(error_of([&] { m.train_step(x, y, {1, s}, so); }), "status[1]"));
  CHECK(has(error_of([&] { (void)api::prior_loss(Array::zeros({2, 4, 37}), {1, 2}, {}); }), "status[1]"));
  // fourier_prior_loss refuses K >= L/2 as train_step does.
  CHECK(has(error_of([&] { (void)api::fourier_prior_loss(Array::zeros({2, 4, 100}), {}, 50); }), "freq_limit"));
  CHECK(api::fourier_prior_loss(Array::zeros({2, 4, 100}), {0, 0}, 49) == 0.0);

  CHECK(has(error_of([&] { (void)api::Model::create(kBinary32, 0, -1); }), "threads"));
  CHECK(has(error_of([&] { (void)api::Model::create("not json"); }), "neither JSON"));
  fs::path d = tmpdir("options");
  m.save(d.string());
  api::LoadOptions lo;
  lo.threads = -3;
  CHECK(has(error_of([&] { (void)api::Model::load(d.string(), lo); }), "threads"));
  lo.threads = 1;
  lo.weights = "lsat";
  e = error_of([&] { (void)api::Model::load(d.string(), lo); });
  CHECK(has(e, "LoadOptions.weights"));
  CHECK(!has(e, "--"));
  // weights: a path relative to the current directory; on a bare file, a choice of file is refused.
  const fs::path cwd = fs::current_path();
  fs::current_path(d);
  lo.weights = "model.safetensors";
  CHECK(max_abs_diff(api::Model::load(d.string(), lo).predict(x).logits, m.predict(x).logits) == 0.0);
  fs::current_path(cwd);
  lo.weights = "last";
  CHECK(has(error_of([&] { (void)api::Model::load((d / "model.safetensors").string(), lo); }), "is a file"));
  fs::remove_all(d);
}

TEST_CASE("arrays with no elements may have no memory: predict, attribute and prior_loss of an empty batch") {
  // A null view of shape (0, 4, L) is a valid empty batch (Array::view allows it); the prior of zero rows aborted on
  // the null storage (an internal assertion, no exception) instead of returning 0.
  auto m = api::Model::create(kBinary32, 2, 1);
  const Array none = Array::view(nullptr, {0, 4, 37});
  CHECK(m.predict(none).logits.shape() == std::vector<int64_t>{0, 1});
  CHECK(m.attribute(none).hypothetical.shape() == std::vector<int64_t>{0, 4, 37});
  Array g;
  CHECK(api::prior_loss(none, {}, {}, &g) == 0.0);
  CHECK(g.shape() == std::vector<int64_t>{0, 4, 37});
  api::PriorOptions smooth;
  smooth.type = "smoothness";
  CHECK(api::prior_loss(none, {}, smooth) == 0.0);
  CHECK(api::fourier_prior_loss(Array::view(nullptr, {0, 4, 200}), {}, 30) == 0.0);
}

TEST_CASE("one Model used from several threads: results equal one thread's, train_step is atomic to readers") {
  auto m = api::Model::create(kBinary32, 3, 2);
  const Array x = onehot(40, 37, 11);
  api::AttributionOptions ao;
  ao.method = "deepshap";
  ao.refs = 3;
  const Array p0 = m.predict(x).logits, a0 = m.attribute(x, ao).hypothetical;
  std::vector<std::thread> ts;
  std::vector<double> diff(4, -1);
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      double d = 0;
      for (int k = 0; k < 3; ++k) d = std::max({d, max_abs_diff(m.predict(x).logits, p0), max_abs_diff(m.attribute(x, ao).hypothetical, a0)});
      diff[t] = d;
    });
  for (auto& t : ts) t.join();
  for (double d : diff) CHECK(d == 0.0);

  // Readers during training see the weights before or after a whole step: each prediction equals one of the
  // states a replay of the same steps on a copy goes through (one thread: the steps are bit for bit).
  const fs::path d = tmpdir("threads");
  m.set_threads(1);
  m.save_checkpoint((d / "ck.safetensors").string());
  Array y = Array::zeros({40, 1});
  for (int64_t i = 0; i < 40; i += 3) y.mutable_data()[i] = 1;
  api::TrainStepOptions so;
  so.prior.freq_limit = 4;
  so.lr = 0.05;
  const int steps = 4;
  std::vector<Array> seen;
  std::thread trainer([&] { for (int k = 0; k < steps; ++k) m.train_step(x, y, {}, so); });
  std::thread reader([&] { for (int k = 0; k < 12; ++k) seen.push_back(m.predict(x).logits); });
  trainer.join(), reader.join();
  auto r = api::Model::create(kBinary32, 3, 1);
  r.resume((d / "ck.safetensors").string());
  std::vector<Array> states{r.predict(x).logits};
  for (int k = 0; k < steps; ++k) r.train_step(x, y, {}, so), states.push_back(r.predict(x).logits);
  CHECK(max_abs_diff(states.back(), m.predict(x).logits) == 0.0);
  CHECK(max_abs_diff(states.front(), states.back()) > 0.0);
  for (const Array& s : seen) {
    bool match = false;
    for (const Array& st : states) match = match || max_abs_diff(s, st) == 0.0;
    CHECK(match);
  }
  fs::remove_all(d);
}

TEST_CASE("a config integer past int64's range is an Error naming the key (1e30 was cast, an undefined conversion)") {
  for (const char* n : {"1e30", "-1e30", "18446744073709551615"}) {
    const std::string cfg = std::string(R"({"type": "binary", "input_length": )") + n + "}";
    const std::string e = error_of([&] { (void)api::Model::create(cfg, 0, 1); });
    CHECK((has(e, "model.input_length: ") && has(e, "out of range")));
  }
}

TEST_CASE("a checkpoint does not depend on the caller's global C++ locale (its RNG state once took digit grouping)") {
  struct Grouping : std::numpunct<char> {
    char do_thousands_sep() const override { return '.'; }
    std::string do_grouping() const override { return "\3"; }
  };
  const fs::path d = tmpdir("locale");
  const std::string ck = (d / "ck.safetensors").string();
  auto m = api::Model::create(kBinary32, 4, 1);
  const std::locale before = std::locale::global(std::locale(std::locale::classic(), new Grouping));
  try {
    m.save_checkpoint(ck);
  } catch (...) {
    std::locale::global(before);
    throw;
  }
  std::locale::global(before);
  auto r = api::Model::create(kBinary32, 5, 1);
  CHECK_NOTHROW(r.resume(ck));  // read in the classic locale, as `lowpass train --resume` reads it
  fs::remove_all(d);
  // Numbers in error messages too: "x has length 1200", not "1.200".
  std::locale::global(std::locale(std::locale::classic(), new Grouping));
  std::string e, shape;
  try {
    e = error_of([&] { (void)m.predict(Array::zeros({1, 4, 1200})); });
    shape = error_of([&] { (void)m.predict(Array::zeros({1200, 5, 1000})); });  // through the engine's shape_str
  } catch (...) {
    std::locale::global(before);
    throw;
  }
  std::locale::global(before);
  CHECK_MESSAGE(has(e, "x has length 1200,"), e);
  CHECK_MESSAGE(has(shape, "got shape (1200, 5, 1000)"), shape);
}
}  // TEST_SUITE
