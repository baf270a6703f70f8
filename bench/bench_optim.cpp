// Optimiser-side cost of a training step, per-tensor vs arena (engine/arena.h), on the binary and the BPNet
// models' real parameter sets: the gradients arriving from backward() (of a loss linear in the parameters, so
// the backward itself is a handful of ops), the non-finite check the trainer makes, and the Adam update. Both
// variants run in the same process on the same parameters; median over repeats, and the ratio.
// Run: build-dev/bench/bench_optim [--device cpu|cuda[:N]] [--threads T] [--repeats R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/cuda/runtime.h"
#include "models/arch/model.h"

using namespace lowpass;

int main(int argc, char** argv) {
  std::string device = "cpu";
  int threads = 2, repeats = 50;
  for (int i = 1; i < argc; ++i) {
    auto val = [&](const char* f) {
      if (i + 1 >= argc) std::fprintf(stderr, "%s needs a value\n", f), std::exit(2);
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--device")) device = val("--device");
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(val("--threads"));
    else if (!std::strcmp(argv[i], "--repeats")) repeats = std::atoi(val("--repeats"));
    else {
      std::fprintf(stderr, "usage: bench_optim [--device cpu|cuda[:N]] [--threads T] [--repeats R]\n");
      return 2;
    }
  }
  if (threads < 1 || repeats < 1) return std::fprintf(stderr, "bad --threads/--repeats\n"), 2;
  try {
    const Device dev = parse_device(device, "--device");
    std::printf("| model | tensors | parameters | per-tensor ms | arena ms | per-tensor / arena | fused |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    for (const char* type : {"binary", "profile"}) {
      double med[2] = {0, 0};
      size_t n_tensors = 0;
      int64_t n_params = 0;
      bool fused = false;
      for (int arena = 0; arena < 2; ++arena) {
        Context ctx(threads, 1);
        auto model = make_model(nlohmann::json{{"type", type}}, ctx);
        if (dev.is_cuda()) model->to(dev);
        NamedTensors ps = model->parameters();
        std::vector<Tensor> cs;  // d(loss)/dp_i = c_i
        for (auto& [n, p] : ps) cs.push_back(on_device(Tensor::uniform(ctx, p.shape(), -1e-3, 1e-3, p.dtype()), dev));
        AdamOptions o;
        o.arena = arena == 1;
        Adam opt(ps, o);
        auto sync = [&] {
          if (dev.is_cuda()) cuda::synchronize(dev.index);
        };
        auto step = [&] {
          opt.zero_grad();
          Tensor l;
          for (size_t i = 0; i < ps.size(); ++i) {
            Tensor t = sum_all(mul(ps[i].second, cs[i]));
            l = l.defined() ? add(l, t) : t;
          }
          backward(l);
          if (!opt.nonfinite_grad().empty()) std::fprintf(stderr, "non-finite gradient\n"), std::exit(1);
          opt.step();
          sync();
        };
        for (int w = 0; w < 3; ++w) step();
        std::vector<double> t;
        for (int r = 0; r < repeats; ++r) {
          auto t0 = std::chrono::steady_clock::now();
          step();
          t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(t.begin(), t.end());
        med[arena] = t[t.size() / 2];
        n_tensors = ps.size();
        n_params = 0;
        for (auto& [n, p] : ps) n_params += p.numel();
        if (arena == 1) fused = opt.last_step_fused();
      }
      std::printf("| %s | %zu | %lld | %.3f | %.3f | %.2fx | %s |\n", type, n_tensors,
                  static_cast<long long>(n_params), med[0], med[1], med[0] / med[1], fused ? "yes" : "no");
    }
    std::printf("\ndevice %s, %d threads, median of %d repeats after 3 warm-ups; each repeat: zero_grad, backward of "
                "sum_i <p_i, c_i>, the trainer's non-finite check, Adam step%s\n",
                device_str(dev).c_str(), threads, repeats, dev.is_cuda() ? ", device synchronised" : "");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_optim: %s\n", e.what());
    return 1;
  }
  return 0;
}
