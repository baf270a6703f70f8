// lowpass twin of bench/bench_torch.py: times one case (model × mode) of a training step and prints one JSON line.
// Cases: binary batch 256 (incl. reverse complements), L 1000, T 1; profile batch 128 (incl. RC), L 1346, matched
// controls. Run: build-bench/bench/bench_train_step --model binary --mode prior --threads 2
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "models/arch/model.h"
#include "models/loss/objective.h"

using namespace lowpass;

namespace {

struct Args {
  std::string model = "binary", mode = "prior";
  int64_t batch = 0;
  int threads = 2, repeats = 5, warmup = 2;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_train_step: %s\nusage: bench_train_step --model binary|profile --mode noprior|prior|infer|attr "
               "[--batch N] [--threads T] [--repeats R] [--warmup W]\n",
               why);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    auto val = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) usage((std::string(flag) + " needs a value").c_str());
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--model")) a.model = val("--model");
    else if (!std::strcmp(argv[i], "--mode")) a.mode = val("--mode");
    else if (!std::strcmp(argv[i], "--batch")) a.batch = std::atoll(val("--batch"));
    else if (!std::strcmp(argv[i], "--threads")) a.threads = std::atoi(val("--threads"));
    else if (!std::strcmp(argv[i], "--repeats")) a.repeats = std::atoi(val("--repeats"));
    else if (!std::strcmp(argv[i], "--warmup")) a.warmup = std::atoi(val("--warmup"));
    else usage((std::string("unknown argument ") + argv[i]).c_str());
  }
  if (a.model != "binary" && a.model != "profile") usage("--model must be binary or profile");
  if (a.mode != "noprior" && a.mode != "prior" && a.mode != "infer" && a.mode != "attr")
    usage("--mode must be noprior, prior, infer or attr");
  if (a.repeats < 1 || a.warmup < 0 || a.threads < 1 || a.batch < 0) usage("bad --repeats/--warmup/--threads/--batch");
  if (a.batch == 0) a.batch = a.model == "binary" ? 256 : 128;
  if (a.batch % 4) usage("--batch must be a multiple of 4 (half reverse complements, half positives)");
  return a;
}

// Random one-hot (B/2, 4, L) followed by its reverse complements (flip bases and positions), as bench_torch.py.
Tensor one_hot_with_rc(Context& ctx, int64_t B, int64_t L) {
  std::vector<float> v(static_cast<size_t>(B * 4 * L), 0.0f);
  const int64_t H = B / 2;
  for (int64_t b = 0; b < H; ++b)
    for (int64_t l = 0; l < L; ++l) {
      const int64_t c = static_cast<int64_t>(ctx.rng().uniform() * 4.0) & 3;
      v[static_cast<size_t>((b * 4 + c) * L + l)] = 1.0f;
      v[static_cast<size_t>(((b + H) * 4 + (3 - c)) * L + (L - 1 - l))] = 1.0f;
    }
  return Tensor::from_vector(ctx, {B, 4, L}, v);
}

// Poisson(mean) counts by inversion (small means only).
Tensor poisson(Context& ctx, const Shape& shape, double mean) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  std::vector<float> v(static_cast<size_t>(n));
  const double e = std::exp(-mean);
  for (auto& o : v) {
    double p = e, cdf = e, u = ctx.rng().uniform();
    int k = 0;
    while (u > cdf && k < 100) p *= mean / ++k, cdf += p;
    o = static_cast<float>(k);
  }
  return Tensor::from_vector(ctx, shape, v);
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    Context ctx(a.threads, 0);
    const int64_t B = a.batch;
    nlohmann::json mcfg;
    Batch batch;
    PriorConfig prior;
    if (a.model == "binary") {
      const int64_t L = 1000, T = 1;
      mcfg = {{"type", "binary"}, {"input_length", L}, {"num_tasks", T}};
      batch.x = one_hot_with_rc(ctx, B, L);
      std::vector<float> y(static_cast<size_t>(B * T));
      for (int64_t b = 0; b < B; ++b) y[static_cast<size_t>(b)] = (b % (B / 2)) < B / 4 ? 1.0f : 0.0f;
      batch.y = Tensor::from_vector(ctx, {B, T}, y);
      prior.weight = 1.0, prior.freq_limit = 150;
    } else {
      const int64_t L = 1346, O = 1000, T = 1, S = 2;
      mcfg = {{"type", "profile"}, {"input_length", L}, {"output_length", O}, {"num_tasks", T},
              {"num_strands", S}, {"controls", "matched"}};
      batch.x = one_hot_with_rc(ctx, B, L);
      batch.y = poisson(ctx, {B, T, S, O}, 0.5);
      batch.control = poisson(ctx, {B, T, S, O}, 0.3);
      prior.weight = 50.0, prior.freq_limit = 200;
    }
    batch.status.resize(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) batch.status[static_cast<size_t>(b)] = (b % (B / 2)) < B / 4 ? 1 : 0;
    auto model = make_model(mcfg, ctx);
    Adam opt(model->parameters(), AdamOptions{});
    PriorConfig none;
    none.type = "none";

    auto step = [&] {
      if (a.mode == "noprior" || a.mode == "prior") {
        opt.zero_grad();
        Losses l = compute_losses(*model, batch, a.mode == "prior" ? prior : none, /*training=*/true);
        backward(l.total);
        opt.step();
      } else if (a.mode == "infer") {
        NoGradGuard ng;
        (void)model->forward(batch.x, batch.control, /*training=*/true);  // torch: train() under no_grad
      } else {  // grad × input attributions in eval mode, no graph kept
        Tensor x = batch.x.detach();
        x.set_requires_grad(true);
        ModelOutput out = model->forward(x, batch.control, /*training=*/false);
        (void)input_attributions(out, x, /*create_graph=*/false);
      }
    };

    std::vector<double> times;
    double cpu_s = 0;
    for (int i = 0; i < a.warmup + a.repeats; ++i) {
      rusage r0{}, r1{};
      getrusage(RUSAGE_SELF, &r0);
      auto t0 = std::chrono::steady_clock::now();
      step();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      getrusage(RUSAGE_SELF, &r1);
      if (i >= a.warmup) {
        times.push_back(s);
        cpu_s += (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) + 1e-6 * (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
                 (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) + 1e-6 * (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
      }
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    const size_t n = sorted.size();
    const double med = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    nlohmann::json out = {{"impl", "lowpass"},
                          {"version", "main"},
                          {"model", a.model},
                          {"mode", a.mode},
                          {"batch", B},
                          {"threads", a.threads},
                          {"median_s", med},
                          {"times_s", times},
                          {"cpu_s_per_step", cpu_s / static_cast<double>(a.repeats)},
                          {"examples_per_s", static_cast<double>(B) / med},
                          {"peak_rss_mb", static_cast<double>(ru.ru_maxrss) / 1024.0}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
