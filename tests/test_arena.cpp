// Parameter/gradient/state arenas (engine/arena.h): an optimiser over blocks gives exactly the numbers of the
// per-tensor one (Adam, AMSGrad with weight decay, SGD with momentum and Nesterov; float32 and float64), falls back
// per tensor when a parameter has no gradient, saves and resumes across arena/no-arena, backward() fills the
// slots and accumulates into them, the non-finite check names the parameter, and a model trained through it is
// unchanged. Run: build-dev/tests/lowpass_tests -ts=optim -tc='*arena*'
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <memory>

#include "engine/autograd.h"
#include "engine/optim.h"
#include "models/arch/model.h"
#include "models/loss/objective.h"

using namespace lowpass;
using nlohmann::json;

namespace {

// Parameters of awkward sizes (none a multiple of the arena's alignment except one), the same values for a seed.
NamedTensors make_params(Context& ctx, DType t) {
  NamedTensors ps;
  const std::vector<Shape> shapes = {{7, 3, 5}, {1}, {64}, {33, 2}, {1000}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor p = Tensor::uniform(ctx, shapes[i], -1, 1, t);
    p.set_requires_grad(true);
    ps.emplace_back("p" + std::to_string(i), p);
  }
  return ps;
}

// loss = Σ_i Σ c_i·p_i² + sin-free cubic term: gradients depend on the parameters, so trajectories differ per step.
Tensor loss_of(const NamedTensors& ps, const std::vector<Tensor>& cs, bool skip_last) {
  Tensor l;
  for (size_t i = 0; i < ps.size(); ++i) {
    if (skip_last && i + 1 == ps.size()) continue;
    Tensor p = ps[i].second;
    Tensor term = sum_all(add(mul(square(p), cs[i]), mul_scalar(mul(square(p), p), 0.1)));
    l = l.defined() ? add(l, term) : term;
  }
  return l;
}

std::unique_ptr<Optimizer> make(int kind, NamedTensors ps, bool arena) {
  if (kind <= 1) {
    AdamOptions o;
    o.lr = 0.01, o.arena = arena;
    if (kind == 1) o.amsgrad = true, o.weight_decay = 0.01;
    return std::make_unique<Adam>(std::move(ps), o);
  }
  SgdOptions s;
  s.lr = 0.01, s.arena = arena;
  if (kind == 3) s.momentum = 0.9, s.nesterov = true;
  return std::make_unique<Sgd>(std::move(ps), s);
}

std::vector<double> flat_values(const NamedTensors& ps) {
  std::vector<double> r;
  for (const auto& [n, p] : ps) {
    auto v = p.to_vector<double>();
    r.insert(r.end(), v.begin(), v.end());
  }
  return r;
}

// `steps` steps of optimiser `kind`; the last parameter gets no gradient on the steps listed in `skip`.
// Returns the parameters' values after each step, and whether each step ran fused.
std::pair<std::vector<std::vector<double>>, std::vector<bool>> run(int kind, DType t, bool arena, int steps,
                                                                   std::vector<int> skip = {}) {
  Context ctx(2, 5);
  NamedTensors ps = make_params(ctx, t);
  std::vector<Tensor> cs;
  for (auto& [n, p] : ps) cs.push_back(Tensor::uniform(ctx, p.shape(), 0.5, 2, t));
  auto opt = make(kind, ps, arena);
  CHECK(opt->has_arena() == arena);
  std::vector<std::vector<double>> traj;
  std::vector<bool> fused;
  for (int s = 0; s < steps; ++s) {
    opt->zero_grad();
    const bool sk = std::find(skip.begin(), skip.end(), s) != skip.end();
    backward(loss_of(ps, cs, sk));
    opt->step();
    traj.push_back(flat_values(ps));
    fused.push_back(opt->last_step_fused());
  }
  return {traj, fused};
}

}  // namespace

TEST_SUITE("optim") {
TEST_CASE("arena: whole-block updates equal per-tensor updates bit for bit (Adam, AMSGrad+decay, SGD, Nesterov)") {
  for (DType t : {DType::F32, DType::F64})
    for (int kind = 0; kind < 4; ++kind) {
      INFO("optimizer kind ", kind, ", ", dtype_name(t));
      auto [ref, ref_fused] = run(kind, t, false, 5);
      auto [got, got_fused] = run(kind, t, true, 5);
      for (bool f : ref_fused) CHECK_FALSE(f);
      for (bool f : got_fused) CHECK(f);
      REQUIRE(got.size() == ref.size());
      for (size_t s = 0; s < ref.size(); ++s) CHECK(got[s] == ref[s]);
      CHECK(ref.front() != ref.back());  // the parameters really moved
    }
}

TEST_CASE("arena: a live step (prepare, flag, launch, commit) equals step() bit for bit; a non-finite loss skips it") {
  for (DType t : {DType::F32, DType::F64})
    for (int kind = 0; kind < 4; ++kind) {
      INFO("optimizer kind ", kind, ", ", dtype_name(t));
      Context ca(2, 5), cb(2, 5);
      NamedTensors pa = make_params(ca, t), pb = make_params(cb, t);
      std::vector<Tensor> cs;
      for (auto& [n, p] : pa) cs.push_back(Tensor::uniform(ca, p.shape(), 0.5, 2, t));
      auto oa = make(kind, pa, true), ob = make(kind, pb, true);
      REQUIRE(ob->can_step_live());
      auto live_step = [&](bool poison) {
        ob->prepare_live_step();
        ob->zero_grad();
        Tensor l = loss_of(pb, cs, false);
        backward(l);
        Tensor flagged = poison ? mul_scalar(l.detach(), std::numeric_limits<double>::quiet_NaN()) : l;
        ob->flag_nonfinite(flagged);
        ob->launch_live_step();
        const double skip = ob->live_scalars().to_vector<double>()[2];
        if (skip == 0.0) ob->commit_live_step();
        return skip;
      };
      for (int s = 0; s < 6; ++s) {
        if (s == 3) {  // a step whose loss is not finite: nothing moves, nothing counts
          const std::vector<double> before = flat_values(pb);
          CHECK(std::isnan(live_step(true)));
          CHECK(flat_values(pb) == before);
        }
        oa->zero_grad();
        backward(loss_of(pa, cs, false));
        oa->step();
        CHECK(live_step(false) == 0.0);
        CHECK(flat_values(pb) == flat_values(pa));
      }
      CHECK(ob->state().size() == oa->state().size());
      for (size_t i = 0; i < oa->state().size(); ++i)
        CHECK(ob->state()[i].second.to_vector<double>() == oa->state()[i].second.to_vector<double>());
    }
  // A gradient that is not finite skips the step too, and the check names nothing when all is finite.
  Context ctx(1, 3);
  NamedTensors ps = make_params(ctx, DType::F32);
  Adam opt(ps, {});
  opt.prepare_live_step();
  backward(sum_all(mul_scalar(ps[2].second, std::numeric_limits<double>::infinity())));
  for (size_t i = 0; i < ps.size(); ++i)
    if (!ps[i].second.grad().defined()) backward(sum_all(mul_scalar(ps[i].second, 0.0)));
  const std::vector<double> before = flat_values(ps);
  opt.flag_nonfinite(Tensor::zeros(ctx, {}, DType::F32));
  opt.launch_live_step();
  CHECK(std::isnan(opt.live_scalars().to_vector<double>()[2]));
  CHECK(flat_values(ps) == before);
  CHECK(opt.nonfinite_grad() == "p2");
}

TEST_CASE("arena: a parameter without a gradient falls back per tensor, untouched, and the steps stay equal") {
  for (int kind : {0, 3}) {
    INFO("optimizer kind ", kind);
    // Step 1 leaves the last parameter out: it stays put and its step count falls behind, so Adam runs per
    // tensor from then on; SGD's momentum buffers differ in age until ... they never catch up, also per tensor.
    auto [ref, rf] = run(kind, DType::F32, false, 4, {1});
    auto [got, gf] = run(kind, DType::F32, true, 4, {1});
    CHECK(gf[0]);
    CHECK_FALSE(gf[1]);
    for (size_t s = 0; s < ref.size(); ++s) CHECK(got[s] == ref[s]);
    const size_t last = got[0].size() - 1000;  // the last parameter's first element
    CHECK(got[1][last] == got[0][last]);      // not moved on the step without its gradient
  }
  // Skipped on the very first step: Adam's late parameter starts its own count (per tensor from then on).
  auto [ref, rf] = run(0, DType::F64, false, 3, {0});
  auto [got, gf] = run(0, DType::F64, true, 3, {0});
  for (size_t s = 0; s < ref.size(); ++s) CHECK(got[s] == ref[s]);
}

TEST_CASE("arena: state saved from blocks resumes in a per-tensor optimiser and the reverse, bit for bit") {
  for (int kind : {1, 3})
    for (int dir = 0; dir < 2; ++dir) {
      INFO("optimizer kind ", kind, ", first half ", dir == 0 ? "arena" : "per tensor");
      auto [ref, rf] = run(kind, DType::F32, dir == 1, 6);
      Context ctx(2, 5);
      NamedTensors ps = make_params(ctx, DType::F32);
      std::vector<Tensor> cs;
      for (auto& [n, p] : ps) cs.push_back(Tensor::uniform(ctx, p.shape(), 0.5, 2, DType::F32));
      auto opt = make(kind, ps, dir == 0);
      for (int s = 0; s < 6; ++s) {
        if (s == 3) {  // a fresh optimiser of the other kind, state copied through host tensors (as a checkpoint)
          std::map<std::string, Tensor> st;
          for (auto& [n, v] : opt->state()) st[n] = v.clone();
          opt.reset();
          opt = make(kind, ps, dir == 1);
          opt->load_state(st);
        }
        opt->zero_grad();
        backward(loss_of(ps, cs, false));
        opt->step();
        CHECK(flat_values(ps) == ref[static_cast<size_t>(s)]);
      }
    }
}

TEST_CASE("arena: backward fills the gradient slots, accumulates into them, and the slots go with the optimiser") {
  Context ctx(1, 3);
  NamedTensors ps = make_params(ctx, DType::F64);
  std::vector<Tensor> cs;
  for (auto& [n, p] : ps) cs.push_back(Tensor::uniform(ctx, p.shape(), 0.5, 2, DType::F64));
  // Reference gradients without slots.
  backward(loss_of(ps, cs, false));
  std::vector<std::vector<double>> g1;
  for (auto& [n, p] : ps) g1.push_back(p.grad().to_vector<double>()), p.zero_grad();
  {
    Adam opt(ps, AdamOptions{});
    REQUIRE(opt.has_arena());
    backward(loss_of(ps, cs, false));
    for (size_t i = 0; i < ps.size(); ++i) {
      CHECK(ps[i].second.impl()->grad_slot != nullptr);
      CHECK(ps[i].second.grad().same(Tensor(ps[i].second.impl()->grad_slot)));
      CHECK(ps[i].second.grad().to_vector<double>() == g1[i]);
    }
    backward(loss_of(ps, cs, false));  // accumulates in place
    for (size_t i = 0; i < ps.size(); ++i) {
      CHECK(ps[i].second.grad().same(Tensor(ps[i].second.impl()->grad_slot)));
      auto g2 = ps[i].second.grad().to_vector<double>();
      for (size_t j = 0; j < g2.size(); ++j) CHECK(g2[j] == doctest::Approx(2 * g1[i][j]).epsilon(1e-15));
    }
    CHECK(opt.nonfinite_grad().empty());
    // A NaN in one parameter's gradient is found and named, through the block and per tensor.
    std::vector<double> bad = ps[3].second.grad().to_vector<double>();
    bad[5] = std::numeric_limits<double>::quiet_NaN();
    ps[3].second.grad().copy_(Tensor::from_vector(ctx, ps[3].second.shape(), bad));
    CHECK(opt.nonfinite_grad() == "p3");
    ps[0].second.zero_grad();  // not all in their slots: the per-tensor scan answers
    CHECK(opt.nonfinite_grad() == "p3");
  }
  for (auto& [n, p] : ps) CHECK(p.impl()->grad_slot == nullptr);  // taken back by the optimiser's destructor
}

TEST_CASE("arena: create_graph backward keeps the graph when it accumulates; tied parameters get no arena") {
  Context ctx(1, 3);
  Tensor p = Tensor::uniform(ctx, {5}, -1, 1, DType::F64);
  p.set_requires_grad(true);
  backward(sum_all(mul(square(p), p)), {}, true);
  backward(sum_all(mul(square(p), p)), {}, true);
  REQUIRE(p.grad().defined());
  CHECK(p.grad().requires_grad());  // 6p² accumulated with its graph: d/dp Σ 6p² = 12p
  Tensor gg = grad({sum_all(p.grad())}, {p})[0];
  auto pv = p.to_vector<double>(), gv = gg.to_vector<double>();
  for (size_t i = 0; i < pv.size(); ++i) CHECK(gv[i] == doctest::Approx(12 * pv[i]));
  p.zero_grad();  // the gradient's graph references p: a cycle until .grad is dropped (as in PyTorch)
  Adam tied({{"a", p}, {"b", p}}, AdamOptions{});
  CHECK_FALSE(tied.has_arena());
  Tensor q = Tensor::uniform(ctx, {5}, -1, 1, DType::F32);
  Adam mixed({{"a", p}, {"q", q}}, AdamOptions{});  // float64 and float32: no common block
  CHECK_FALSE(mixed.has_arena());
}

TEST_CASE("arena: a BPNet-style model's training step with the prior is the same with and without the arena") {
  json cfg = {{"type", "profile"}, {"input_length", 61}, {"num_tasks", 1}, {"num_strands", 2},
              {"dil_conv_filter_sizes", {5, 3, 3}}, {"dil_conv_dilations", {1, 2, 4}}, {"dil_conv_depths", 6},
              {"prof_conv_kernel_size", 9}};
  PriorConfig prior;
  prior.type = "fourier", prior.weight = 1.0;
  std::vector<std::vector<double>> results[2];
  for (int arena = 0; arena < 2; ++arena) {
    Context ctx(2, 11), bc(2, 12);
    auto m = make_model(cfg, ctx);
    AdamOptions o;
    o.lr = 1e-3, o.arena = arena == 1;
    Adam opt(m->parameters(), o);
    for (int s = 0; s < 3; ++s) {
      Batch b;
      const int64_t B = 4, L = m->input_length(), O = m->output_length();
      std::vector<double> x(static_cast<size_t>(B * 4 * L), 0.0);
      for (int64_t i = 0; i < B * L; ++i) x[static_cast<size_t>(((i / L) * 4 + bc.rng().randint(0, 4)) * L + i % L)] = 1;
      b.x = Tensor::from_vector(bc, {B, 4, L}, x).to(DType::F32);
      b.y = Tensor::uniform(bc, {B, 1, 2, O}, 0, 5, DType::F32);  // counts
      b.control = Tensor::uniform(bc, {B, 1, 2, O}, 0, 2, DType::F32);
      b.status = {1, 1, 0, 1};
      opt.zero_grad();
      Losses l = compute_losses(*m, b, prior, true, 10.0);
      backward(l.total);
      CHECK(opt.nonfinite_grad().empty());
      opt.step();
      CHECK(opt.last_step_fused() == (arena == 1));
      results[arena].push_back({l.task.item(), l.prior.item()});
    }
    for (auto& [n, p] : m->parameters()) results[arena].push_back(p.to_vector<double>());
  }
  REQUIRE(results[0].size() == results[1].size());
  for (size_t i = 0; i < results[0].size(); ++i) CHECK(results[0][i] == results[1][i]);
  CHECK(results[0][0][1] > 0);  // the prior is in the step
}
}
