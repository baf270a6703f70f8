// Training config: defaults per model type, overrides, unknown keys and bad values named by path.
// Run: build/tests/lowpass_tests -ts=config
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "engine/error.h"
#include "engine/suggest.h"
#include "models/train/config.h"
#include "tests/errors.h"

using namespace lowpass;
using nlohmann::json;

namespace {
using test::error_of;
using test::has;
}  // namespace

TEST_SUITE("config") {
TEST_CASE("defaults differ per model type as in the reference") {
  auto b = resolve_config(json{{"data", {{"train", "/d/train.npz"}}}}, "c.json", "/");
  CHECK(b.model_type == "binary");
  CHECK(b.prior.type == "fourier");
  CHECK(b.prior.weight == 1.0);
  CHECK(b.prior.freq_limit == 150);
  CHECK(b.prior.softness.has_value());
  CHECK(*b.prior.softness == doctest::Approx(0.2));
  CHECK(b.prior.smooth_sigma == 3.0);
  CHECK(b.train.batch_size == 128);
  CHECK(b.train.lr == doctest::Approx(1e-3));
  CHECK(b.train.optimizer == "adam");
  CHECK(b.train.epochs == 20);
  CHECK(b.train.patience == 3);
  CHECK(b.train.min_delta == doctest::Approx(0.001));
  CHECK(b.train.revcomp);
  CHECK(b.data.train == "/d/train.npz");
  CHECK(b.data.valid.empty());
  CHECK(b.model["input_length"] == 1000);  // the model section is resolved by the architecture
  CHECK(b.model["conv_depths"] == json::array({64, 64, 64}));

  auto p = resolve_config(json{{"model", {{"type", "profile"}}}, {"data", {{"train", "t.npz"}}}}, "c.json", "/base");
  CHECK(p.model_type == "profile");
  CHECK(p.prior.weight == 50.0);
  CHECK(p.prior.freq_limit == 200);
  CHECK(p.train.batch_size == 64);
  CHECK(p.train.counts_loss_weight == 20.0);
  CHECK(p.data.train == "/base/t.npz");  // relative paths resolve against the config's folder
}

TEST_CASE("prior.freq_limit: the default keeps the paper's cut-off per base; K >= L/2 is refused") {
  auto binary = [](int64_t L, json prior = json::object()) {
    return resolve_config(json{{"model", {{"input_length", L}}}, {"data", {{"train", "t.npz"}}}, {"prior", prior}},
                          "c.json", "/");
  };
  // 150 at 1000 (the reference); 235 bp: round(35.25) = 35, far below L/2 = 117 (a fixed 150 weighted every bin 1).
  CHECK(binary(1000).prior.freq_limit == 150);
  CHECK(binary(235).prior.freq_limit == 35);
  CHECK(binary(200).prior.freq_limit == 30);
  CHECK(binary(235).resolved["prior"]["freq_limit"] == 35);  // config.json records the value used
  auto profile = [](int64_t L, int64_t O) {
    return resolve_config(json{{"model", {{"type", "profile"}, {"input_length", L}, {"output_length", O}}},
                               {"data", {{"train", "t.npz"}}}},
                          "c.json", "/");
  };
  CHECK(profile(1346, 1000).prior.freq_limit == 200);
  CHECK(profile(846, 500).prior.freq_limit == 126);  // round(200 · 846 / 1346) = round(125.7)
  // An explicit K keeps its value while it leaves frequencies above it; K >= L/2 names the key and the bound.
  CHECK(binary(235, {{"freq_limit", 116}}).prior.freq_limit == 116);
  const std::string e = error_of([&] { binary(235, {{"freq_limit", 150}}); });
  CHECK(has(e, "c.json: 'prior.freq_limit' is 150"));
  CHECK(has(e, "only 117 frequencies above DC"));
  CHECK(has(e, "35 for the binary model"));
  CHECK(has(error_of([&] { binary(235, {{"freq_limit", 117}}); }), "'prior.freq_limit' is 117"));
  // Other priors do not use K.
  CHECK(binary(235, {{"type", "none"}, {"freq_limit", 500}}).prior.freq_limit == 500);
  CHECK(binary(235, {{"type", "smoothness"}, {"freq_limit", 500}}).prior.freq_limit == 500);
}

TEST_CASE("train.counts_loss_weight: a number >= 0 or \"auto\"") {
  auto cfg = [](json w) {
    return resolve_config(json{{"model", {{"type", "profile"}}}, {"data", {{"train", "t.npz"}}},
                               {"train", {{"counts_loss_weight", w}}}},
                          "c.json", "/");
  };
  CHECK(cfg("auto").train.counts_loss_weight_auto);
  CHECK(!cfg(8.5).train.counts_loss_weight_auto);
  CHECK(cfg(8.5).train.counts_loss_weight == 8.5);
  CHECK(has(error_of([&] { cfg(-1); }), "'train.counts_loss_weight' must be >= 0 or \"auto\""));
  CHECK(has(error_of([&] { cfg("automatic"); }), "'train.counts_loss_weight' must be a number"));
}

TEST_CASE("unknown keys suggest the closest known one when it looks like a typo") {
  auto err = [](json u) { return error_of([&] { resolve_config(u, "c.json", "/"); }); };
  const json d = {{"train", "t.npz"}};
  CHECK(has(err({{"data", d}, {"train", {{"lrr", 0.1}}}}), "unknown key 'train.lrr' (did you mean 'lr'?)"));
  CHECK(has(err({{"data", d}, {"train", {{"negative_ration", 1}}}}), "(did you mean 'negative_ratio'?)"));
  CHECK(has(err({{"data", d}, {"prior", {{"freqlimit", 10}}}}), "(did you mean 'freq_limit'?)"));
  CHECK(has(err({{"data", d}, {"trian", json::object()}}), "(did you mean 'train'?)"));
  CHECK(has(err({{"data", d}, {"model", {{"conv_depth", {8}}}}}), "(did you mean 'conv_depths'?)"));
  const std::string far = err({{"data", d}, {"train", {{"optimiser_state", 1}}}});
  CHECK(has(far, "unknown key 'train.optimiser_state'"));
  CHECK(!has(far, "did you mean"));  // nothing close: no guess
  CHECK(edit_distance("jitter", "jiter") == 1);
  CHECK(edit_distance("lr", "rl") == 1);  // an adjacent swap is one edit
  CHECK(edit_distance("", "abc") == 3);
}

TEST_CASE("overrides, null softness, seed drawn and recorded") {
  json u = {{"data", {{"train", "/t.npz"}, {"valid", "/v.npz"}}},
            {"train", {{"optimizer", "sgd"}, {"lr", 0.5}, {"max_steps", 1}, {"shuffle", false}, {"seed", 7}}},
            {"prior", {{"softness", nullptr}, {"weight", 2}}}};
  auto c = resolve_config(u, "c.json", "/");
  CHECK(c.train.optimizer == "sgd");
  CHECK(c.train.lr == 0.5);
  CHECK(c.train.max_steps == 1);
  CHECK_FALSE(c.train.shuffle);
  CHECK(c.train.seed == 7);
  CHECK_FALSE(c.prior.softness.has_value());
  CHECK(c.prior.weight == 2.0);
  CHECK(c.resolved["prior"]["softness"].is_null());
  CHECK(c.resolved["train"]["batch_size"] == 128);
  CHECK(c.data.valid == "/v.npz");

  auto d = resolve_config(json{{"data", {{"train", "/t.npz"}}}}, "c.json", "/");
  CHECK(d.resolved["train"]["seed"].is_number_integer());  // a fresh seed is written into the resolved config
  auto again = resolve_config(d.resolved, "config.json", "/");
  CHECK(again.train.seed == d.train.seed);
  CHECK(again.resolved == d.resolved);  // the resolved config is a fixed point
}

TEST_CASE("unknown keys are errors naming the key path") {
  auto base = json{{"data", {{"train", "/t.npz"}}}};
  auto e1 = error_of([&] { json u = base; u["train"]["bach_size"] = 3; resolve_config(u, "C.json", "/"); });
  CHECK(has(e1, "C.json"));
  CHECK(has(e1, "train.bach_size"));
  auto e2 = error_of([&] { json u = base; u["priors"] = json::object(); resolve_config(u, "C.json", "/"); });
  CHECK(has(e2, "'priors'"));
  auto e3 = error_of([&] { json u = base; u["prior"]["freq"] = 3; resolve_config(u, "C.json", "/"); });
  CHECK(has(e3, "prior.freq"));
  auto e4 = error_of([&] { json u = base; u["data"]["tarin"] = "x"; resolve_config(u, "C.json", "/"); });
  CHECK(has(e4, "data.tarin"));
}

TEST_CASE("bad values and types are errors naming the field") {
  auto base = json{{"data", {{"train", "/t.npz"}}}};
  auto bad = [&](const char* sec, const char* key, json v) {
    json u = base;
    u[sec][key] = v;
    return error_of([&] { resolve_config(u, "C.json", "/"); });
  };
  CHECK(has(bad("train", "lr", "fast"), "train.lr"));
  CHECK(has(bad("train", "lr", -1), "train.lr"));
  CHECK(has(bad("train", "optimizer", "rmsprop"), "train.optimizer"));
  CHECK(has(bad("train", "batch_size", 0), "train.batch_size"));
  CHECK(has(bad("train", "batch_size", 2.5), "train.batch_size"));
  CHECK(has(bad("train", "shuffle", 1), "train.shuffle"));
  CHECK(has(bad("train", "device", "gpu"), "train.device"));
  CHECK(has(bad("train", "device", "cuda:x"), "train.device"));
  CHECK(has(bad("train", "device", 0), "train.device"));
  CHECK(has(bad("train", "tf32", "yes"), "train.tf32"));
  CHECK(has(bad("train", "bf16", 1), "train.bf16"));
  CHECK(has(bad("train", "cuda_conv", "fft"), "train.cuda_conv"));
  CHECK(has(bad("train", "cuda_conv", "fft"), "tune"));  // the message lists the choices
  CHECK(has(bad("train", "cuda_conv", 1), "train.cuda_conv"));
  CHECK(has(bad("prior", "type", "gaussian"), "prior.type"));
  CHECK(has(bad("prior", "softness", 0), "prior.softness"));
  CHECK(has(bad("model", "type", "cnn"), "model.type"));
  CHECK(has(bad("model", "conv_dephts", 3), "model.conv_dephts"));  // the architecture names its keys
  CHECK(has(bad("model", "input_length", 10), "C.json"));            // geometry that cannot fit
  CHECK(has(error_of([] { resolve_config(json{{"train", {{"lr", 1}}}}, "C.json", "/"); }), "data.train"));
  CHECK(has(error_of([] { resolve_config(json::array(), "C.json", "/"); }), "C.json"));
}

TEST_CASE("load_config: missing file, bad JSON, write/read round trip") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "lowpass_test_config";
  fs::create_directories(dir);
  CHECK(has(error_of([&] { load_config((dir / "nope.json").string()); }), "nope.json"));
  {
    std::ofstream f(dir / "broken.json");
    f << "{\"train\": ";
  }
  CHECK(has(error_of([&] { load_config((dir / "broken.json").string()); }), "broken.json"));
  {
    std::ofstream f(dir / "ok.json");
    f << R"({"data": {"train": "train.npz"}, "train": {"epochs": 2, "seed": 3}})";
  }
  auto c = load_config((dir / "ok.json").string());
  CHECK(c.train.epochs == 2);
  CHECK(c.data.train == (fs::absolute(dir) / "train.npz").lexically_normal().string());
  write_config(c, (dir / "resolved.json").string());
  auto r = load_config((dir / "resolved.json").string());
  CHECK(r.resolved == c.resolved);
  fs::remove_all(dir);
}
}

TEST_CASE("device strings: cpu, cuda, cuda:N and nothing else") {
  CHECK(parse_device("cpu", "x").is_cpu());
  CHECK(parse_device("cuda", "x") == Device{DeviceKind::CUDA, 0});
  CHECK(parse_device("cuda:3", "x") == Device{DeviceKind::CUDA, 3});
  CHECK(device_str(parse_device("cuda:12", "x")) == "cuda:12");
  for (const char* bad : {"", "CPU", "gpu", "cuda:", "cuda:-1", "cuda:1a", "cuda:123456"})
    CHECK(has(error_of([&] { parse_device(bad, "--device"); }), "--device"));
  auto cfg = resolve_config(json{{"data", {{"train", "/t.npz"}}}, {"train", {{"device", "cuda:1"}, {"tf32", true}}}},
                            "C.json", "/");
  CHECK(cfg.train.device == "cuda:1");
  CHECK(cfg.train.tf32);
  CHECK(!cfg.train.bf16);
  CHECK(cfg.resolved["train"]["bf16"] == false);  // written into the run's config.json
  CHECK(resolve_config(json{{"data", {{"train", "/t.npz"}}}}, "C.json", "/").train.device == "cpu");
  // The CUDA conv backend: "default" (LOWPASS_CUDA_CONV, auto when unset) unless named; recorded in config.json.
  auto dflt = resolve_config(json{{"data", {{"train", "/t.npz"}}}}, "C.json", "/");
  CHECK(dflt.train.cuda_conv == "default");
  CHECK(dflt.resolved["train"]["cuda_conv"] == "default");
  for (const char* name : {"auto", "direct", "tiled", "im2col", "cudnn", "tune"}) {
    auto c = resolve_config(json{{"data", {{"train", "/t.npz"}}}, {"train", {{"cuda_conv", name}}}}, "C.json", "/");
    CHECK(c.train.cuda_conv == name);
    CHECK(c.resolved["train"]["cuda_conv"] == name);
  }
}
