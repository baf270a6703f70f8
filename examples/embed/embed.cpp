// A user's tool embedding lowpass through the installed C++ API (lowpass/lowpass.h, pkg-config lowpass):
// create or load a model, predict, attribute, score the attributions with the Fourier prior, train one
// step, save and reload. Build: make (needs lowpass.pc on PKG_CONFIG_PATH); run: ./embed [MODEL_DIR]
#include <lowpass/lowpass.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

int main(int argc, char** argv) {
  namespace lp = lowpass::api;
  try {
    std::printf("%s\n", lp::version_string().c_str());
    lp::Model m = argc > 1 ? lp::Model::load(argv[1])
                           : lp::Model::create(R"({"type": "binary", "input_length": 100, "num_tasks": 1,
                                 "conv_depths": [8, 8], "conv_filter_sizes": [9, 5], "max_pool_size": 10,
                                 "max_pool_stride": 10, "fc_sizes": [8]})", 1);
    const int64_t N = 8, L = m.input_length();
    lp::Array x = lp::Array::zeros({N, 4, L});  // random one-hot DNA
    std::mt19937 rng(7);
    for (int64_t i = 0; i < N * L; ++i) x.mutable_data()[((i / L) * 4 + rng() % 4) * L + i % L] = 1.f;

    lp::Predictions p = m.predict(x);
    const lp::Array& y0 = m.type() == "binary" ? p.logits : p.profile_logits;
    std::printf("%s model, input length %lld: first output %.5f\n", m.type().c_str(), (long long)L, y0.data()[0]);

    lp::AttributionOptions ao;
    ao.method = "gradxinput";
    lp::Attributions a = m.attribute(x, ao);
    const int64_t K = (15 * L + 50) / 100;  // the default cut-off, round(0.15 L); K >= L/2 is refused
    std::printf("gradxinput attributions (%lld, 4, %lld); Fourier prior of them: %.5f\n", (long long)N,
                (long long)L, lp::fourier_prior_loss(a.hypothetical, {}, K));

    if (m.type() == "binary") {
      lp::Array y = lp::Array::zeros({N, m.tasks()});
      for (int64_t i = 0; i < y.size(); ++i) y.mutable_data()[i] = float(i % 2);
      lp::TrainStepOptions to;
      to.prior.attribution_mode = "eval";
      lp::StepResult s = m.train_step(x, y, {}, to);
      std::printf("train step %lld: task %.5f prior %.5f\n", (long long)s.step, s.task, s.prior);
    }
    const std::string dir = "embed_model_out";
    m.save(dir);
    lp::Predictions q = lp::Model::load(dir).predict(x), r = m.predict(x);
    const lp::Array& a0 = m.type() == "binary" ? r.logits : r.profile_logits;
    const lp::Array& b0 = m.type() == "binary" ? q.logits : q.profile_logits;
    for (int64_t i = 0; i < a0.size(); ++i)
      if (a0.data()[i] != b0.data()[i]) {
        std::fprintf(stderr, "embed: reloaded model predicts differently at %lld\n", (long long)i);
        return 1;
      }
    std::printf("saved to %s and reloaded: identical predictions\n", dir.c_str());
  } catch (const lp::Error& e) {
    std::fprintf(stderr, "embed: %s\n", e.what());
    return 1;
  }
  return 0;
}
