// The DeepLIFT tape walk. Gradients are kept for both halves of the [x; r] batch, as captum does,
// so that max-pool can combine the input's and the reference's routing; attributions use the first.
// Test: build/tests/lowpass_tests -ts=attr
#include "models/attr/deeplift.h"

#include <set>
#include <unordered_map>

#include "engine/ops/dispatch.h"
#include "kernels/cpu/nn.h"

namespace lowpass::attr {

namespace {

// The rescale rule on both halves (kernels/cpu/nn.h deeplift_rescale, on the tensors' device): num/Δin where
// |Δin| >= eps, else the regular gradient. ReLU: out = the op's output and num = g (2P, ...), each half's g·Δout/Δin;
// max-pool: out undefined and num = U (P, ...).
Tensor rescale(const Tensor& in, const Tensor& num, const Tensor& out, const Tensor& regular, double eps) {
  Tensor res = empty_like(in);
  LP_ON_DEVICE(in, cpu::deeplift_rescale(in, num, out, regular, eps, res),
               cuda::deeplift_rescale(in, num, out, regular, eps, res));
  return res;
}

const std::set<std::string>& nonlinear_without_rule() {
  static const std::set<std::string> s = {"exp",      "log",     "log1p",       "sigmoid",     "softplus",
                                          "sqrt",     "rsqrt",   "pow_scalar",  "square",      "abs",
                                          "lgamma",   "digamma", "trigamma",    "log_softmax", "softmax",
                                          "batch_norm", "rfft_magnitude", "max_pool1d_gather", "relu_mask"};
  return s;
}

// The model's outputs at xx (inputs and references stacked) with the tape's values kept: the rules read each ReLU's
// input and output, and a max-pool's output, from it.
ModelOutput forward_on_tape(Model& model, const Tensor& xx, const Tensor& cc) {
  EnableGradGuard on(true);
  KeepGraphValues keep;
  return model.forward(xx, cc, /*training=*/false);
}

// A product of two input-dependent tensors has no DeepLIFT rule here.
void check_no_product(const std::string& name, const std::vector<bool>& needs) {
  int n_needed = 0;
  for (bool b : needs) n_needed += b;
  LP_CHECK(!((name == "mul" || name == "div" || name == "matmul") && n_needed > 1), "deeplift: op '", name,
           "' multiplies two input-dependent tensors; no DeepLIFT rule for products");
}

// grad()'s walk over the tape (engine/autograd.h, backward_walk) from y with `seed`, DeepLIFT's `rule` for the
// non-linear ops: the gradient that reaches xx.
Tensor walk_to_input(const Tensor& y, const Tensor& seed, const Tensor& xx, const RuleOverride& rule) {
  NoGradGuard ng;
  std::unordered_map<const void*, Tensor> grads =
      backward_walk({y}, {seed}, {vertex_of(xx.impl())}, /*create_graph=*/false, rule);
  auto git = grads.find(vertex_of(xx.impl()));
  LP_CHECK(git != grads.end(), "deeplift: no gradient reached the input");
  return git->second;
}

}  // namespace

DeepLiftOutput deeplift_multipliers(Model& model, const Tensor& x, const Tensor& r, const Tensor& control,
                                    const Target& target, double eps) {
  LP_CHECK(x.defined() && x.dim() == 3 && x.shape() == r.shape(), "deeplift: input ",
           x.defined() ? shape_str(x.shape()) : "undefined", " and reference ", shape_str(r.shape()),
           " must both be (P, 4, L)");
  const int64_t P = x.size(0);
  Tensor xx = concat({x.detach(), r.detach()}, 0).clone();  // (2P, 4, L)
  xx.set_requires_grad(true);
  Tensor cc = control.defined() ? concat({control.detach(), control.detach()}, 0) : Tensor();
  const ModelOutput out = forward_on_tape(model, xx, cc);
  auto [y, seed2] = target_seed(out, target);  // (2P, ...)
  // The seed is the input's (first half) for both halves: f_x(r) uses x's seed.
  Tensor seed = concat({slice(seed2, 0, 0, P), slice(seed2, 0, 0, P)}, 0).clone();
  DeepLiftOutput res;
  {
    auto v = target_value(y, seed);
    res.f_x.assign(v.begin(), v.begin() + P);
    res.f_r.assign(v.begin() + P, v.end());
  }
  LP_CHECK(y.requires_grad(), "deeplift: the target does not depend on the input");

  // DeepLIFT's rules for ReLU and max-pool.
  auto rule = [&](Node& node, const Tensor& out_t, const Tensor& g,
                  const std::vector<bool>& needs) -> std::optional<std::vector<Tensor>> {
    const std::string& name = node.name;
    LP_CHECK(!nonlinear_without_rule().count(name), "deeplift: the model uses op '", name,
             "' on the input's path, which has no DeepLIFT rule here (eval-mode models with ReLU and max-pool only)");
    check_no_product(name, needs);
    if (name == "relu") {  // g · Δout/Δin per half
      const Tensor& in = node.inputs[0];
      return std::vector<Tensor>{rescale(in, g, out_t, relu_mask(g, in), eps)};
    }
    if (name == "max_pool1d") {
      const Tensor& in = node.inputs[0];
      // G = [g_x·(max(y, y0) − y0); g_r·(y − max(y, y0))] routed by each half's own argmax.
      Tensor G = empty_like(out_t);
      LP_ON_DEVICE(out_t, cpu::deeplift_pool_seed(out_t, g, G), cuda::deeplift_pool_seed(out_t, g, G));
      Tensor routed = node.backward(G, out_t, needs)[0];  // (2P, C, L)
      const int64_t half = routed.size(0) / 2;
      Tensor U = add(slice(routed, 0, 0, half), slice(routed, 0, half, half));  // U / Δin for both halves
      Tensor regular = node.backward(g, out_t, needs)[0];
      return std::vector<Tensor>{rescale(in, U, Tensor(), regular, eps)};
    }
    return std::nullopt;  // linear ops: their own rule
  };
  res.multipliers = slice(walk_to_input(y, seed, xx, rule), 0, 0, P).clone();
  return res;
}

DeepLiftOutput deeplift_multipliers_shared(Model& model, const Tensor& xu, const Tensor& r,
                                           const std::vector<int64_t>& owner, const Tensor& control_u,
                                           const Target& target, double eps) {
  const int64_t U = xu.defined() ? xu.size(0) : 0, P = r.defined() ? r.size(0) : 0;
  LP_CHECK(U >= 1 && P >= 1 && xu.dim() == 3 && r.dim() == 3 && xu.size(1) == r.size(1) && xu.size(2) == r.size(2) &&
               static_cast<int64_t>(owner.size()) == P && xu.is_cpu() && r.is_cpu(),
           "deeplift (shared inputs): ", U, " inputs and ", P, " references (", P, " owners) on the CPU, as (n, 4, L)");
  for (int64_t o : owner) LP_CHECK(o >= 0 && o < U, "deeplift (shared inputs): owner ", o, " outside 0..", U - 1);
  Tensor xx = concat({xu.detach(), r.detach()}, 0).clone();  // (U + P, 4, L)
  xx.set_requires_grad(true);
  Tensor cc = control_u.defined() ? concat({control_u.detach(), index_select(control_u.detach(), 0, owner)}, 0)
                                  : Tensor();
  const ModelOutput out = forward_on_tape(model, xx, cc);
  auto [y, seed_all] = target_seed(out, target);  // (U + P, ...)
  const Tensor seed_x = index_select(slice(seed_all, 0, 0, U), 0, owner);  // each pair's input's seed
  DeepLiftOutput res;
  {
    const auto fu = target_value(slice(y, 0, 0, U), slice(seed_all, 0, 0, U));
    res.f_r = target_value(slice(y, 0, U, P), seed_x);
    for (int64_t j = 0; j < P; ++j) res.f_x.push_back(fu[static_cast<size_t>(owner[static_cast<size_t>(j)])]);
  }
  LP_CHECK(y.requires_grad(), "deeplift: the target does not depend on the input");
  // Only the input half's gradient of each pair is carried, on its reference's row; the inputs' rows carry zeros.
  Shape zs = seed_all.shape();
  zs[0] = U;
  Tensor seed = concat({Tensor::zeros(seed_all.ctx(), zs, seed_all.dtype(), seed_all.device()), seed_x}, 0);
  auto rule = [&](Node& node, const Tensor& out_t, const Tensor& g,
                  const std::vector<bool>& needs) -> std::optional<std::vector<Tensor>> {
    const std::string& name = node.name;
    LP_CHECK(!nonlinear_without_rule().count(name) && name != "max_pool1d", "deeplift (shared inputs): the model uses ",
             "op '", name, "' on the input's path; this form takes ReLU models only (max-pool needs both halves)");
    check_no_product(name, needs);
    if (name == "relu") {
      Tensor res_t = empty_like(node.inputs[0]);
      cpu::deeplift_rescale_owned(node.inputs[0], g, out_t, owner, eps, res_t);
      return std::vector<Tensor>{res_t};
    }
    return std::nullopt;  // linear ops: their own rule
  };
  res.multipliers = slice(walk_to_input(y, seed, xx, rule), 0, U, P).clone();
  return res;
}

}  // namespace lowpass::attr
