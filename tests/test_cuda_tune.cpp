// The `tune` conv backend (kernels/cuda/conv_tune.h, kernels/cuda/conv1d.cu): the choice among timed candidates,
// the shape keys and the table (host, runs everywhere); on a GPU, conv1d through `tune` against the CPU twin at the
// model layer shapes, one timing per shape, repeats bitwise identical, capture of timed and untimed shapes.
// Run: build/tests/lowpass_tests -ts=cuda -sf='*test_cuda_tune.cpp'  (GPU cases skip without a GPU).
// Written on a machine without a GPU: the GPU case has not yet run on one.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cuda/conv_backend.h"
#include "kernels/cuda/conv_tune.h"
#include "kernels/cuda/runtime.h"
#include "tests/cuda_test.h"
#ifdef LOWPASS_HAVE_CUDA
#include "kernels/cuda/conv1d.h"
#endif

using namespace lowpass;
using namespace lowpass::test;
using cuda::ConvRoute;
using cuda::ConvTrial;

namespace {
ConvTrial trial(ConvRoute r, bool ran, bool agrees, double ms) {
  ConvTrial t;
  t.route = r, t.ran = ran, t.agrees = agrees, t.ms = ms;
  return t;
}
}  // namespace

TEST_SUITE("cuda") {

// ---------------- host only: runs on every machine ----------------
TEST_CASE("conv tune: the fastest candidate that ran and agrees wins, ties to the earlier; medians; tolerances") {
  using cuda::conv_tune_pick;
  // im2col (reference) 1.0 ms, direct declined, tiled 0.4 but disagrees, pipelined 0.5, narrow 0.5, cudnn 0.7
  std::vector<ConvTrial> t = {trial(ConvRoute::Im2col, true, true, 1.0), trial(ConvRoute::Direct, false, true, 0),
                              trial(ConvRoute::Tiled, true, false, 0.4),
                              trial(ConvRoute::TiledPipelined, true, true, 0.5),
                              trial(ConvRoute::Narrow, true, true, 0.5), trial(ConvRoute::Cudnn, true, true, 0.7)};
  CHECK(conv_tune_pick(t) == 3);  // not the disagreeing tiled, not the declined direct (ms 0), the tie to pipelined
  t[3].ran = false;
  CHECK(conv_tune_pick(t) == 4);
  t[4].agrees = false, t[5].agrees = false;
  CHECK(conv_tune_pick(t) == 0);  // only the reference left
  t[0].agrees = false;
  CHECK(conv_tune_pick(t) == -1);
  CHECK(conv_tune_pick({}) == -1);
  CHECK(conv_tune_pick({trial(ConvRoute::Cudnn, true, true, 0.2), trial(ConvRoute::Im2col, true, true, 0.1)}) == 1);

  // The output holds the pick's result only when nothing was attempted after it (H200: cuDNN's weight-grad search
  // wrote the output and then declined; the first call returned its values instead of taps')
  using cuda::conv_tune_output_is;
  std::vector<ConvTrial> u = {trial(ConvRoute::Im2col, true, true, 1.0), trial(ConvRoute::Taps, true, true, 0.5),
                              trial(ConvRoute::Cudnn, false, true, 0)};
  CHECK_FALSE(conv_tune_output_is(u, 1, ConvRoute::Taps));  // cuDNN was attempted after taps
  u.pop_back();
  CHECK(conv_tune_output_is(u, 1, ConvRoute::Taps));
  CHECK_FALSE(conv_tune_output_is(u, 1, ConvRoute::Im2col));  // the table kept another thread's choice
  CHECK_FALSE(conv_tune_output_is(u, 0, ConvRoute::Im2col));  // im2col ran before taps
  CHECK_FALSE(conv_tune_output_is(u, -1, ConvRoute::Im2col));
  u[1].ran = false;
  CHECK_FALSE(conv_tune_output_is(u, 1, ConvRoute::Taps));

  CHECK(cuda::conv_tune_median({}) == 0);
  CHECK(cuda::conv_tune_median({3.0}) == 3.0);
  CHECK(cuda::conv_tune_median({5.0, 1.0, 3.0}) == 3.0);
  CHECK(cuda::conv_tune_median({4.0, 1.0, 2.0, 100.0}) == 3.0);

  CHECK(cuda::conv_tune_tolerance(4, 0) == 1e-4);
  CHECK(cuda::conv_tune_tolerance(8, 0) == 1e-10);
  CHECK(cuda::conv_tune_tolerance(4, 1) == 1e-2);  // TF32: routes with and without rounded operands
  CHECK(cuda::conv_tune_tolerance(4, 2) == 1e-2);

  std::set<std::string> names;
  for (ConvRoute r : cuda::kConvRoutes) names.insert(cuda::conv_route_name(r));
  CHECK(names == std::set<std::string>{"im2col", "direct", "tiled", "tiled-pipelined", "narrow", "taps", "cudnn"});
  CHECK(cuda::kConvRoutes[0] == ConvRoute::Im2col);  // the reference: takes every shape
}

TEST_CASE("conv tune: an error before any route ran is the call's; none ran throws an Error, not an abort") {
  // The reference (im2col, first) failing, e.g. out of memory for its column buffer, is rethrown: swallowed as a
  // decline it made a later route the reference, or aborted the process when no other route took the shape.
  CHECK(cuda::conv_tune_rethrows({}));
  CHECK(cuda::conv_tune_rethrows({trial(ConvRoute::Im2col, false, true, 0)}));
  CHECK_FALSE(cuda::conv_tune_rethrows({trial(ConvRoute::Im2col, true, true, 1.0)}));  // later: a decline
  CHECK_FALSE(cuda::conv_tune_rethrows({trial(ConvRoute::Im2col, true, true, 1.0),
                                        trial(ConvRoute::Direct, false, true, 0)}));
  cuda::ConvTuneKey k;
  k.dir = cuda::ConvDir::BwdWeight, k.B = 512, k.G = 1, k.C = 128, k.O = 128, k.Lin = 1014, k.Lout = 1000, k.K = 15,
  k.d = 1, k.dtype_bytes = 8;
  std::vector<ConvTrial> t;
  for (ConvRoute r : cuda::kConvRoutes) t.push_back(trial(r, false, true, 0));
  CHECK_THROWS_WITH_AS(cuda::conv_tune_reference(t, k), doctest::Contains("every route declined weight-grad B 512"),
                       Error);
  t[2].ran = true;
  CHECK(cuda::conv_tune_reference(t, k) == 2);
  t[0].ran = true;
  CHECK(cuda::conv_tune_reference(t, k) == 0);
}

TEST_CASE("conv tune: keys tell directions, geometries, dtypes and GEMM math apart; the table keeps the first store") {
  cuda::conv_tune_reset();
  cuda::ConvTuneKey a;
  a.dir = cuda::ConvDir::Fwd, a.B = 256, a.G = 1, a.C = 64, a.O = 64, a.Lin = 1014, a.Lout = 1000, a.K = 15, a.d = 1,
  a.p = 0, a.bias = true;
  CHECK(a.describe() == "forward B 256 G 1 C 64 O 64 Lin 1014 Lout 1000 K 15 d 1 p 0 float32 +bias");
  cuda::ConvTuneKey b = a;
  b.dir = cuda::ConvDir::BwdWeight, b.bias = false, b.dtype_bytes = 8, b.gemm_math = 0;
  CHECK(b.describe() == "weight-grad B 256 G 1 C 64 O 64 Lin 1014 Lout 1000 K 15 d 1 p 0 float64");
  cuda::ConvTuneKey c = a;
  c.gemm_math = 1;
  CHECK(c.describe().find(" tf32") != std::string::npos);
  std::vector<cuda::ConvTuneKey> keys = {a, b, c};
  for (auto f : {+[](cuda::ConvTuneKey& k) { k.d = 2; }, +[](cuda::ConvTuneKey& k) { k.p = 7; },
                 +[](cuda::ConvTuneKey& k) { k.device = 1; }, +[](cuda::ConvTuneKey& k) { k.bias = false; },
                 +[](cuda::ConvTuneKey& k) { k.B = 128; }, +[](cuda::ConvTuneKey& k) { k.dir = cuda::ConvDir::BwdInput; }}) {
    cuda::ConvTuneKey k = a;
    f(k);
    keys.push_back(k);
  }
  for (size_t i = 0; i < keys.size(); ++i)
    for (size_t j = 0; j < keys.size(); ++j) {
      INFO(i, " ", j);
      CHECK(((keys[i] < keys[j]) || (keys[j] < keys[i])) == (i != j));  // a strict order: distinct keys differ
    }

  CHECK(cuda::conv_tune_find(a) == nullptr);
  cuda::ConvTuneEntry e;
  e.key = a, e.chosen = ConvRoute::Tiled;
  e.trials = {trial(ConvRoute::Im2col, true, true, 0.5), trial(ConvRoute::Direct, false, true, 0),
              trial(ConvRoute::Tiled, true, true, 0.25)};
  e.trials[2].rel_diff = 3e-7;
  CHECK(cuda::conv_tune_store(e).chosen == ConvRoute::Tiled);
  e.chosen = ConvRoute::Im2col;  // a second store of the same key (another thread timed it too) keeps the first
  CHECK(cuda::conv_tune_store(e).chosen == ConvRoute::Tiled);
  REQUIRE(cuda::conv_tune_find(a) != nullptr);
  CHECK(cuda::conv_tune_find(a)->chosen == ConvRoute::Tiled);
  CHECK(cuda::conv_tune_find(b) == nullptr);
  e.key = b, e.chosen = ConvRoute::Cudnn;
  e.trials = {trial(ConvRoute::Im2col, true, true, 0.5), trial(ConvRoute::Cudnn, true, true, 0.125),
              trial(ConvRoute::Narrow, true, false, 0.01)};
  e.trials[2].rel_diff = 0.5;
  cuda::conv_tune_store(e);
  CHECK(cuda::conv_tune_entries().size() == 2);
  const std::string rep = cuda::conv_tune_report();
  INFO(rep);
  CHECK(rep.find("forward B 256 G 1 C 64 O 64 Lin 1014 Lout 1000 K 15 d 1 p 0 float32 +bias: tiled (im2col 0.5000 ms, "
                 "direct declined, tiled 0.2500 ms)\n") != std::string::npos);
  CHECK(rep.find("weight-grad B 256 G 1 C 64 O 64 Lin 1014 Lout 1000 K 15 d 1 p 0 float64: cudnn (im2col 0.5000 ms, "
                 "cudnn 0.1250 ms, narrow disagrees, rel 0.5)\n") != std::string::npos);
  cuda::conv_tune_reset();
  CHECK(cuda::conv_tune_entries().empty());
  CHECK(cuda::conv_tune_report().empty());
}

// ---------------- GPU ----------------
#ifdef LOWPASS_HAVE_CUDA
TEST_CASE("conv tune on the GPU: model layer shapes match the CPU, one timing per shape, repeats identical, capture") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 71);
  cuda::set_conv_backend(ctx, 0, cuda::ConvBackend::Tune);
  cuda::conv_tune_reset();
  struct Shape3 {
    int64_t B, C, L, O, K, d, groups;
    bool onehot;
  };
  // binary's wide layer, BPNet's dilated trunk, its K 21 first conv on DNA, the K 75 profile head, a grouped layer
  // with awkward sizes
  const std::vector<Shape3> shapes = {{8, 64, 300, 64, 15, 1, 1, false}, {6, 64, 400, 64, 3, 8, 1, false},
                                      {5, 4, 346, 64, 21, 1, 1, true},   {4, 64, 374, 2, 75, 1, 1, false},
                                      {3, 18, 77, 12, 5, 3, 2, false}};
  for (DType t : {DType::F32, DType::F64}) {
    const double tol = t == DType::F32 ? 1e-5 : 1e-12;
    for (const Shape3& q : shapes) {
      INFO(dtype_name(t), " B ", q.B, " C ", q.C, " L ", q.L, " O ", q.O, " K ", q.K, " d ", q.d, " groups ",
           q.groups);
      Conv1dOpts o = Conv1dOpts::same(q.K, q.d);
      o.groups = q.groups;
      Tensor x;
      if (q.onehot) {
        std::vector<double> v(static_cast<size_t>(q.B * q.C * q.L), 0.0);
        for (int64_t b = 0; b < q.B; ++b)
          for (int64_t l = 0; l < q.L; ++l) {
            const int64_t code = ctx.rng().randint(-1, q.C);  // -1: an N column
            if (code >= 0) v[static_cast<size_t>((b * q.C + code) * q.L + l)] = 1.0;
          }
        x = Tensor::from_vector(ctx, {q.B, q.C, q.L}, v).to(t);
      } else {
        x = Tensor::uniform(ctx, {q.B, q.C, q.L}, -1, 1, t);
      }
      Tensor w = Tensor::uniform(ctx, {q.O, q.C / q.groups, q.K}, -1, 1, t);
      Tensor bias = Tensor::uniform(ctx, {q.O}, -1, 1, t), dy = Tensor::uniform(ctx, {q.B, q.O, q.L}, -1, 1, t);
      Tensor y = Tensor::empty(ctx, dy.shape(), t), dx = Tensor::empty(ctx, x.shape(), t),
             dw = Tensor::empty(ctx, w.shape(), t);
      cpu::conv1d_fwd_cpu(x, w, bias, y, o);
      cpu::conv1d_bwd_input_cpu(dy, w, dx, o);
      cpu::conv1d_bwd_weight_cpu(x, dy, dw, o);
      Tensor xg = x.to(kGpu), wg = w.to(kGpu), bg = bias.to(kGpu), dyg = dy.to(kGpu);
      auto run = [&](Tensor& yg, Tensor& dxg, Tensor& dwg) {
        yg = gpu_out(ctx, y.shape(), t), dxg = gpu_out(ctx, x.shape(), t), dwg = gpu_out(ctx, w.shape(), t);
        cuda::conv1d_fwd_cuda(xg, wg, bg, yg, o);
        cuda::conv1d_bwd_input_cuda(dyg, wg, dxg, o);
        cuda::conv1d_bwd_weight_cuda(xg, dyg, dwg, o);
        cuda::synchronize(0);
      };
      const size_t before = cuda::conv_tune_entries().size();
      Tensor y1, dx1, dw1, y2, dx2, dw2;
      run(y1, dx1, dw1);
      CHECK(cuda::conv_tune_entries().size() == before + 3);  // three directions timed, once each
      CHECK(rel(y1, y) <= tol);
      CHECK(rel(dx1, dx) <= tol);
      CHECK(rel(dw1, dw) <= tol);
      CHECK((canaries_intact(y1) && canaries_intact(dx1) && canaries_intact(dw1)));
      run(y2, dx2, dw2);  // served from the table: no new timing, the same route, the same bits
      CHECK(cuda::conv_tune_entries().size() == before + 3);
      CHECK(y2.to_vector<double>() == y1.to_vector<double>());
      CHECK(dx2.to_vector<double>() == dx1.to_vector<double>());
      CHECK(dw2.to_vector<double>() == dw1.to_vector<double>());
    }
  }
  // Every entry: im2col ran as the reference (relative difference 0), the chosen route ran and agrees, and nothing
  // that was kept is slower than the chosen one.
  for (const cuda::ConvTuneEntry& e : cuda::conv_tune_entries()) {
    INFO(e.key.describe());
    REQUIRE(!e.trials.empty());
    CHECK(e.trials[0].route == ConvRoute::Im2col);
    CHECK(e.trials[0].ran);
    CHECK(e.trials[0].rel_diff == 0);
    bool found = false;
    for (const ConvTrial& tr : e.trials) {
      if (tr.route == e.chosen) {
        found = true;
        CHECK(tr.ran);
        CHECK(tr.agrees);
        for (const ConvTrial& other : e.trials)
          if (other.ran && other.agrees) CHECK(tr.ms <= other.ms);
      }
      if (tr.ran) CHECK(tr.agrees);  // every route that ran agrees with im2col on these inputs
    }
    CHECK(found);
  }
  MESSAGE("conv tune choices:\n" << cuda::conv_tune_report());

  // Inside a CUDA-graph capture: a timed shape replays its choice, an untimed one runs as under `auto` and is not
  // timed (no read-back may happen in a capture). Both replays equal the CPU.
  {
    const Conv1dOpts o = Conv1dOpts::same(15, 1);
    Tensor x = Tensor::uniform(ctx, {8, 64, 300}, -1, 1), w = Tensor::uniform(ctx, {64, 64, 15}, -1, 1);
    Tensor bias = Tensor::uniform(ctx, {64}, -1, 1);
    Tensor x2 = Tensor::uniform(ctx, {7, 64, 300}, -1, 1);  // B 7: not yet timed
    Tensor y = Tensor::empty(ctx, {8, 64, 300}, DType::F32), y2 = Tensor::empty(ctx, {7, 64, 300}, DType::F32);
    cpu::conv1d_fwd_cpu(x, w, bias, y, o);
    cpu::conv1d_fwd_cpu(x2, w, bias, y2, o);
    Tensor xg = x.to(kGpu), wg = w.to(kGpu), bg = bias.to(kGpu), x2g = x2.to(kGpu);
    Tensor yg = Tensor::empty(ctx, y.shape(), DType::F32, kGpu), y2g = Tensor::empty(ctx, y2.shape(), DType::F32, kGpu);
    const size_t before = cuda::conv_tune_entries().size();
    cuda::Graph graph(0);
    graph.begin();
    cuda::conv1d_fwd_cuda(xg, wg, bg, yg, o);
    cuda::conv1d_fwd_cuda(x2g, wg, bg, y2g, o);
    graph.end();
    CHECK(cuda::conv_tune_entries().size() == before);
    graph.replay();
    cuda::synchronize(0);
    CHECK(rel(yg, y) <= 1e-5);
    CHECK(rel(y2g, y2) <= 1e-5);
  }
  cuda::conv_tune_reset();
}
#endif

}  // TEST_SUITE
