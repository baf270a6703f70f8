// The CUDA-graph training step (models/train/graph_step.h) and what it rests on: the caching allocator's graph pools
// (host bookkeeping with a fake device), the per-example loss weights that replace host-side counting (binary loss and
// Fourier prior, values and gradients in float64), the fixed-form step against the ordinary step on the CPU (binary
// with batch norm, BPNet-style profile; batches with no positives, ignored labels, a change of batch size, a
// non-finite batch), and on a GPU: the captured and replayed step against the uncaptured one and the CPU.
// Run: build-dev/tests/lowpass_tests -tc='*graph*'
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <set>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/cuda/block_cache.h"
#include "kernels/cuda/runtime.h"
#include "models/arch/model.h"
#include "models/loss/binary_loss.h"
#include "models/loss/fourier_prior.h"
#include "models/loss/objective.h"
#include "models/train/graph_step.h"
#include "tests/cuda_test.h"
#include "tests/fake_device.h"

using namespace lowpass;
using nlohmann::json;

namespace {

double rel_l2(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]), n += b[i] * b[i];
  return std::sqrt(d) / std::max(std::sqrt(n), 1e-300);
}

// A one-hot batch with labels: binary (B, 1) labels cycling through `labels`, profile counts (and controls).
Batch make_batch(Context& ctx, const Model& m, int64_t B, const std::vector<double>& labels, bool nan_input = false) {
  const int64_t L = m.input_length();
  std::vector<double> x(static_cast<size_t>(B * 4 * L), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i) x[static_cast<size_t>((b * 4 + ctx.rng().randint(0, 4)) * L + i)] = 1.0;
  if (nan_input) x[5] = std::numeric_limits<double>::quiet_NaN();
  Batch bt;
  bt.x = Tensor::from_vector(ctx, {B, 4, L}, x).to(DType::F32);
  if (m.type() == "binary") {
    std::vector<double> y(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) y[static_cast<size_t>(b)] = labels[static_cast<size_t>(b) % labels.size()];
    bt.y = Tensor::from_vector(ctx, {B, 1}, y).to(DType::F32);
  } else {
    const int64_t O = m.output_length();
    bt.y = Tensor::uniform(ctx, {B, 1, 2, O}, 0, 5, DType::F32);
    bt.control = Tensor::uniform(ctx, {B, 1, 2, O}, 0, 2, DType::F32);
    bt.status.assign(static_cast<size_t>(B), 1);
    bt.status[0] = 0;
  }
  return bt;
}

struct Run {
  std::vector<std::vector<double>> losses;  // {task, prior, total} per step (empty entry: skipped)
  std::vector<double> params, buffers;
  int64_t replays = 0, captures = 0;
};

// mode 0: the ordinary step (compute_losses, backward, step); 1: the fixed form without capture; 2: captured.
Run train(const json& cfg, Device dev, int mode, const std::vector<Batch>& batches, const PriorConfig& prior,
          std::FILE* log = nullptr) {
  Context ctx(2, 17);
  auto m = make_model(cfg, ctx);
  if (dev.is_cuda()) m->to(dev);
  AdamOptions ao;
  ao.lr = 1e-2;
  Adam opt(m->parameters(), ao);
  std::unique_ptr<GraphStep> gs;
  if (mode > 0) gs = std::make_unique<GraphStep>(*m, opt, prior, 20.0, mode == 2, log);
  Run r;
  for (const Batch& b : batches) {
    std::vector<Tensor> saved;  // batch-norm buffers, restored after a skipped batch (as the trainer does)
    for (auto& [k, t] : m->buffers()) saved.push_back(t.to(Device{}));
    auto restore = [&] {
      for (size_t i = 0; i < saved.size(); ++i) m->buffers()[i].second.copy_(saved[i]);
    };
    if (gs) {
      GraphStepResult s = gs->run(b);
      if (!s.finite) restore();
      r.losses.push_back(s.finite ? std::vector<double>{s.task, s.prior, s.total} : std::vector<double>{});
      continue;
    }
    opt.zero_grad();
    Losses l = compute_losses(*m, b, prior, true, 20.0);
    const std::vector<double> v = l.scalars();
    if (!(std::isfinite(v[0]) && std::isfinite(v[1]) && std::isfinite(v[2]))) {
      restore();
      r.losses.push_back({});
      continue;
    }
    backward(l.total);
    opt.step();
    r.losses.push_back(v);
  }
  for (auto& [k, p] : m->parameters()) {
    auto v = p.to_vector<double>();
    r.params.insert(r.params.end(), v.begin(), v.end());
  }
  for (auto& [k, p] : m->buffers()) {
    auto v = p.to_vector<double>();
    r.buffers.insert(r.buffers.end(), v.begin(), v.end());
  }
  if (gs) r.replays = gs->replays(), r.captures = gs->captures();
  return r;
}

// param_tol: float32 runs compare the parameters loosely. Adam's first steps move every parameter by about ±lr
// whatever its gradient's size, so a gradient that is zero in exact arithmetic (a bias in front of a training-mode
// batch norm) takes a round-off sign, and two float32 computations that differ only in the order of sums move it
// in opposite directions. The float64 runs hold the parameters to the losses' tolerance.
void compare(const Run& got, const Run& ref, double tol, double param_tol = -1) {
  if (param_tol < 0) param_tol = tol;
  REQUIRE(got.losses.size() == ref.losses.size());
  for (size_t s = 0; s < ref.losses.size(); ++s) {
    INFO("step ", s);
    REQUIRE(got.losses[s].size() == ref.losses[s].size());  // skipped in both or in neither
    for (size_t k = 0; k < ref.losses[s].size(); ++k)
      CHECK(std::abs(got.losses[s][k] - ref.losses[s][k]) <= tol * std::max(1.0, std::abs(ref.losses[s][k])));
  }
  CHECK(rel_l2(got.params, ref.params) <= param_tol);
  CHECK(rel_l2(got.buffers, ref.buffers) <= param_tol);
}

json binary_cfg(const char* dtype) {
  return {{"type", "binary"}, {"input_length", 64}, {"num_tasks", 1}, {"conv_depths", {6, 5}},
          {"conv_filter_sizes", {7, 5}}, {"max_pool_size", 8}, {"fc_sizes", {6}}, {"dtype", dtype}};
}
json profile_cfg(const char* dtype) {
  return {{"type", "profile"}, {"input_length", 61}, {"num_tasks", 1}, {"num_strands", 2},
          {"dil_conv_filter_sizes", {5, 3, 3}}, {"dil_conv_dilations", {1, 2, 4}}, {"dil_conv_depths", 6},
          {"prof_conv_kernel_size", 9}, {"dtype", dtype}};
}

// Binary batches: mixed labels, no positive (P = 0), ignored labels (−1), a smaller batch, a NaN input. Their
// tensors belong to `bc`, which must outlive them (ops run on their first input's Context).
std::vector<Batch> binary_batches(Context& bc, const json& cfg) {
  Context ctx(1, 3);
  auto m = make_model(cfg, ctx);
  return {make_batch(bc, *m, 6, {1, 0, 0}), make_batch(bc, *m, 6, {1, 1, 0, -1}), make_batch(bc, *m, 6, {0}),
          make_batch(bc, *m, 6, {0, 1}),    make_batch(bc, *m, 4, {1, 0}),        make_batch(bc, *m, 6, {1, 0, 0}, true),
          make_batch(bc, *m, 6, {0, 1, 1}), make_batch(bc, *m, 6, {1, 0})};
}
std::vector<Batch> profile_batches(Context& bc, const json& cfg) {
  Context ctx(1, 3);
  auto m = make_model(cfg, ctx);
  return {make_batch(bc, *m, 3, {}), make_batch(bc, *m, 3, {}), make_batch(bc, *m, 3, {}), make_batch(bc, *m, 3, {})};
}

PriorConfig fourier(double weight, int64_t k) {
  PriorConfig p;
  p.type = "fourier", p.weight = weight, p.freq_limit = k, p.attribution_mode = "eval";
  return p;
}

}  // namespace

TEST_SUITE("train") {
TEST_CASE("graph pools (block cache): a pool keeps its blocks from later work, adopts free blocks, gives them back") {
  test::FakeDevice dev;
  cuda::BlockCache bc = dev.cache();
  void* a = bc.alloc(1000, 0);
  bc.free(a, 0);  // a is free in the shared lists
  const int64_t pool = bc.open_pool(0);
  CHECK_THROWS_AS(bc.open_pool(0), Error);  // one capture per device at a time
  CHECK(bc.alloc(1000, 0) == a);            // adopted by the pool: no new device memory
  void* b = bc.alloc(5000, 0);
  CHECK(dev.raw_allocs == 2);
  bc.free(b, 0);                   // freed during the capture: back to the pool
  CHECK(bc.alloc(5000, 0) == b);   // reused within the capture
  bc.free(b, 0);
  bc.close_pool(0);
  void* c = bc.alloc(5000, 0);     // after the capture: not the pool's block
  CHECK(c != b);
  bc.free(a, 0);                   // a pool block freed after the capture stays the pool's
  void* d = bc.alloc(1000, 0);
  CHECK(d != a);
  CHECK(bc.pool_bytes(pool) ==
        static_cast<int64_t>(cuda::allocator_bucket(1000) + cuda::allocator_bucket(5000)));
  bc.release_pool(pool);           // the graph is gone: its blocks are everyone's again
  CHECK(bc.pool_bytes(pool) == 0);
  const int64_t before = dev.raw_allocs;
  void* e = bc.alloc(5000, 0);
  void* f = bc.alloc(1000, 0);
  CHECK(((e == b) && (f == a)));
  CHECK(dev.raw_allocs == before);
  // Out of memory: the shared cached blocks are given back and the allocation retried once.
  bc.free(c, 0);
  dev.fail_next = 1;
  void* g = bc.alloc(1 << 20, 0);
  CHECK(g != nullptr);
  CHECK(dev.raw_frees == 1);
  dev.fail_next = 2;
  CHECK_THROWS_WITH_AS(bc.alloc(1 << 21, 0), doctest::Contains("out of memory"), Error);
  for (void* p : {d, e, f, g}) bc.free(p, 0);
  const cuda::AllocatorStats st = bc.stats(0);
  CHECK(st.bytes_in_use == 0);
  bc.release_shared(0);
  CHECK(dev.held.empty());
  CHECK(bc.stats(0).bytes_cached == 0);
}

TEST_CASE("a tensor used after its Context was destroyed throws instead of running on freed state") {
  auto ctx = std::make_unique<Context>(1, 1);
  Tensor t = Tensor::ones(*ctx, {3});
  Tensor v = reshape(t, {3, 1});  // a view shares the check
  CHECK(sum_all(t).item() == 3.0);
  ctx.reset();
  auto other = std::make_unique<Context>(1, 2);  // a new Context, possibly at the freed one's address
  CHECK_THROWS_WITH_AS(sum_all(t), doctest::Contains("after the Context it was made with was destroyed"), Error);
  CHECK_THROWS_AS(sum_all(v), Error);
}

TEST_CASE("loss weights: the weighted binary loss and Fourier prior equal the counted ones, with their gradients") {
  Context ctx(1, 8);
  const int64_t B = 7, T = 2, L = 40;
  for (const std::vector<double>& lab :
       {std::vector<double>{1, 0, -1, 0, 1, 1, 0}, std::vector<double>{0, 0, -1}, std::vector<double>{1, -1},
        std::vector<double>{-1}}) {
    INFO("labels cycle ", lab.size());
    std::vector<double> y(static_cast<size_t>(B * T));
    for (size_t i = 0; i < y.size(); ++i) y[i] = lab[(i * 5 + i / 3) % lab.size()];
    Tensor yt = Tensor::from_vector(ctx, {B, T}, y);
    Tensor z1 = Tensor::uniform(ctx, {B, T}, -3, 3, DType::F64), z2 = z1.detach();
    z1.set_requires_grad(true), z2.set_requires_grad(true);
    Tensor ref = binary_task_loss(z1, yt);
    auto [pw, nw] = binary_loss_weights(yt, DType::F64);
    Tensor got = binary_task_loss_weighted(z2, pw, nw);
    CHECK(std::abs(got.item() - ref.item()) <= 1e-13 * std::max(1.0, std::abs(ref.item())));
    if (ref.requires_grad()) {
      backward(ref), backward(got);
      CHECK(rel_l2(z2.grad().to_vector<double>(), z1.grad().to_vector<double>()) <= 1e-13);
    }
  }
  CHECK_THROWS_WITH_AS(binary_loss_weights(Tensor::from_vector(ctx, {1, 1}, std::vector<double>{2}), DType::F32),
                       doctest::Contains("not 1, 0 or -1"), Error);
  for (const std::vector<int>& status : {std::vector<int>{1, 0, 1, 1, 0, 0, 1}, std::vector<int>(7, 0),
                                         std::vector<int>(7, 1)}) {
    Tensor a1 = Tensor::uniform(ctx, {B, 4, L}, -1, 1, DType::F64), a2 = a1.detach();
    a1.set_requires_grad(true), a2.set_requires_grad(true);
    Tensor ref = fourier_prior_loss(a1, status, 5, 0.2, 3.0);
    int64_t P = 0;
    for (int s : status) P += s;
    std::vector<double> w(status.size());
    for (size_t i = 0; i < w.size(); ++i) w[i] = status[i] == 1 ? 1.0 / static_cast<double>(P) : 0.0;
    Tensor got = fourier_prior_loss_weighted(a2, Tensor::from_vector(ctx, {B}, w), 5, 0.2, 3.0);
    CHECK(std::abs(got.item() - ref.item()) <= 1e-13);
    if (P > 0) {
      CHECK(ref.item() > 0);
      backward(ref), backward(got);
      CHECK(rel_l2(a2.grad().to_vector<double>(), a1.grad().to_vector<double>()) <= 1e-12);
    } else {
      CHECK(got.item() == 0.0);
    }
  }
}

TEST_CASE("graph step: the fixed-form step (CPU, no capture) follows the ordinary step, skips a non-finite batch") {
  SUBCASE("binary with batch norm, float64") {
    const json cfg = binary_cfg("float64");
    Context bc(1, 4);
    const auto bs = binary_batches(bc, cfg);
    const Run ref = train(cfg, Device{}, 0, bs, fourier(1.0, 9)), got = train(cfg, Device{}, 1, bs, fourier(1.0, 9));
    compare(got, ref, 1e-10);
    CHECK(ref.losses[5].empty());        // the NaN batch was skipped by both
    CHECK(ref.losses[0][1] > 0);         // the prior is in the step
    CHECK(ref.losses[2][1] == 0.0);      // no positive, no prior
    CHECK(got.replays == 0);
  }
  SUBCASE("binary, float32") {
    const json cfg = binary_cfg("float32");
    Context bc(1, 4);
    const auto bs = binary_batches(bc, cfg);
    compare(train(cfg, Device{}, 1, bs, fourier(1.0, 9)), train(cfg, Device{}, 0, bs, fourier(1.0, 9)), 2e-4, 1e-2);
  }
  SUBCASE("BPNet-style profile with controls, float64") {
    const json cfg = profile_cfg("float64");
    Context bc(1, 5);
    const auto bs = profile_batches(bc, cfg);
    const Run ref = train(cfg, Device{}, 0, bs, fourier(50.0, 7));
    // 1e-8: Adam divides by √v, which turns the 1e-16 differences of a reordered sum in gradients that vanish in
    // exact arithmetic (biases in front of the softmax over positions) into ~1e-9 of the parameters.
    compare(train(cfg, Device{}, 1, bs, fourier(50.0, 7)), ref, 1e-8);
    CHECK(ref.losses[0][1] > 0);
  }
  SUBCASE("refusals name the setting") {
    Context ctx(1, 1);
    json drop = binary_cfg("float32");
    drop["conv_drop_rate"] = 0.1;
    auto m = make_model(drop, ctx);
    Adam opt(m->parameters(), {});
    CHECK_THROWS_WITH_AS(GraphStep(*m, opt, fourier(1, 9), 20, false), doctest::Contains("conv_drop_rate"), Error);
    auto m2 = make_model(binary_cfg("float32"), ctx);
    Adam opt2(m2->parameters(), {});
    PriorConfig sm;
    sm.type = "smoothness";
    CHECK_THROWS_WITH_AS(GraphStep(*m2, opt2, sm, 20, false), doctest::Contains("smoothness"), Error);
    CHECK_THROWS_WITH_AS(GraphStep(*m2, opt2, fourier(1, 9), 20, true), doctest::Contains("on a GPU"), Error);
  }
}
}

TEST_SUITE("cuda") {
TEST_CASE("CUDA graph: captured ops replay on new inputs; the pool survives eager work; a synchronising capture fails") {
  LP_SKIP_WITHOUT_GPU();
  const Device gpu = test::kGpu;
  Context ctx(1, 21);
  // Two host inputs made with ctx (a tensor must not outlive the Context it was made with).
  const Tensor h1 = Tensor::uniform(ctx, {1000}, -1, 1), h2 = Tensor::uniform(ctx, {1000}, -1, 1);
  auto host = [&](int which) { return which == 1 ? h1 : h2; };
  Tensor a = host(1).to(gpu);
  (void)add(a, a);  // eager warm-up
  Tensor out;
  {
    cuda::Graph g(0);
    g.begin();
    CHECK(cuda::capturing(0));
    out = mul_scalar(add(a, square(a)), 3.0);
    g.end();
    CHECK_FALSE(cuda::capturing(0));
    CHECK(g.nodes() >= 3);
    CHECK(g.pool_bytes() > 0);
    auto expect = [&](const Tensor& h) { return mul_scalar(add(h, square(h)), 3.0).to_vector<double>(); };
    g.replay();
    CHECK(out.to_vector<double>() == expect(host(1)));
    a.copy_(host(2));  // new input in the captured tensor
    std::vector<Tensor> junk;  // eager work between replays: must not be handed the graph's blocks
    for (int i = 0; i < 8; ++i) junk.push_back(Tensor::full(ctx, {1000}, 1e30, DType::F32, gpu));
    g.replay();
    CHECK(out.to_vector<double>() == expect(host(2)));
    for (const Tensor& j : junk) CHECK(j.to_vector<double>()[999] == doctest::Approx(1e30));
  }
  {  // a read-back inside a capture is refused, the capture is dropped, and eager work goes on
    cuda::Graph g(0);
    g.begin();
    CHECK_THROWS_AS((void)sum_all(a).item(), Error);
  }
  CHECK_FALSE(cuda::capturing(0));
  CHECK(add(a, a).to_vector<double>() == mul_scalar(host(2), 2.0).to_vector<double>());
}

TEST_CASE("CUDA graph step: captured and replayed equals the uncaptured step and the CPU; no allocation in replays") {
  LP_SKIP_WITHOUT_GPU();
  const Device gpu = test::kGpu;
  SUBCASE("binary, float64: replay vs eager on the GPU vs the CPU") {
    const json cfg = binary_cfg("float64");
    Context bc(1, 4);
    const auto bs = binary_batches(bc, cfg);
    const Run cpu = train(cfg, Device{}, 0, bs, fourier(1.0, 9));
    const Run eager = train(cfg, gpu, 1, bs, fourier(1.0, 9));
    std::FILE* log = std::tmpfile();
    REQUIRE(log != nullptr);
    const Run graph = train(cfg, gpu, 2, bs, fourier(1.0, 9), log);
    compare(eager, cpu, 1e-8);
    compare(graph, cpu, 1e-8);
    std::rewind(log);
    std::string said;
    for (int ch; (ch = std::fgetc(log)) != EOF;) said += static_cast<char>(ch);
    std::fclose(log);
    MESSAGE(said);
    // Batch 2 (4 positives) outgrows the first batch's prefix of 2: said once, though later batches do too.
    CHECK(said.find("a batch of 6 rows with 4 scored by the prior, more than the 2 of the first batch") !=
          std::string::npos);
    CHECK(said.find("more than") == said.rfind("more than"));
    MESSAGE("binary: " << graph.captures << " captures, " << graph.replays << " replays");
    // The attributions are taken apart (eval mode), so each batch of 6 is keyed by its prefix A (GraphStep::run):
    // the first has 2 positives (A = 2); batches 3 and 6 (0 and 2 positives) fit that prefix: captured, replayed.
    // Batches 2, 4, 7 and 8 (3 or 4 positives) take every row's attributions (A = 6, a stage of their own) and run
    // eagerly beside the one graph, as does the batch of 4. (Before the prefix every batch of 6 shared the graph: 6.)
    CHECK(graph.captures == 1);
    CHECK(graph.replays == 2);
    // Every row's attributions (no prefix): every batch of 6 shares the graph (eager, captured, then replayed).
    PriorConfig all_rows = fourier(1.0, 9);
    all_rows.scored_rows_only = false;
    const Run graph_all = train(cfg, gpu, 2, bs, all_rows);
    compare(graph_all, cpu, 1e-8);
    CHECK(graph_all.captures == 1);
    CHECK(graph_all.replays == 6);
  }
  SUBCASE("profile, float32") {
    const json cfg = profile_cfg("float32");
    Context bc(1, 5);
    const auto bs = profile_batches(bc, cfg);
    const Run cpu = train(cfg, Device{}, 0, bs, fourier(50.0, 7));
    const Run graph = train(cfg, gpu, 2, bs, fourier(50.0, 7));
    compare(graph, cpu, 1e-4, 1e-2);
    CHECK(graph.replays == 3);
  }
  SUBCASE("replays allocate nothing and run the same kernels") {
    Context ctx(2, 17), bc(1, 9);
    const json cfg = binary_cfg("float32");
    auto m = make_model(cfg, ctx);
    m->to(gpu);
    Adam opt(m->parameters(), {});
    GraphStep gs(*m, opt, fourier(1.0, 9), 20.0, true);
    for (int s = 0; s < 2; ++s) gs.run(make_batch(bc, *m, 8, {1, 0}));
    REQUIRE(gs.captures() == 1);
    MESSAGE("graph: " << gs.graph_nodes() << " nodes, pool " << gs.graph_pool_bytes() << " bytes");
    CHECK(gs.graph_nodes() > 50);
    const int64_t mallocs = cuda::allocator_stats(0).device_mallocs;
    for (int s = 0; s < 5; ++s) CHECK(gs.run(make_batch(bc, *m, 8, {1, 0})).replayed);
    CHECK(cuda::allocator_stats(0).device_mallocs == mallocs);
  }
}
}
