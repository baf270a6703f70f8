// lowpass twin of bench/bench_torch.py: times one case (model × mode) of a training step and prints one JSON line.
// Cases: binary batch 256 (incl. reverse complements), L 1000, T 1; profile batch 128 (incl. RC), L 1346, matched
// controls. Run: build-bench/bench/bench_train_step --model binary --mode prior --threads 2
// (GPU: --device cuda [--tf32|--bf16] [--conv auto|direct|tiled|im2col|cudnn|tune]; --conv picks the CUDA conv1d backend, default
// LOWPASS_CUDA_CONV; --tf32/--bf16 run float32 GEMMs on TF32/bfloat16 tensor cores;
// --graph runs noprior/prior steps through models/train/graph_step.h: a captured CUDA graph on a GPU, the fixed-form
// step eagerly on the CPU). --keep-graph-values records every op's inputs whole (engine/autograd.h, KeepGraphValues),
// the autograd graph's memory before its edges stopped holding values: peak_rss_mb shows the difference.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/cuda/conv_backend.h"
#include "kernels/cuda/conv_tune.h"
#include "kernels/cuda/runtime.h"
#ifdef LOWPASS_HAVE_CUDA
#include "kernels/cuda/conv_cudnn.h"
#endif
#include "models/arch/model.h"
#include "models/loss/objective.h"
#include "models/train/graph_step.h"

using namespace lowpass;

namespace {

struct Args {
  std::string model = "binary", mode = "prior";
  int64_t batch = 0;
  int threads = 2, repeats = 5, warmup = 2;
  std::string device = "cpu";
  bool tf32 = false, bf16 = false;
  bool keep_values = false;  // record every op's inputs whole (KeepGraphValues), as before edges dropped them
  std::string conv;  // CUDA conv1d backend (--conv auto|direct|tiled|im2col|cudnn|tune); empty: LOWPASS_CUDA_CONV's default
  bool graph = false;  // --graph: the GraphStep (captured CUDA graph on a GPU)
  std::string chain_rows = "status";  // --chain-rows: the rows the chain scores (status: the batch's positives; all)
  // --prior-rows: whose attributions a prior step takes (scored: the scored rows apart, the default; all: every row,
  // the reference's arithmetic; PriorConfig::scored_rows_only)
  std::string prior_rows = "scored";
  std::string attribution_mode = "train";  // --attribution-mode: PriorConfig's (train: the reference; eval: lowpass train's)
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_train_step: %s\nusage: bench_train_step --model binary|profile --mode noprior|prior|infer|attr "
               "[--batch N] [--threads T] [--repeats R] [--warmup W] [--device cpu|cuda[:N]] [--tf32|--bf16] "
               "[--conv auto|direct|tiled|im2col|cudnn|tune] [--graph] [--keep-graph-values] "
               "[--chain-rows status|all] [--prior-rows scored|all] "
               "[--attribution-mode train|eval]\n",
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
    else if (!std::strcmp(argv[i], "--device")) a.device = val("--device");
    else if (!std::strcmp(argv[i], "--tf32")) a.tf32 = true;
    else if (!std::strcmp(argv[i], "--bf16")) a.bf16 = true;
    else if (!std::strcmp(argv[i], "--conv")) a.conv = val("--conv");
    else if (!std::strcmp(argv[i], "--graph")) a.graph = true;
    else if (!std::strcmp(argv[i], "--keep-graph-values")) a.keep_values = true;
    else if (!std::strcmp(argv[i], "--chain-rows")) a.chain_rows = val("--chain-rows");
    else if (!std::strcmp(argv[i], "--prior-rows")) a.prior_rows = val("--prior-rows");
    else if (!std::strcmp(argv[i], "--attribution-mode")) a.attribution_mode = val("--attribution-mode");
    else usage((std::string("unknown argument ") + argv[i]).c_str());
  }
  if (a.model != "binary" && a.model != "profile") usage("--model must be binary or profile");
  if (a.mode != "noprior" && a.mode != "prior" && a.mode != "infer" && a.mode != "attr" && a.mode != "chain" &&
      a.mode != "chain_composed")
    usage("--mode must be noprior, prior, infer, attr, chain or chain_composed");
  if (a.repeats < 1 || a.warmup < 0 || a.threads < 1 || a.batch < 0) usage("bad --repeats/--warmup/--threads/--batch");
  if (a.batch == 0) a.batch = a.model == "binary" ? 256 : 128;
  if (!a.conv.empty()) {
    try {
      (void)cuda::parse_conv_backend(a.conv, "--conv");
    } catch (const std::exception& e) {
      usage(e.what());
    }
    if (a.device.rfind("cuda", 0) != 0) usage("--conv selects the CUDA conv1d backend: it needs --device cuda");
  }
  if (a.chain_rows != "status" && a.chain_rows != "all") usage("--chain-rows must be status or all");
  if (a.prior_rows != "scored" && a.prior_rows != "all") usage("--prior-rows must be scored or all");
  if (a.attribution_mode != "train" && a.attribution_mode != "eval") usage("--attribution-mode must be train or eval");
  if (a.tf32 && a.bf16) usage("--tf32 and --bf16: choose one");
  if ((a.tf32 || a.bf16) && a.device.rfind("cuda", 0) != 0) usage("--tf32/--bf16 need --device cuda");
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
    prior.scored_rows_only = a.prior_rows == "scored";
    prior.attribution_mode = a.attribution_mode;
    batch.status.resize(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) batch.status[static_cast<size_t>(b)] = (b % (B / 2)) < B / 4 ? 1 : 0;
    auto model = make_model(mcfg, ctx);
    const Device dev = parse_device(a.device, "--device");
    if (dev.is_cuda()) {  // model and batch on the GPU before timing, as bench_torch.py does
      model->to(dev);
      cuda::set_gemm_math(ctx, dev.index, cuda::gemm_math_for(a.tf32, a.bf16));
      if (!a.conv.empty()) cuda::set_conv_backend(ctx, dev.index, cuda::parse_conv_backend(a.conv, "--conv"));
      batch.x = batch.x.to(dev);
      // GraphStep weighs a binary batch's labels on the host (B values); everything else lives on the GPU
      if (!(a.graph && a.model == "binary")) batch.y = batch.y.to(dev);
      if (batch.control.defined()) batch.control = batch.control.to(dev);
    }
    auto sync = [&] {
      if (dev.is_cuda()) cuda::synchronize(dev.index);
    };
    Adam opt(model->parameters(), AdamOptions{});
    PriorConfig none;
    none.type = "none";
    std::unique_ptr<GraphStep> gstep;
    if (a.graph) {
      if (a.mode != "noprior" && a.mode != "prior") usage("--graph needs --mode noprior or prior");
      gstep = std::make_unique<GraphStep>(*model, opt, a.mode == "prior" ? prior : none, 20.0, dev.is_cuda());
    }

    // The prior chain alone (forward + backward of the per-example scores) on random attributions of the batch's
    // shape: fused op vs the same chain composed from ops, scoring the batch's positives (half the rows) or every
    // row (--chain-rows all, as a CUDA-graph step does). Bytes floor for R scored rows of B: the scored rows'
    // attributions read twice (forward, and the backward's signs), the gradient written for every row, the scored
    // rows' spectra written once and read once (8 bytes per complex float32 bin).
    Tensor chain_attr;
    std::vector<int64_t> chain_rows;
    std::vector<double> chain_w;
    if (a.mode == "chain" || a.mode == "chain_composed") {
      chain_attr = Tensor::uniform(ctx, batch.x.shape(), -1.0, 1.0);
      if (dev.is_cuda()) chain_attr = chain_attr.to(dev);
      chain_attr.set_requires_grad(true);
      for (int64_t b = 0; b < B; ++b)
        if (a.chain_rows == "all" || batch.status[static_cast<size_t>(b)]) chain_rows.push_back(b);
      const int64_t L = chain_attr.size(2);
      chain_w.assign(static_cast<size_t>(L / 2), 1.0);
      for (int64_t i = prior.freq_limit; i < L / 2; ++i)
        chain_w[static_cast<size_t>(i)] = 1.0 / (1.0 + std::pow(static_cast<double>(i - prior.freq_limit + 1), 0.2));
    }
    auto step = [&] {
      std::optional<KeepGraphValues> keep;  // the A/B for the graph's memory (docs/benchmarks.md)
      if (a.keep_values) keep.emplace();
      if (a.mode == "chain" || a.mode == "chain_composed") {
        Tensor y = a.mode == "chain" ? fourier_prior_scores(chain_attr, chain_rows, chain_w, 3.0)
                                     : fourier_prior_scores_composed(chain_attr, chain_rows, chain_w, 3.0);
        (void)grad({mean_all(y)}, {chain_attr});
      } else if (gstep) {
        (void)gstep->run(batch);
      } else if (a.mode == "noprior" || a.mode == "prior") {
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
    cuda::AllocatorStats before{};  // device allocations during the timed steps (0 = none after warm-up)
    for (int i = 0; i < a.warmup + a.repeats; ++i) {
      rusage r0{}, r1{};
      getrusage(RUSAGE_SELF, &r0);
      sync();
      if (i == a.warmup && dev.is_cuda()) before = cuda::allocator_stats(dev.index);
      auto t0 = std::chrono::steady_clock::now();
      step();
      sync();
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
                          {"device", dev.is_cuda() ? cuda::device_name(dev.index) : std::string("cpu")},
                          {"tf32", a.tf32},
                          {"bf16", a.bf16},
                          {"graph", a.graph},
                          {"prior_rows", a.prior_rows},
                          {"attribution_mode", a.attribution_mode},
                          {"keep_graph_values", a.keep_values},
                          {"median_s", med},
                          {"times_s", times},
                          {"cpu_s_per_step", cpu_s / static_cast<double>(a.repeats)},
                          {"examples_per_s", static_cast<double>(B) / med},
                          {"peak_rss_mb", static_cast<double>(ru.ru_maxrss) / 1024.0}};
    if (a.mode == "chain" || a.mode == "chain_composed") {
      const double Bd = static_cast<double>(B), L = static_cast<double>(batch.x.size(2)), F = std::floor(L / 2) + 1;
      const double R = static_cast<double>(chain_rows.size());
      const double bytes = 2 * R * 4 * L * 4 + Bd * 4 * L * 4 + 2 * R * F * 8;
      out["chain_rows"] = a.chain_rows;
      out["chain_scored_rows"] = chain_rows.size();
      out["chain_floor_bytes"] = bytes;
      out["chain_GBps"] = bytes / med / 1e9;
      // The GPU's own time per chain: a.repeats chains queued back to back, one synchronisation at the end (three
      // rounds, median), so the host's dispatch before the first kernel and the final synchronisation, which the
      // per-step times above include, are paid once per round instead of once per chain.
      std::vector<double> q;
      for (int round = 0; round < 3; ++round) {
        sync();
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < a.repeats; ++i) step();
        sync();
        q.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / a.repeats);
      }
      std::sort(q.begin(), q.end());
      out["chain_queued_s"] = q[1];
      out["chain_queued_GBps"] = bytes / q[1] / 1e9;
    }
    if (gstep) out["graph_nodes"] = gstep->graph_nodes(), out["graph_replays"] = gstep->replays();
    if (dev.is_cuda()) {
      const cuda::AllocatorStats after = cuda::allocator_stats(dev.index);
      out["cuda_mallocs_timed"] = after.device_mallocs - before.device_mallocs;
      out["gpu_reserved_mb"] = static_cast<double>(after.bytes_in_use + after.bytes_cached) / (1024.0 * 1024.0);
      const cuda::ConvBackend cb = cuda::conv_backend(ctx, dev.index);
      out["conv"] = cuda::conv_backend_name(cb);
      if (cb == cuda::ConvBackend::Tune) {  // the choice per shape and direction, with every route's time
        std::vector<std::string> lines;
        const std::string rep = cuda::conv_tune_report();
        for (size_t a = 0, b; a < rep.size(); a = b + 1) {
          b = rep.find('\n', a);
          if (b == std::string::npos) b = rep.size();
          lines.push_back(rep.substr(a, b - a));
        }
        out["conv_tune"] = lines;
      }
#ifdef LOWPASS_HAVE_CUDA
      if (cb == cuda::ConvBackend::Cudnn) {  // run-time cuDNN version, and how much of the conv work cuDNN took
        const cuda::CudnnStats cs = cuda::cudnn_stats(ctx, dev.index);
        out["cudnn"] = cuda::cudnn_version();
        out["cudnn_calls"] = cs.fwd + cs.bwd_data + cs.bwd_filter;
        out["cudnn_declined"] = cs.declined;
        out["cudnn_plans"] = cs.plans;
      }
#endif
    }
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
