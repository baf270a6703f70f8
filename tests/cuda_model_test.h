// Shared by the CUDA model-level test files (tests/test_cuda_train.cpp, tests/test_cuda_attr.cpp): random one-hot
// batches and the check that float32 test data sits off a ReLU kink.
#pragma once
#include <algorithm>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "models/arch/model.h"
#include "models/loss/objective.h"
#include "tests/cuda_test.h"

namespace lowpass::test {

// Random one-hot (B, 4, L) with a few all-zero (N) columns, as genome batches have.
inline Tensor random_onehot(Context& ctx, int64_t B, int64_t L, DType t) {
  std::vector<double> v(static_cast<size_t>(B * 4 * L), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i) {
      if (ctx.rng().uniform() < 0.01) continue;  // N
      v[static_cast<size_t>((b * 4 + ctx.rng().randint(0, 4)) * L + i)] = 1.0;
    }
  Tensor x = Tensor::from_vector(ctx, {B, 4, L}, v);
  return t == DType::F64 ? x : x.to(t);
}

// How far the CPU's float32 eval-mode attributions of model m (a CPU model built from model_cfg) on x move when every
// parameter is perturbed by about one float32 ulp (4 random perturbations of copies of m's state, the largest
// ‖Δ‖/‖a‖). A float32 comparison of two implementations that sum in different orders (CPU vs GPU conv routes) is
// only meaningful where this is small: a ReLU whose input lies within rounding distance of zero switches under any
// reordering, which moves gradients by ~1e-4 (measured: seed 45 of the one-task BPNet case, 1.2e-4, equal to what
// the GPU's cuBLAS route gave).
inline double kink_sensitivity(Model& m, const nlohmann::json& model_cfg, const Tensor& x, const Tensor& control) {
  auto attributions = [&](Model& mm) {
    Tensor xi = x.detach();
    xi.set_requires_grad(true);
    return input_attributions(mm.forward(xi, control, false), xi, false);
  };
  const Tensor a0 = attributions(m);
  std::map<std::string, Tensor> sd;
  for (auto& [k, v] : m.state_dict()) sd[k] = v;
  double worst = 0;
  for (uint64_t trial = 0; trial < 4; ++trial) {
    Context ct(2, 0), rc(2, 1000 + trial);
    auto mt = make_model(model_cfg, ct);
    mt->load_state_dict(sd);  // m's weights and running statistics, copied
    for (auto& [k, p] : mt->parameters()) {
      NoGradGuard ng;
      Tensor u = Tensor::uniform(rc, p.shape(), -1.2e-7, 1.2e-7, p.dtype());
      p.copy_(add(p, mul(p, u)));
    }
    worst = std::max(worst, rel(attributions(*mt), a0));
  }
  return worst;
}

}  // namespace lowpass::test
