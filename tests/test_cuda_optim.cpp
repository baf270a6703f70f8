// CUDA backend, optimiser side: the parameter/gradient arenas on the GPU (gradients into their slots, whole-block
// Adam/SGD) and live optimiser steps (device-side scalars and skip flag), each against the CPU's.
// Run: build/tests/lowpass_tests -ts=cuda (skips with a message when no GPU is usable).
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "engine/optim.h"
#include "kernels/cuda/runtime.h"
#include "tests/cuda_test.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;

namespace {

// Σ_i Σ p_i³: its gradients 3p² arrive in the optimiser's slots through backward().
Tensor cube_sum(const NamedTensors& ps) {
  Tensor l;
  for (const auto& [k, p] : ps) {
    Tensor a = sum_all(mul(square(p), p));
    l = l.defined() ? add(l, a) : a;
  }
  return l;
}

// The same float32 parameters of awkward sizes on the CPU (pc) and the GPU (pg), and an optimiser over each (lr
// 0.01): kind 0 Adam, 1 AMSGrad with weight decay, 2 SGD with Nesterov momentum.
struct TwinOptimisers {
  NamedTensors pc, pg;
  std::unique_ptr<Optimizer> oc, og;
};
TwinOptimisers twin_optimisers(Context& ctx, int kind) {
  TwinOptimisers t;
  for (int64_t n : {35, 1, 64, 1000, 7}) {
    Tensor p = Tensor::uniform(ctx, {n}, -1, 1, DType::F32);
    Tensor q = p.to(kGpu);
    p.set_requires_grad(true), q.set_requires_grad(true);
    t.pc.emplace_back("p" + std::to_string(n), p), t.pg.emplace_back("p" + std::to_string(n), q);
  }
  if (kind < 2) {
    AdamOptions o;
    o.lr = 0.01;
    if (kind == 1) o.amsgrad = true, o.weight_decay = 0.01;
    t.oc = std::make_unique<Adam>(t.pc, o), t.og = std::make_unique<Adam>(t.pg, o);
  } else {
    SgdOptions o;
    o.lr = 0.01, o.momentum = 0.9, o.nesterov = true;
    t.oc = std::make_unique<Sgd>(t.pc, o), t.og = std::make_unique<Sgd>(t.pg, o);
  }
  return t;
}

}  // namespace

TEST_SUITE("cuda") {

TEST_CASE("arena on the GPU: gradients into >96 slots (copy_many), and whole-block Adam/SGD equal the CPU's arena steps") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 77);
  // 150 parameters of awkward sizes: backward() writes their gradients into the slots with copy_many, in
  // several launches of 96 segments; float32 and float64.
  for (DType t : {DType::F32, DType::F64}) {
    NamedTensors pc, pg;
    for (int i = 0; i < 150; ++i) {
      Tensor a = Tensor::uniform(ctx, {1 + (i * 37) % 301}, -1, 1, t);
      Tensor b = a.to(kGpu);
      a.set_requires_grad(true), b.set_requires_grad(true);
      pc.emplace_back("p" + std::to_string(i), a), pg.emplace_back("p" + std::to_string(i), b);
    }
    Sgd oc(pc, SgdOptions{}), og(pg, SgdOptions{});
    REQUIRE(og.has_arena());
    backward(cube_sum(pc)), backward(cube_sum(pg));
    for (size_t i = 0; i < pc.size(); ++i) {
      INFO(dtype_name(t), " parameter ", i);
      CHECK(pg[i].second.grad().same(Tensor(pg[i].second.impl()->grad_slot)));
      CHECK(rel(pg[i].second.grad(), pc[i].second.grad()) <= (t == DType::F32 ? 1e-6 : 1e-14));
    }
  }
  // The same parameters and gradients on both devices; arena Adam (AMSGrad + decay) and SGD (Nesterov).
  for (int kind : {1, 2}) {
    INFO((kind == 1 ? "adam" : "sgd"));
    auto [pc, pg, oc, og] = twin_optimisers(ctx, kind);
    REQUIRE(og->has_arena());
    for (int step = 0; step < 4; ++step) {
      oc->zero_grad(), og->zero_grad();
      backward(cube_sum(pc)), backward(cube_sum(pg));
      CHECK(og->nonfinite_grad().empty());
      oc->step(), og->step();
      CHECK(og->last_step_fused());
      for (size_t i = 0; i < pc.size(); ++i) CHECK(rel(pg[i].second, pc[i].second) <= 1e-6);
    }
  }
}

TEST_CASE("live optimiser steps on the GPU (device-side scalars and skip flag) equal the CPU's live steps") {
  LP_SKIP_WITHOUT_GPU();
  Context ctx(2, 78);
  for (int kind = 0; kind < 3; ++kind) {
    INFO((kind == 0 ? "adam" : kind == 1 ? "amsgrad+decay" : "sgd nesterov"));
    auto [pc, pg, oc, og] = twin_optimisers(ctx, kind);
    for (int step = 0; step < 5; ++step) {
      const bool poison = step == 2;  // a non-finite loss: both skip, nothing counts
      double skip[2];
      for (int dev = 0; dev < 2; ++dev) {
        Optimizer& o = dev == 0 ? *oc : *og;
        NamedTensors& ps = dev == 0 ? pc : pg;
        o.prepare_live_step();
        o.zero_grad();
        Tensor l = cube_sum(ps);
        backward(l);
        o.flag_nonfinite(poison ? mul_scalar(l.detach(), std::numeric_limits<double>::quiet_NaN()) : l);
        o.launch_live_step();
        skip[dev] = o.live_scalars().to_vector<double>()[2];
        if (skip[dev] == 0.0) o.commit_live_step();
      }
      CHECK(std::isnan(skip[1]) == poison);
      CHECK(std::isnan(skip[0]) == poison);
      for (size_t i = 0; i < pc.size(); ++i) CHECK(rel(pg[i].second, pc[i].second) <= 1e-6);
    }
  }
}

}  // TEST_SUITE
