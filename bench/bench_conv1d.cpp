// conv1d micro-benchmark: forward, input grad and weight grad of every kernel family at the binary-model,
// BPNet and one-hot first-layer shapes; median ms and GFLOP/s (2·B·Cout·Cin/G·K·Lout per op) beside the
// machine's SGEMM rate measured in the same run. Run: build/bench/bench_conv1d [--reps N] [--threads T]
// GPU (CUDA builds): --conv auto|direct|tiled|im2col|cudnn|tune times conv1d_{fwd,bwd_input,bwd_weight}_cuda on device 0
// with that backend
// (kernels/cuda/conv_backend.h), each checked against the CPU's im2col result before it is timed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/conv_backend.h"
#include "kernels/cuda/conv_tune.h"
#include "kernels/cuda/runtime.h"
#ifdef LOWPASS_HAVE_CUDA
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/conv_cudnn.h"
#endif

using namespace lowpass;
using cpu::ConvAlgo;

namespace {

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Median wall time over `reps` runs after one warm-up. When the machine is shared, the wall time
// overstates the cost; g_cpu_norm then also receives the median process CPU time divided by the
// thread count (what the run would take on otherwise idle cores), reported as "cpu" columns.
int g_threads = 2;
double g_cpu_norm = 0;
double median_seconds(int reps, const std::function<void()>& f) {
  f();  // warm-up
  std::vector<double> t, c;
  for (int i = 0; i < reps; ++i) {
    const double c0 = cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    c.push_back((cpu_seconds() - c0) / g_threads);
  }
  std::sort(t.begin(), t.end());
  std::sort(c.begin(), c.end());
  g_cpu_norm = c[c.size() / 2];
  return t[t.size() / 2];
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector<float>(), y = b.to_vector<float>();
  double scale = 1e-30, err = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    scale = std::max(scale, double(std::abs(y[i])));
    err = std::max(err, std::isfinite(x[i]) ? double(std::abs(x[i] - y[i])) : 1e30);
  }
  return err / scale;
}

struct Shape1 {
  std::string name;
  int64_t B, Cin, Cout, L, K, d;
  bool onehot;
};

void sgemm_rate(Context& ctx, int reps) {
  std::printf("SGEMM (same run, %d threads):\n", ctx.threads());
  struct G { const char* what; int64_t M, N, K; };
  for (G g : {G{"square 2048", 2048, 2048, 2048}, G{"conv-shaped 64x960x16384", 64, 16384, 960}})
    for (auto be : {cpu::GemmBackend::Eigen, cpu::GemmBackend::OpenBlas}) {
      if (be == cpu::GemmBackend::OpenBlas && !cpu::have_openblas()) continue;
      Tensor a = Tensor::uniform(ctx, {g.M, g.K}, -1, 1), b = Tensor::uniform(ctx, {g.K, g.N}, -1, 1);
      Tensor c = Tensor::zeros(ctx, {g.M, g.N});
      double s = median_seconds(reps, [&] {
        cpu::gemm<float>(ctx, false, false, g.M, g.N, g.K, 1.0f, a.data<float>(), g.K, b.data<float>(), g.N, 0.0f,
                         c.data<float>(), g.N, be);
      });
      std::printf("  %-28s %-9s %8.2f ms  %7.1f GFLOP/s  (cpu-time: %7.1f)\n", g.what, cpu::gemm_backend_name(be),
                  s * 1e3, 2.0 * g.M * g.N * g.K / s * 1e-9, 2.0 * g.M * g.N * g.K / g_cpu_norm * 1e-9);
    }
}

// The benchmark's shapes: the binary model's middle conv, the BPNet dilated trunk, the one-hot first layers (BPNet's,
// binary's), BPNet's profile head (few outputs).
std::vector<Shape1> bench_shapes() {
  std::vector<Shape1> shapes = {{"binary B128 C64 L1000 K15", 128, 64, 64, 1000, 15, 1, false}};
  for (int64_t d = 1; d <= 64; d *= 2)
    shapes.push_back({"bpnet B64 C64 L1346 K3 d" + std::to_string(d), 64, 64, 64, 1346, 3, d, false});
  shapes.push_back({"onehot B64 C4->64 L1346 K21", 64, 4, 64, 1346, 21, 1, true});
  shapes.push_back({"onehot B128 C4->64 L1000 K15", 128, 4, 64, 1000, 15, 1, true});
  shapes.push_back({"head B64 C64->2 L1346 K75", 64, 64, 2, 1346, 75, 1, false});
  shapes.push_back({"head B64 C64->1 L574 K75", 64, 64, 1, 574, 75, 1, false});  // one unstranded track, O 500
  return shapes;
}

Tensor bench_input(Context& ctx, const Shape1& s) {
  if (!s.onehot) return Tensor::uniform(ctx, {s.B, s.Cin, s.L}, -1, 1);
  std::vector<float> v(size_t(s.B * s.Cin * s.L), 0.0f);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t l = 0; l < s.L; ++l) v[size_t((b * s.Cin + ctx.rng().randint(0, s.Cin)) * s.L + l)] = 1.0f;
  return Tensor::from_vector(ctx, {s.B, s.Cin, s.L}, v);
}

#ifdef LOWPASS_HAVE_CUDA
// CUDA conv1d with one backend: median over `reps` of (10 calls, then a device synchronise) / 10, after a checked
// warm-up call (which also plans cuDNN geometries). One-hot rows: the forward and weight grad take the tiled kernels
// (auto, tiled: where they fit) or the direct ones (direct; auto and tiled where the tiled ones do not fit), else the
// one-hot gather and scatter kernels (im2col, cudnn) (conv1d.cu).
int run_gpu(Context& ctx, cuda::ConvBackend be, int reps, const std::string& only) {
  if (!cuda::available()) {
    std::fprintf(stderr, "bench_conv1d: --conv needs a GPU: %s\n", cuda::unavailable_reason().c_str());
    return 1;
  }
  const Device gpu{DeviceKind::CUDA, 0};
  cuda::set_conv_backend(ctx, 0, be);
  std::printf("CUDA conv1d on %s, backend %s", cuda::device_name(0).c_str(), cuda::conv_backend_name(be));
  if (be == cuda::ConvBackend::Cudnn) std::printf(" (cuDNN run-time %s)", cuda::cudnn_version().c_str());
  std::printf(", float32, median of %d x 10 calls after warm-up\n", reps);
  std::printf("%-30s %-16s %9s %8s %9s %8s %9s %8s\n", "shape", "kernel", "fwd ms", "GF/s", "dgrad ms", "GF/s",
              "wgrad ms", "GF/s");
  const std::string kernel = std::string("cuda-") + cuda::conv_backend_name(be);
  for (const Shape1& s : bench_shapes()) {
    if (!only.empty() && s.name.rfind(only, 0) != 0) continue;
    const Conv1dOpts o = Conv1dOpts::same(s.K, s.d);
    Tensor x = bench_input(ctx, s);
    Tensor w = Tensor::uniform(ctx, {s.Cout, s.Cin, s.K}, -0.1, 0.1), bias = Tensor::uniform(ctx, {s.Cout}, -0.1, 0.1);
    Tensor dy = Tensor::uniform(ctx, {s.B, s.Cout, s.L}, -1, 1);
    const double flop = 2.0 * s.B * s.Cout * s.Cin * s.K * s.L;
    Tensor y0 = Tensor::zeros(ctx, dy.shape()), dx0 = Tensor::zeros(ctx, x.shape()), dw0 = Tensor::zeros(ctx, w.shape());
    cpu::conv1d_fwd_cpu(x, w, bias, y0, o, ConvAlgo::Im2colEigen);
    cpu::conv1d_bwd_input_cpu(dy, w, dx0, o, ConvAlgo::Im2colEigen);
    cpu::conv1d_bwd_weight_cpu(x, dy, dw0, o, ConvAlgo::Im2colEigen);
    Tensor xg = x.to(gpu), wg = w.to(gpu), bg = bias.to(gpu), dyg = dy.to(gpu);
    Tensor y = Tensor::empty(ctx, dy.shape(), DType::F32, gpu), dx = Tensor::empty(ctx, x.shape(), DType::F32, gpu);
    Tensor dw = Tensor::empty(ctx, w.shape(), DType::F32, gpu);
    auto fwd = [&] { cuda::conv1d_fwd_cuda(xg, wg, bg, y, o); };
    auto dgr = [&] { cuda::conv1d_bwd_input_cuda(dyg, wg, dx, o); };
    auto wgr = [&] { cuda::conv1d_bwd_weight_cuda(xg, dyg, dw, o); };
    fwd(), dgr(), wgr();
    cuda::synchronize(0);
    const double ey = max_rel_diff(y.to(Device{}), y0), ex = max_rel_diff(dx.to(Device{}), dx0),
                 ew = max_rel_diff(dw.to(Device{}), dw0);
    if (std::max({ey, ex, ew}) > 1e-4) {
      std::printf("%-30s %-16s WRONG: max rel diff vs CPU im2col-eigen: y %.2e dx %.2e dw %.2e\n", s.name.c_str(),
                  kernel.c_str(), ey, ex, ew);
      return 1;
    }
    auto time = [&](const std::function<void()>& f) {
      std::vector<double> t;
      for (int r = 0; r < reps; ++r) {
        cuda::synchronize(0);
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 10; ++i) f();
        cuda::synchronize(0);
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 10);
      }
      std::sort(t.begin(), t.end());
      return t[t.size() / 2];
    };
    const double tf = time(fwd), td = time(dgr), tw = time(wgr);
    std::printf("%-30s %-16s %9.3f %8.0f %9.3f %8.0f %9.3f %8.0f\n", s.name.c_str(), kernel.c_str(), tf * 1e3,
                flop / tf * 1e-9, td * 1e3, flop / td * 1e-9, tw * 1e3, flop / tw * 1e-9);
    std::fflush(stdout);
  }
  if (be == cuda::ConvBackend::Cudnn) {
    const cuda::CudnnStats cs = cuda::cudnn_stats(ctx, 0);
    std::printf("cuDNN: %lld calls, %lld declined (im2col ran), %lld plans:\n",
                static_cast<long long>(cs.fwd + cs.bwd_data + cs.bwd_filter), static_cast<long long>(cs.declined),
                static_cast<long long>(cs.plans));
    for (const std::string& line : cuda::cudnn_plan_descriptions(ctx, 0)) std::printf("  %s\n", line.c_str());
  }
  if (be == cuda::ConvBackend::Tune)  // every route's time per shape and direction, as the tuner measured them
    std::printf("conv tune choices (route: median of 3 calls after one checked call):\n%s",
                cuda::conv_tune_report().c_str());
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  int reps = 5, threads = 2;
  std::string only, conv;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--conv") && i + 1 < argc) conv = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_conv1d [--reps N] [--threads T] [--only NAME-PREFIX] "
                           "[--conv auto|direct|tiled|im2col|cudnn|tune]\n");
      return 2;
    }
  }
  Context ctx(threads, 1);
  g_threads = threads;
  if (!conv.empty()) {  // the CUDA backends instead of the CPU kernels
    try {
      const cuda::ConvBackend be = cuda::parse_conv_backend(conv, "--conv");
#ifdef LOWPASS_HAVE_CUDA
      return run_gpu(ctx, be, reps, only);
#else
      (void)be;
      std::fprintf(stderr, "bench_conv1d: --conv needs a build with the CUDA backend\n");
      return 2;
#endif
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_conv1d: %s\n", e.what());
      return 2;
    }
  }
  if (only.empty() || only == "sgemm") sgemm_rate(ctx, reps);

  const std::vector<Shape1> shapes = bench_shapes();

  std::printf("\nconv1d, 'same' padding, float32, %d threads, median of %d after warm-up "
              "(GFLOP/s = 2·B·Cout·Cin·K·Lout / time; one-hot counted as dense)\n", threads, reps);
  std::printf("%-30s %-16s %9s %6s %6s %9s %6s %6s %9s %6s %6s\n", "shape", "kernel", "fwd ms", "GF/s", "cpu", "dgrad ms",
              "GF/s", "cpu", "wgrad ms", "GF/s", "cpu");
  for (const Shape1& s : shapes) {
    if (!only.empty() && s.name.rfind(only, 0) != 0) continue;
    const Conv1dOpts o = Conv1dOpts::same(s.K, s.d);
    const int64_t Lout = s.L;
    Tensor x = bench_input(ctx, s);
    Tensor w = Tensor::uniform(ctx, {s.Cout, s.Cin, s.K}, -0.1, 0.1);
    Tensor bias = Tensor::uniform(ctx, {s.Cout}, -0.1, 0.1);
    Tensor dy = Tensor::uniform(ctx, {s.B, s.Cout, Lout}, -1, 1);
    const double flop = 2.0 * s.B * s.Cout * s.Cin * s.K * Lout;
    // Baseline outputs for the correctness check of each variant before it is timed.
    Tensor y0 = Tensor::zeros(ctx, dy.shape()), dx0 = Tensor::zeros(ctx, x.shape()), dw0 = Tensor::zeros(ctx, w.shape());
    cpu::conv1d_fwd_cpu(x, w, bias, y0, o, ConvAlgo::Im2colEigen);
    cpu::conv1d_bwd_input_cpu(dy, w, dx0, o, ConvAlgo::Im2colEigen);
    cpu::conv1d_bwd_weight_cpu(x, dy, dw0, o, ConvAlgo::Im2colEigen);
    std::vector<ConvAlgo> algos{ConvAlgo::Auto, ConvAlgo::Direct, ConvAlgo::Im2colEigen, ConvAlgo::Im2colBlas};
    if (s.onehot) algos.push_back(ConvAlgo::Gather);
    for (ConvAlgo a : algos) {
      if (!cpu::conv_algo_available(a)) continue;
      Tensor y = Tensor::zeros(ctx, dy.shape()), dx = Tensor::zeros(ctx, x.shape()), dw = Tensor::zeros(ctx, w.shape());
      auto fwd = [&] { cpu::conv1d_fwd_cpu(x, w, bias, y, o, a); };
      auto dgr = [&] { cpu::conv1d_bwd_input_cpu(dy, w, dx, o, a); };
      auto wgr = [&] { cpu::conv1d_bwd_weight_cpu(x, dy, dw, o, a); };
      fwd(), dgr(), wgr();
      const double e = std::max({max_rel_diff(y, y0), max_rel_diff(dx, dx0), max_rel_diff(dw, dw0)});
      if (e > 1e-4) {
        std::printf("%-30s %-16s WRONG: max rel diff vs im2col-eigen: y %.2e dx %.2e dw %.2e\n", s.name.c_str(),
                    cpu::conv_algo_name(a), max_rel_diff(y, y0), max_rel_diff(dx, dx0), max_rel_diff(dw, dw0));
        return 1;
      }
      const double tf = median_seconds(reps, fwd), cf = g_cpu_norm;
      const double td = median_seconds(reps, dgr), cd = g_cpu_norm;
      const double tw = median_seconds(reps, wgr), cw = g_cpu_norm;
      std::printf("%-30s %-16s %9.2f %6.1f %6.1f %9.2f %6.1f %6.1f %9.2f %6.1f %6.1f\n", s.name.c_str(),
                  cpu::conv_algo_name(a), tf * 1e3, flop / tf * 1e-9, flop / cf * 1e-9, td * 1e3, flop / td * 1e-9,
                  flop / cd * 1e-9, tw * 1e3, flop / tw * 1e-9, flop / cw * 1e-9);
      std::fflush(stdout);
    }
  }
  return 0;
}
