// The opt-in cuDNN conv1d path (kernels/cuda/conv_cudnn.cu) against the CPU twin (kernels/cpu/conv1d.h) on random
// inputs: forward with and without bias, input grad, weight grad; float32 ‖Δ‖/‖ref‖ ≤ 1e-5, float64 ≤ 1e-12; awkward
// sizes, dilations 1..32, groups, the BPNet and binary-model layer shapes; selection, fallbacks, determinism, TF32, a
// double backward through the ops; and the LOWPASS_CUDA_CONV parser (host only, runs everywhere).
// Run: build/tests/lowpass_tests -ts=cuda -sf='*test_cuda_cudnn.cpp'  (GPU cases skip without a GPU or cuDNN).
// Written on a machine without a GPU; the GPU cases passed on an H200 (cuDNN 9.19.0).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cuda/conv_backend.h"
#include "kernels/cuda/runtime.h"
#include "tests/cuda_test.h"
#ifdef LOWPASS_HAVE_CUDA
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/cuda_state.h"
#endif

using namespace lowpass;
using namespace lowpass::test;

// After LP_SKIP_WITHOUT_GPU: also passes with a message when the build has no cuDNN.
#define LP_SKIP_WITHOUT_CUDNN()                                                                 \
  do {                                                                                          \
    LP_SKIP_WITHOUT_GPU();                                                                      \
    if (!::lowpass::cuda::cudnn_compiled()) {                                                   \
      MESSAGE("cuDNN test skipped: lowpass was built without cuDNN (meson -Dcudnn)");           \
      return;                                                                                   \
    }                                                                                           \
  } while (0)

namespace {

#ifdef LOWPASS_HAVE_CUDA
double tol_of(DType t) { return t == DType::F32 ? 1e-5 : 1e-12; }

struct Geo {
  int64_t B, Cin, L, Cout, K, d, pad, groups;  // symmetric padding `pad` on each side
};

std::string geo_str(const Geo& q) {
  return lowpass::detail::concat("B ", q.B, " Cin ", q.Cin, " L ", q.L, " Cout ", q.Cout, " K ", q.K, " d ", q.d,
                                 " pad ", q.pad, " groups ", q.groups);
}

// Says which direction cuDNN declined, and the reasons its plans give.
void report_decline(Context& ctx, const char* what, const Geo& q) {
  MESSAGE("cuDNN declined the " << what << ": " << geo_str(q));
  for (const std::string& s : cuda::cudnn_plan_descriptions(ctx, 0))
    if (s.find("declined") != std::string::npos) MESSAGE("  " << s);
}

// Runs the three cuDNN entry points directly on random inputs and compares each with the CPU twin. With must_run,
// the forward must be taken by cuDNN (these geometries are all expressible, and cuDNN has deterministic forward
// algorithms); a backward direction may decline, because cuDNN may offer no deterministic algorithm for it (on the
// H200 with cuDNN 9.19: float32 weight grads, grouped and some dilated float32 input grads). A decline (nothing
// written) is reported and skipped.
void check_cudnn_directions(Context& ctx, const Geo& q, DType t, double tol, bool must_run = true) {
  const Conv1dOpts o{q.d, q.pad, q.pad, q.groups};
  const int64_t Lout = q.L + 2 * q.pad - q.d * (q.K - 1);
  REQUIRE(Lout >= 1);
  Tensor x = Tensor::uniform(ctx, {q.B, q.Cin, q.L}, -1, 1, t);
  Tensor w = Tensor::uniform(ctx, {q.Cout, q.Cin / q.groups, q.K}, -1, 1, t);
  Tensor bias = Tensor::uniform(ctx, {q.Cout}, -1, 1, t);
  Tensor dy = Tensor::uniform(ctx, {q.B, q.Cout, Lout}, -1, 1, t);
  Tensor xg = x.to(kGpu), wg = w.to(kGpu), bg = bias.to(kGpu), dyg = dy.to(kGpu);
  INFO(geo_str(q), " ", std::string(dtype_name(t)));
  // One direction: the CPU twin into ref, cuDNN into a NaN-fenced GPU output, then compare (or report a decline).
  auto direction = [&](const char* what, const Shape& shape, const std::function<void(Tensor&)>& cpu_fn,
                       const std::function<bool(Tensor&)>& cudnn_fn) {
    Tensor ref = Tensor::empty(ctx, shape, t);
    cpu_fn(ref);
    Tensor got = gpu_out(ctx, shape, t);
    const bool ran = cudnn_fn(got);
    cuda::synchronize(0);
    INFO(std::string(what));
    if (must_run && std::string_view(what).starts_with("forward")) CHECK(ran);
    if (!ran) return report_decline(ctx, what, q);
    CHECK(rel(got, ref) <= tol);
    CHECK(canaries_intact(got));
  };
  for (bool with_bias : {true, false})
    direction(with_bias ? "forward, bias" : "forward, no bias", {q.B, q.Cout, Lout},
              [&](Tensor& r) { cpu::conv1d_fwd_cpu(x, w, with_bias ? bias : Tensor(), r, o); },
              [&](Tensor& g) { return cuda::conv1d_fwd_cudnn(xg, wg, with_bias ? bg : Tensor(), g, o); });
  direction("input grad", x.shape(), [&](Tensor& r) { cpu::conv1d_bwd_input_cpu(dy, w, r, o); },
            [&](Tensor& g) { return cuda::conv1d_bwd_input_cudnn(dyg, wg, g, o); });
  direction("weight grad", w.shape(), [&](Tensor& r) { cpu::conv1d_bwd_weight_cpu(x, dy, r, o); },
            [&](Tensor& g) { return cuda::conv1d_bwd_weight_cudnn(xg, dyg, g, o); });
}

// The three conv1d_*_cuda entry points (cuDNN, or the path it declines to) on GPU copies of x, w, bias and dy, into
// NaN-fenced outputs, and the CPU twins of the same directions.
struct DispatchRun {
  Tensor y, dx, dw;     // CPU
  Tensor yg, dxg, dwg;  // GPU
};
DispatchRun run_dispatch(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& dy,
                         const Conv1dOpts& o) {
  const DType t = x.dtype();
  DispatchRun r;
  r.y = Tensor::empty(ctx, dy.shape(), t), r.dx = Tensor::empty(ctx, x.shape(), t);
  r.dw = Tensor::empty(ctx, w.shape(), t);
  cpu::conv1d_fwd_cpu(x, w, bias, r.y, o);
  cpu::conv1d_bwd_input_cpu(dy, w, r.dx, o);
  cpu::conv1d_bwd_weight_cpu(x, dy, r.dw, o);
  r.yg = gpu_out(ctx, r.y.shape(), t), r.dxg = gpu_out(ctx, x.shape(), t), r.dwg = gpu_out(ctx, w.shape(), t);
  Tensor xg = x.to(kGpu), wg = w.to(kGpu), dyg = dy.to(kGpu);
  cuda::conv1d_fwd_cuda(xg, wg, bias.to(kGpu), r.yg, o);
  cuda::conv1d_bwd_input_cuda(dyg, wg, r.dxg, o);
  cuda::conv1d_bwd_weight_cuda(xg, dyg, r.dwg, o);
  cuda::synchronize(0);
  return r;
}

void print_plans(Context& ctx) {
  for (const std::string& s : cuda::cudnn_plan_descriptions(ctx, 0)) MESSAGE(s);
}
#endif

}  // namespace

TEST_SUITE("cuda") {

// ---------------- host only: runs on every machine ----------------
TEST_CASE("conv backend: LOWPASS_CUDA_CONV accepts auto, direct, tiled, im2col, cudnn and tune, rejects anything else with a clear error") {
  using cuda::ConvBackend;
  CHECK(cuda::parse_conv_backend("im2col", "--conv") == ConvBackend::Im2col);
  CHECK(cuda::parse_conv_backend("cudnn", "--conv") == ConvBackend::Cudnn);
  CHECK(cuda::parse_conv_backend("direct", "--conv") == ConvBackend::Direct);
  CHECK(cuda::parse_conv_backend("tiled", "--conv") == ConvBackend::Tiled);
  CHECK(cuda::conv_backend_from_env_value("tiled") == ConvBackend::Tiled);
  CHECK(cuda::parse_conv_backend("auto", "--conv") == ConvBackend::Auto);
  CHECK(cuda::parse_conv_backend("tune", "--conv") == ConvBackend::Tune);
  CHECK(cuda::conv_backend_from_env_value("tune") == ConvBackend::Tune);
  CHECK(cuda::conv_backend_from_env_value(nullptr) == ConvBackend::Auto);  // unset: the default path
  CHECK(cuda::conv_backend_from_env_value("") == ConvBackend::Auto);
  CHECK(cuda::conv_backend_from_env_value("direct") == ConvBackend::Direct);
  CHECK(cuda::conv_backend_from_env_value("cudnn") == ConvBackend::Cudnn);
  CHECK(cuda::conv_backend_from_env_value("im2col") == ConvBackend::Im2col);
  for (ConvBackend b : {ConvBackend::Im2col, ConvBackend::Direct, ConvBackend::Cudnn, ConvBackend::Tiled,
                        ConvBackend::Auto, ConvBackend::Tune})
    CHECK(cuda::parse_conv_backend(cuda::conv_backend_name(b), "x") == b);
  for (const char* bad : {"CUDNN", "cuDNN", "gemm", " cudnn", "cudnn ", "im2col,cudnn", "1", "0", "AUTO", "Tune", "benchmark"}) {
    INFO("value '", bad, "'");
    std::string msg;
    try {
      (void)cuda::conv_backend_from_env_value(bad);
    } catch (const Error& e) {
      msg = e.what();
    }
    CHECK(msg.find("LOWPASS_CUDA_CONV") != std::string::npos);
    CHECK(msg.find(std::string("'") + bad + "'") != std::string::npos);
    CHECK(msg.find("auto, direct, tiled, im2col, cudnn or tune") != std::string::npos);
  }
  CHECK_THROWS_AS((void)cuda::parse_conv_backend("fft", "--conv"), Error);
  // The process default is LOWPASS_CUDA_CONV as this run saw it: parsed (or the same error), stable.
  const char* env = std::getenv("LOWPASS_CUDA_CONV");
  const std::string e = env ? env : "";
  if (e.empty() || e == "auto" || e == "im2col" || e == "direct" || e == "cudnn" || e == "tiled" || e == "tune") {
    CHECK(cuda::default_conv_backend() == cuda::conv_backend_from_env_value(env));
    CHECK(cuda::default_conv_backend() == cuda::default_conv_backend());
    MESSAGE("default CUDA conv backend of this run: " << std::string(cuda::conv_backend_name(cuda::default_conv_backend())));
  } else {
    CHECK_THROWS_AS((void)cuda::default_conv_backend(), Error);
  }
  if (cuda::cudnn_compiled()) {
    CHECK_NOTHROW(cuda::require_cudnn("test"));
  } else {
    std::string msg;
    try {
      cuda::require_cudnn("test");
    } catch (const Error& e) {
      msg = e.what();
    }
    CHECK(msg.find("built without cuDNN") != std::string::npos);
  }
}

TEST_CASE("cuDNN: the run-time library is major version 9 where cuDNN is compiled in (needs no GPU)") {
  if (!cuda::cudnn_compiled()) {
    CHECK(cuda::cudnn_version().empty());
    MESSAGE("built without cuDNN");
    return;
  }
  const std::string v = cuda::cudnn_version();
  MESSAGE("cuDNN run-time version " << v);
  CHECK(v.rfind("9.", 0) == 0);
}

#ifdef LOWPASS_HAVE_CUDA
// ---------------- on the GPU ----------------
TEST_CASE("cuDNN conv1d: forward, input grad and weight grad match the CPU (awkward sizes, dilations 1..32, groups)") {
  LP_SKIP_WITHOUT_CUDNN();
  Context ctx(2, 41);
  cuda::set_conv_backend(ctx, 0, cuda::ConvBackend::Cudnn);
  std::vector<Geo> geos = {
      {1, 1, 1, 1, 1, 1, 0, 1},     {2, 3, 17, 5, 3, 1, 1, 1},    {37, 5, 33, 7, 5, 2, 4, 1},
      {3, 6, 29, 10, 3, 4, 0, 2},   {2, 9, 31, 6, 3, 2, 2, 3},    {1, 13, 101, 11, 7, 3, 9, 1},
      {4, 8, 50, 8, 3, 16, 16, 1},  {2, 7, 97, 9, 3, 32, 32, 1},  {5, 12, 65, 20, 5, 8, 16, 2},
      {3, 4, 40, 5, 1, 1, 0, 1},    {37, 3, 11, 5, 3, 1, 0, 1},   {1, 2, 7, 3, 3, 3, 0, 1},
      {2, 10, 9, 14, 9, 1, 4, 2},
  };
  for (int64_t d = 1; d <= 32; d *= 2) {
    geos.push_back({3, 10, 200, 12, 3, d, d, 1});  // 'same'
    geos.push_back({2, 9, 199, 15, 3, d, 0, 1});   // 'valid'
  }
  for (DType t : {DType::F32, DType::F64})
    for (const Geo& q : geos) check_cudnn_directions(ctx, q, t, tol_of(t));
  const cuda::CudnnStats s = cuda::cudnn_stats(ctx, 0);
  const int64_t n = 2 * static_cast<int64_t>(geos.size());
  CHECK(s.fwd == 2 * n);
  CHECK(s.bwd_data + s.bwd_filter + s.declined == 2 * n);  // every backward call ran or declined (and was reported)
  MESSAGE(s.plans << " cuDNN plans; of " << 2 * n << " backward calls, " << s.declined << " declined");
}

TEST_CASE("cuDNN conv1d at the model layer shapes: BPNet trunk and heads, binary model convs") {
  LP_SKIP_WITHOUT_CUDNN();
  Context ctx(2, 42);
  cuda::set_conv_backend(ctx, 0, cuda::ConvBackend::Cudnn);
  std::vector<Geo> geos;
  // BPNet (models/arch/profile_net.h defaults): first conv 4 -> 64, K 21 'same'; dilated 64 -> 64, K 3, d 2^i 'same'
  // at the input length 1346 and at 1000; profile head 64 -> T·S = 2, K 75 'valid' on the 1074-long crop; the
  // per-task 1×1 heads (T·S -> T·S, groups T = 2) on the profile and on the counts (L 1).
  geos.push_back({2, 4, 1346, 64, 21, 1, 10, 1});
  for (int64_t L : {1346, 1000})
    for (int64_t d = 2; d <= 64; d *= 2) geos.push_back({2, 64, L, 64, 3, d, d, 1});
  geos.push_back({2, 64, 1074, 2, 75, 1, 0, 1});
  geos.push_back({3, 4, 1000, 4, 1, 1, 0, 2});
  geos.push_back({3, 4, 1, 4, 1, 1, 0, 2});
  // Binary model (models/arch/binary_net.h): 4 -> 64 K 15, 64 -> 64 K 15, 64 -> 64 K 13, all 'valid', L 1000.
  geos.push_back({2, 4, 1000, 64, 15, 1, 0, 1});
  geos.push_back({2, 64, 986, 64, 15, 1, 0, 1});
  geos.push_back({2, 64, 972, 64, 13, 1, 0, 1});
  for (DType t : {DType::F32, DType::F64})
    for (const Geo& q : geos) check_cudnn_directions(ctx, q, t, tol_of(t));
  const cuda::CudnnStats s = cuda::cudnn_stats(ctx, 0);
  const int64_t n = 2 * static_cast<int64_t>(geos.size());
  CHECK(s.fwd == 2 * n);
  CHECK(s.bwd_data + s.bwd_filter + s.declined == 2 * n);
  print_plans(ctx);  // which algorithm cuDNN chose per layer, in the test log
}

TEST_CASE("cuDNN backend through conv1d_*_cuda: per Context, asymmetric padding declines to im2col, one-hot gather kept") {
  LP_SKIP_WITHOUT_CUDNN();
  Context ctx(2, 43), other(2, 44);
  cuda::set_conv_backend(ctx, 0, cuda::ConvBackend::Cudnn);
  CHECK(cuda::conv_backend(ctx, 0) == cuda::ConvBackend::Cudnn);
  CHECK(cuda::conv_backend(other, 0) == cuda::default_conv_backend());  // another Context keeps the default
  auto run_all = [&](const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& dy, const Conv1dOpts& o,
                     DType t) {
    const DispatchRun r = run_dispatch(ctx, x, w, bias, dy, o);
    CHECK(rel(r.yg, r.y) <= tol_of(t));
    CHECK(rel(r.dxg, r.dx) <= tol_of(t));
    CHECK(rel(r.dwg, r.dw) <= tol_of(t));
    CHECK((canaries_intact(r.yg) && canaries_intact(r.dxg) && canaries_intact(r.dwg)));
  };
  for (DType t : {DType::F32, DType::F64}) {
    INFO(std::string(dtype_name(t)));
    // Dense, symmetric: all three directions through cuDNN.
    cuda::CudnnStats s0 = cuda::cudnn_stats(ctx, 0);
    {
      const Conv1dOpts o{2, 4, 4, 1};
      Tensor x = Tensor::uniform(ctx, {3, 24, 61}, -1, 1, t), w = Tensor::uniform(ctx, {20, 24, 5}, -1, 1, t);
      run_all(x, w, Tensor::uniform(ctx, {20}, -1, 1, t), Tensor::uniform(ctx, {3, 20, 61}, -1, 1, t), o, t);
    }
    cuda::CudnnStats s1 = cuda::cudnn_stats(ctx, 0);
    CHECK(s1.fwd == s0.fwd + 1);
    // the backward directions ran on cuDNN or declined to im2col (no deterministic algorithm); right either way
    CHECK(s1.bwd_data + s1.bwd_filter + s1.declined == s0.bwd_data + s0.bwd_filter + s0.declined + 2);
    // Asymmetric padding ('same' with an even kernel, and one-sided): cuDNN declines, im2col computes.
    struct Asym { Conv1dOpts o; int64_t K; };
    for (const Asym& a_ : {Asym{Conv1dOpts::same(4, 3), 4}, Asym{{1, 3, 0, 1}, 4}, Asym{{2, 0, 5, 2}, 3}}) {
      const Conv1dOpts o = a_.o;
      const int64_t K = a_.K, L = 37, Lout = L + o.pad_left + o.pad_right - o.dilation * (K - 1);
      INFO("pads ", o.pad_left, "/", o.pad_right, " d ", o.dilation, " K ", K);
      Tensor x = Tensor::uniform(ctx, {2, 18, L}, -1, 1, t), w = Tensor::uniform(ctx, {6, 18 / o.groups, K}, -1, 1, t);
      cuda::CudnnStats a = cuda::cudnn_stats(ctx, 0);
      run_all(x, w, Tensor::uniform(ctx, {6}, -1, 1, t), Tensor::uniform(ctx, {2, 6, Lout}, -1, 1, t), o, t);
      cuda::CudnnStats b = cuda::cudnn_stats(ctx, 0);
      CHECK(b.declined == a.declined + 3);
      CHECK(b.fwd + b.bwd_data + b.bwd_filter == a.fwd + a.bwd_data + a.bwd_filter);
    }
    // One-hot DNA (4 channels, N columns all zero): the forward keeps the gather and the weight grad the scatter;
    // the input grad (dense) goes to cuDNN.
    {
      const Conv1dOpts o = Conv1dOpts::same(7, 1);
      const int64_t B = 3, C = 4, L = 40;
      std::vector<double> v(static_cast<size_t>(B * C * L), 0.0);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t l = 0; l < L; ++l) {
          int64_t code = ctx.rng().randint(-1, C);
          if (code >= 0) v[static_cast<size_t>((b * C + code) * L + l)] = 1.0;
        }
      Tensor x = Tensor::from_vector(ctx, {B, C, L}, v).to(t), w = Tensor::uniform(ctx, {16, C, 7}, -1, 1, t);
      cuda::CudnnStats a = cuda::cudnn_stats(ctx, 0);
      run_all(x, w, Tensor::uniform(ctx, {16}, -1, 1, t), Tensor::uniform(ctx, {B, 16, L}, -1, 1, t), o, t);
      cuda::CudnnStats b = cuda::cudnn_stats(ctx, 0);
      CHECK(b.fwd == a.fwd);
      CHECK(b.bwd_filter == a.bwd_filter);
      CHECK(b.bwd_data == a.bwd_data + 1);
    }
  }
  // Padding wider than the dilated kernel and the input (no model does this): cuDNN may take it or decline;
  // the result is right either way.
  for (DType t : {DType::F32, DType::F64}) {
    const Conv1dOpts o{2, 6, 6, 1};
    Tensor x = Tensor::uniform(ctx, {3, 6, 5}, -1, 1, t), w = Tensor::uniform(ctx, {4, 6, 3}, -1, 1, t);
    run_all(x, w, Tensor::uniform(ctx, {4}, -1, 1, t), Tensor::uniform(ctx, {3, 4, 13}, -1, 1, t), o, t);
  }
  // The other Context never touched cuDNN (unless this run's default is cudnn).
  if (cuda::default_conv_backend() != cuda::ConvBackend::Cudnn) CHECK(cuda::cudnn_stats(other, 0).plans == 0);
}

TEST_CASE("cuDNN backend: plans are reused, repeats are bitwise identical and allocate nothing, workspace limit 0") {
  LP_SKIP_WITHOUT_CUDNN();
  Context ctx(2, 45);
  cuda::set_conv_backend(ctx, 0, cuda::ConvBackend::Cudnn);
  const Conv1dOpts o{4, 4, 4, 1};  // K 3, dilation 4, 'same': L 300 -> 300
  Tensor x = Tensor::uniform(ctx, {8, 64, 300}, -1, 1).to(kGpu), w = Tensor::uniform(ctx, {64, 64, 3}, -1, 1).to(kGpu);
  Tensor bias = Tensor::uniform(ctx, {64}, -1, 1).to(kGpu), dy = Tensor::uniform(ctx, {8, 64, 300}, -1, 1).to(kGpu);
  auto once = [&] {
    Tensor y = Tensor::empty(ctx, dy.shape(), DType::F32, kGpu), dx = Tensor::empty(ctx, x.shape(), DType::F32, kGpu);
    Tensor dw = Tensor::empty(ctx, w.shape(), DType::F32, kGpu);
    cuda::conv1d_fwd_cuda(x, w, bias, y, o);
    cuda::conv1d_bwd_input_cuda(dy, w, dx, o);
    cuda::conv1d_bwd_weight_cuda(x, dy, dw, o);
    cuda::synchronize(0);
    return std::vector<std::vector<float>>{y.to_vector<float>(), dx.to_vector<float>(), dw.to_vector<float>()};
  };
  auto first = once();
  const cuda::CudnnStats s1 = cuda::cudnn_stats(ctx, 0);
  const int64_t mallocs = cuda::allocator_stats(0).device_mallocs;
  auto second = once();
  const cuda::CudnnStats s2 = cuda::cudnn_stats(ctx, 0);
  CHECK(s1.plans == 3);  // one per direction, a declined direction's included
  CHECK(s2.plans == 3);
  CHECK(s2.fwd == 2);
  CHECK(s2.bwd_data + s2.bwd_filter + s2.declined == 4);  // declined directions ran on im2col, also deterministic
  CHECK(cuda::allocator_stats(0).device_mallocs == mallocs);
  for (size_t i = 0; i < 3; ++i) {
    INFO("output ", i, " (y, dx, dw)");
    CHECK(first[i] == second[i]);  // deterministic algorithms: identical bits
  }
  print_plans(ctx);

  // Workspace limit 0 (a fresh Context): only algorithms without a workspace may run (or cuDNN declines, and says
  // so); whatever runs is right.
  Context small(2, 46);
  cuda::set_conv_backend(small, 0, cuda::ConvBackend::Cudnn);
  cuda::state(small, 0).cudnn_workspace_limit = 0;
  check_cudnn_directions(small, {4, 16, 77, 24, 5, 2, 4, 1}, DType::F32, 1e-5, /*must_run=*/false);
  print_plans(small);
}

TEST_CASE("cuDNN backend with the TF32 switch: its own plans, float32 within TF32 accuracy, FMA again when off") {
  LP_SKIP_WITHOUT_CUDNN();
  Context ctx(2, 47);
  cuda::set_conv_backend(ctx, 0, cuda::ConvBackend::Cudnn);
  const Geo q{4, 64, 500, 64, 3, 4, 4, 1};
  cuda::set_tf32(ctx, 0, true);
  check_cudnn_directions(ctx, q, DType::F32, 5e-3);  // TF32: 10-bit mantissa products, float32 sums
  check_cudnn_directions(ctx, q, DType::F64, 1e-12);  // float64 is unaffected by the switch
  cuda::set_tf32(ctx, 0, false);
  check_cudnn_directions(ctx, q, DType::F32, 1e-5);
  int tf32_plans = 0;
  for (const std::string& s : cuda::cudnn_plan_descriptions(ctx, 0)) tf32_plans += s.find("tf32 allowed") != std::string::npos;
  CHECK(tf32_plans == 3);
  print_plans(ctx);
}

TEST_CASE("cuDNN backend with the bf16 switch: float32 convolutions decline to im2col's bf16 GEMMs, float64 stays") {
  LP_SKIP_WITHOUT_CUDNN();
  Context ctx(2, 48);
  cuda::set_conv_backend(ctx, 0, cuda::ConvBackend::Cudnn);
  cuda::set_gemm_math(ctx, 0, cuda::GemmMath::BF16);
  const Geo q{4, 64, 500, 64, 3, 4, 4, 1};
  const Conv1dOpts o{q.d, q.pad, q.pad, q.groups};
  const int64_t Lout = q.L + 2 * q.pad - q.d * (q.K - 1);
  for (DType t : {DType::F32, DType::F64}) {
    INFO(std::string(dtype_name(t)));
    Tensor x = Tensor::uniform(ctx, {q.B, q.Cin, q.L}, -1, 1, t);
    Tensor w = Tensor::uniform(ctx, {q.Cout, q.Cin, q.K}, -1, 1, t);
    Tensor bias = Tensor::uniform(ctx, {q.Cout}, -1, 1, t), dy = Tensor::uniform(ctx, {q.B, q.Cout, Lout}, -1, 1, t);
    const cuda::CudnnStats a = cuda::cudnn_stats(ctx, 0);
    const DispatchRun r = run_dispatch(ctx, x, w, bias, dy, o);
    const cuda::CudnnStats b = cuda::cudnn_stats(ctx, 0);
    const bool f32 = t == DType::F32;
    if (f32) {  // float32: all three decline to im2col + bfloat16 cuBLAS
      CHECK(b.declined == a.declined + 3);
      CHECK(b.fwd + b.bwd_data + b.bwd_filter == a.fwd + a.bwd_data + a.bwd_filter);
    } else {  // float64: cuDNN's forward, the backward directions on cuDNN or declined (no deterministic algorithm)
      CHECK(b.fwd == a.fwd + 1);
      CHECK(b.bwd_data + b.bwd_filter + b.declined == a.bwd_data + a.bwd_filter + a.declined + 2);
    }
    const double tol = f32 ? 1e-2 : 1e-12;  // bfloat16 products (7 mantissa bits), float32 sums
    const double ey = rel(r.yg, r.y), edx = rel(r.dxg, r.dx), edw = rel(r.dwg, r.dw);
    MESSAGE(std::string(dtype_name(t)) << " relative errors: forward " << ey << ", input grad " << edx << ", weight grad " << edw);
    CHECK(ey <= tol);
    CHECK(edx <= tol);
    CHECK(edw <= tol);
    if (f32) CHECK(ey > 1e-5);  // the products really were bfloat16
    CHECK((canaries_intact(r.yg) && canaries_intact(r.dxg) && canaries_intact(r.dwg)));
  }
}

TEST_CASE("cuDNN backend: conv1d's gradient of a gradient (create_graph) on the GPU equals the CPU's") {
  LP_SKIP_WITHOUT_CUDNN();
  Context ctx(2, 48);
  cuda::set_conv_backend(ctx, 0, cuda::ConvBackend::Cudnn);
  for (DType t : {DType::F32, DType::F64}) {
    INFO(std::string(dtype_name(t)));
    const double tol = t == DType::F32 ? 1e-4 : 1e-10;  // composed graphs: several kernels deep
    const Conv1dOpts o{2, 4, 4, 2};
    Tensor x = Tensor::uniform(ctx, {3, 6, 45}, -1, 1, t), w = Tensor::uniform(ctx, {8, 3, 5}, -1, 1, t);
    Tensor b = Tensor::uniform(ctx, {8}, -1, 1, t);
    Tensor gx = x.to(kGpu), gw = w.to(kGpu), gb = b.to(kGpu);
    for (Tensor* leaf : {&x, &w, &b, &gx, &gw, &gb}) leaf->set_requires_grad(true);
    auto f = [&](const Tensor& x, const Tensor& w, const Tensor& b) { return softplus(conv1d(x, w, b, o)); };
    Tensor y_cpu = f(x, w, b), y_gpu = f(gx, gw, gb);
    CHECK(rel(y_gpu, y_cpu) <= tol);
    Tensor v = Tensor::uniform(ctx, y_cpu.shape(), 0.5, 1.5, t);
    auto g_cpu = grad({y_cpu}, {x, w, b}, {v}, true);
    auto g_gpu = grad({y_gpu}, {gx, gw, gb}, {v.to(kGpu)}, true);
    for (size_t i = 0; i < 3; ++i) {
      INFO("gradient ", i);
      CHECK(rel(g_gpu[i], g_cpu[i]) <= tol);
    }
    // d/d(w, x, b) <dL/dx, u> and d/d(x, w, b) <dL/dw, u2>: conv1d_input_grad and conv1d_weight_grad differentiated,
    // which runs all three cuDNN directions again on new operands.
    Tensor u = Tensor::uniform(ctx, x.shape(), -1, 1, t), u2 = Tensor::uniform(ctx, w.shape(), -1, 1, t);
    auto h_cpu = grad({g_cpu[0]}, {x, w, b}, {u}, false);
    auto h_gpu = grad({g_gpu[0]}, {gx, gw, gb}, {u.to(kGpu)}, false);
    auto k_cpu = grad({g_cpu[1]}, {x, w, b}, {u2}, false);
    auto k_gpu = grad({g_gpu[1]}, {gx, gw, gb}, {u2.to(kGpu)}, false);
    for (size_t i = 0; i < 3; ++i) {
      INFO("second order, wrt input ", i);
      CHECK(rel(h_gpu[i], h_cpu[i]) <= tol);
      CHECK(rel(k_gpu[i], k_cpu[i]) <= tol);
    }
  }
  const cuda::CudnnStats s = cuda::cudnn_stats(ctx, 0);
  CHECK(s.fwd > 0);  // cuDNN ran; a backward direction without a deterministic algorithm declined to im2col
  CHECK(s.bwd_data + s.bwd_filter > 0);
  MESSAGE("cuDNN calls: " << s.fwd << " forward, " << s.bwd_data << " input grad, " << s.bwd_filter
                          << " weight grad, " << s.declined << " declined");
}
#endif  // LOWPASS_HAVE_CUDA

}  // TEST_SUITE
