// The DeepLIFT tape walk. Gradients are kept for both halves of the [x; r] batch, as captum does,
// so that max-pool can combine the input's and the reference's routing; attributions use the first.
// Test: build-attr/tests/lowpass_tests -ts=attr
#include "models/attr/deeplift.h"

#include <cmath>
#include <cstring>
#include <set>
#include <unordered_map>

namespace lowpass::attr {

namespace {

// dst = where(|Δin| < eps, regular, num / Δin) elementwise per half, with Δ = first − second half.
// in (2P, ...); num and regular (2P, ...); result (2P, ...).
Tensor rescale(const Tensor& in, const Tensor& num_over_delta_src, const Tensor& regular, double eps,
               bool num_is_delta_out_times_g, const Tensor& out, const Tensor& g) {
  Tensor res = empty_like(in);
  const int64_t n2 = in.numel(), n = n2 / 2;
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    const T* pi = in.data<T>();
    const T* pr = regular.data<T>();
    T* pd = res.data<T>();
    if (num_is_delta_out_times_g) {  // ReLU: g · Δout/Δin
      const T* po = out.data<T>();
      const T* pg = g.data<T>();
      for (int64_t i = 0; i < n; ++i) {
        double din = double(pi[i]) - double(pi[i + n]);
        double dout = double(po[i]) - double(po[i + n]);
        bool small = std::fabs(din) < eps;
        pd[i] = small ? pr[i] : T(double(pg[i]) * dout / din);
        pd[i + n] = small ? pr[i + n] : T(double(pg[i + n]) * dout / din);
      }
    } else {  // max-pool: U / Δin with U already summed over both routings
      const T* pu = num_over_delta_src.data<T>();
      for (int64_t i = 0; i < n; ++i) {
        double din = double(pi[i]) - double(pi[i + n]);
        bool small = std::fabs(din) < eps;
        T v = T(double(pu[i]) / din);
        pd[i] = small ? pr[i] : v;
        pd[i + n] = small ? pr[i + n] : v;
      }
    }
  });
  return res;
}

const std::set<std::string>& nonlinear_without_rule() {
  static const std::set<std::string> s = {"exp",      "log",     "log1p",       "sigmoid",     "softplus",
                                          "sqrt",     "rsqrt",   "pow_scalar",  "square",      "abs",
                                          "lgamma",   "digamma", "trigamma",    "log_softmax", "softmax",
                                          "batch_norm", "rfft_magnitude", "max_pool1d_gather", "relu_mask"};
  return s;
}

}  // namespace

DeepLiftOutput deeplift_multipliers(Model& model, const Tensor& x, const Tensor& r, const Tensor& control,
                                    const Target& target, double eps) {
  LP_CHECK(x.defined() && x.dim() == 3 && x.shape() == r.shape(), "deeplift: input ",
           x.defined() ? shape_str(x.shape()) : "undefined", " and reference ", shape_str(r.shape()),
           " must both be (P, 4, L)");
  LP_CHECK(x.is_cpu(), "deeplift: runs on the CPU (got ", x.describe(), ")");
  const int64_t P = x.size(0);
  Tensor xx = concat({x.detach(), r.detach()}, 0).clone();  // (2P, 4, L)
  xx.set_requires_grad(true);
  Tensor cc = control.defined() ? concat({control.detach(), control.detach()}, 0) : Tensor();
  ModelOutput out;
  {
    EnableGradGuard on(true);
    KeepGraphValues keep;  // the rules below read a ReLU's input and a max-pool's output from the tape
    out = model.forward(xx, cc, /*training=*/false);
  }
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

  // grad()'s walk over the tape (engine/autograd.h, backward_walk) with DeepLIFT's rules for ReLU and max-pool.
  NoGradGuard ng;
  auto rule = [&](Node& node, const Tensor& out_t, const Tensor& g,
                  const std::vector<bool>& needs) -> std::optional<std::vector<Tensor>> {
    int n_needed = 0;
    for (bool b : needs) n_needed += b;
    const std::string& name = node.name;
    LP_CHECK(!nonlinear_without_rule().count(name), "deeplift: the model uses op '", name,
             "' on the input's path, which has no DeepLIFT rule here (eval-mode models with ReLU and max-pool only)");
    LP_CHECK(!((name == "mul" || name == "div" || name == "matmul") && n_needed > 1), "deeplift: op '", name,
             "' multiplies two input-dependent tensors; no DeepLIFT rule for products");
    if (name == "relu") {
      const Tensor& in = node.inputs[0];
      Tensor regular = relu_mask(g, in);
      return std::vector<Tensor>{rescale(in, Tensor(), regular, eps, true, out_t, g)};
    }
    if (name == "max_pool1d") {
      const Tensor& in = node.inputs[0];
      const int64_t n = out_t.numel() / 2;
      // G = [g_x·(max(y, y0) − y0); g_r·(y − max(y, y0))] routed by each half's own argmax.
      Tensor G = empty_like(out_t);
      dispatch_dtype(out_t.dtype(), [&]<typename T>() {
        const T* po = out_t.data<T>();
        const T* pg = g.data<T>();
        T* pG = G.data<T>();
        for (int64_t i = 0; i < n; ++i) {
          double yx = po[i], y0 = po[i + n], m = std::max(yx, y0);
          pG[i] = T(double(pg[i]) * (m - y0));
          pG[i + n] = T(double(pg[i + n]) * (yx - m));
        }
      });
      Tensor routed = node.backward(G, out_t, needs)[0];  // (2P, C, L)
      const int64_t half = routed.size(0) / 2;
      Tensor U = add(slice(routed, 0, 0, half), slice(routed, 0, half, half));
      Tensor regular = node.backward(g, out_t, needs)[0];
      return std::vector<Tensor>{rescale(in, U, regular, eps, false, Tensor(), Tensor())};
    }
    return std::nullopt;  // linear ops: their own rule
  };
  std::unordered_map<const void*, Tensor> grads =
      backward_walk({y}, {seed}, {vertex_of(xx.impl())}, /*create_graph=*/false, rule);
  auto git = grads.find(vertex_of(xx.impl()));
  LP_CHECK(git != grads.end(), "deeplift: no gradient reached the input");
  res.multipliers = slice(git->second, 0, 0, P).clone();
  return res;
}

}  // namespace lowpass::attr
