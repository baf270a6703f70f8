// Neural-net layer ops: batch norm (train: batch statistics, eval: running statistics), max-pool,
// global average pool, softmax / log-softmax. y = γ·(x − μ)/√(σ² + ε) + β; pool routes g to the argmax.
// Test: build/tests/lowpass_tests -ts=nn
#include "kernels/cpu/nn.h"

#include <memory>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"

namespace lowpass {

namespace {
using Grads = std::vector<Tensor>;

// (C) -> (1, C, 1) or (1, C) to broadcast against x.
Tensor per_channel(const Tensor& v, const Tensor& x) {
  return reshape(v, x.dim() == 3 ? Shape{1, v.numel(), 1} : Shape{1, v.numel()});
}
std::vector<int64_t> stat_axes(const Tensor& x) { return x.dim() == 3 ? std::vector<int64_t>{0, 2} : std::vector<int64_t>{0}; }

// y = x·scale[c] + shift[c], differentiable in all three (scale, shift are (C)).
Tensor channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift) {
  Tensor y = empty_like(x);
  LP_ON_DEVICE(x, cpu::channel_affine(x, scale, shift, y), cuda::channel_affine(x, scale, shift, y));
  return record("channel_affine", y, {x, scale, shift},
                [x, scale](const Tensor& g, const Tensor&, const std::vector<bool>& need) {
                  auto ax = stat_axes(x);
                  Grads r(3);
                  if (need[0]) r[0] = mul(g, per_channel(scale, x));
                  if (need[1]) r[1] = reshape(sum(mul(g, x), ax), scale.shape());
                  if (need[2]) r[2] = reshape(sum(g, ax), scale.shape());
                  return r;
                });
}

// y = g·a[c] + h·b[c] + c[c] with g, h like x and a, b, c (C); differentiable in all five.
Tensor channel_affine2(const Tensor& g, const Tensor& h, const Tensor& a, const Tensor& b, const Tensor& c) {
  Tensor y = empty_like(g);
  LP_ON_DEVICE(g, cpu::channel_affine2(g, h, a, b, c, y), cuda::channel_affine2(g, h, a, b, c, y));
  return record("channel_affine2", y, {g, h, a, b, c},
                [g, h, a, b](const Tensor& u, const Tensor&, const std::vector<bool>& need) {
                  auto ax = stat_axes(g);
                  Shape cs = a.shape();
                  Grads r(5);
                  if (need[0]) r[0] = mul(u, per_channel(a, g));
                  if (need[1]) r[1] = mul(u, per_channel(b, g));
                  if (need[2]) r[2] = reshape(sum(mul(u, g), ax), cs);
                  if (need[3]) r[3] = reshape(sum(mul(u, h), ax), cs);
                  if (need[4]) r[4] = reshape(sum(u, ax), cs);
                  return r;
                });
}

// The training-mode batch-norm input gradient dx = γ·s·(g − mean(g) − x̂·mean(g·x̂)) composed from differentiable ops,
// with the statistics recomputed from x (so that derivatives see them): the rule of third and higher derivatives.
Tensor bn_input_grad_composed(const Tensor& g, const Tensor& x, const Tensor& gamma, double eps) {
  auto ax = stat_axes(x);
  const double inv_n = static_cast<double>(x.size(1)) / static_cast<double>(x.numel());
  Tensor xc = sub(x, mean(x, ax, true));
  Tensor is = rsqrt(add_scalar(mean(square(xc), ax), eps));  // (C)
  Tensor s1 = sum(g, ax), s2 = sum(mul(g, xc), ax);          // (C)
  Tensor a = gamma.defined() ? mul(gamma, is) : is;          // γ/σ
  Tensor b = mul_scalar(mul(mul(a, square(is)), s2), -inv_n);
  Tensor c = mul_scalar(mul(a, s1), -inv_n);
  return channel_affine2(g, xc, a, b, c);  // dx = a·g + b·(x − μ) + c
}

void check_channel_vec(const Tensor& v, const Tensor& x, int64_t C, const char* field) {
  if (!v.defined()) return;
  LP_CHECK(v.dim() == 1 && v.size(0) == C, "batch_norm: ", field, " is ", v.describe(), ", expected (", C, ")");
  LP_SAME_DEVICE_DTYPE(x, v, "batch_norm");
}

// Scatter of g (B, C, Lo) to the recorded argmax positions in (B, C, L), and its adjoint, the
// gather. Both linear with constant routing, so their second derivatives are zero.
Tensor pool_gather(const Tensor& h, std::shared_ptr<Storage> idx, int64_t Lo);
Tensor pool_scatter(const Tensor& g, std::shared_ptr<Storage> idx, int64_t L) {
  Tensor out = empty_like(g, {g.size(0), g.size(1), L});
  const int32_t* pi = static_cast<const int32_t*>(idx->data);
  LP_ON_DEVICE(g, cpu::max_pool1d_scatter(g, out, pi), cuda::max_pool1d_scatter(g, out, pi));
  int64_t Lo = g.size(2);
  return record("max_pool1d_scatter", out, {g}, [idx, Lo](const Tensor& gg, const Tensor&, const std::vector<bool>&) {
    return Grads{pool_gather(gg, idx, Lo)};
  });
}
Tensor pool_gather(const Tensor& h, std::shared_ptr<Storage> idx, int64_t Lo) {
  Tensor out = empty_like(h, {h.size(0), h.size(1), Lo});
  const int32_t* pi = static_cast<const int32_t*>(idx->data);
  LP_ON_DEVICE(h, cpu::max_pool1d_gather(h, out, pi), cuda::max_pool1d_gather(h, out, pi));
  int64_t L = h.size(2);
  return record("max_pool1d_gather", out, {h}, [idx, L](const Tensor& gg, const Tensor&, const std::vector<bool>&) {
    return Grads{pool_scatter(gg, idx, L)};
  });
}

void axis_view(const Tensor& x, int64_t d, int64_t& outer, int64_t& n, int64_t& inner) {
  outer = inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= x.size(k);
  n = x.size(d);
  for (int64_t k = d + 1; k < x.dim(); ++k) inner *= x.size(k);
}
int64_t norm_dim(int64_t d, const Tensor& x, const char* op) {
  if (d < 0) d += x.dim();
  LP_CHECK(d >= 0 && d < x.dim(), op, ": dim ", d, " out of range for ", x.describe());
  return d;
}
}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean, Tensor running_var,
                  bool training, double momentum, double eps) {
  LP_CHECK(x.defined() && (x.dim() == 2 || x.dim() == 3), "batch_norm: x must be (B, C) or (B, C, L), got ",
           x.defined() ? x.describe() : std::string("undefined"));
  const int64_t C = x.size(1);
  check_channel_vec(gamma, x, C, "gamma");
  check_channel_vec(beta, x, C, "beta");
  check_channel_vec(running_mean, x, C, "running_mean");
  check_channel_vec(running_var, x, C, "running_var");
  LP_CHECK(eps >= 0, "batch_norm: eps ", eps, " is negative");
  const Tensor zeros = Tensor::zeros(x.ctx(), {C}, x.dtype(), x.device());

  if (!training) {
    LP_CHECK(running_mean.defined() && running_var.defined(),
             "batch_norm: eval mode needs running_mean and running_var");
    Tensor istd = rsqrt(add_scalar(running_var.detach(), eps));
    Tensor scale = gamma.defined() ? mul(gamma, istd) : istd;
    Tensor shift = sub(beta.defined() ? beta : zeros, mul(running_mean.detach(), scale));
    return channel_affine(x, scale, shift);
  }

  const int64_t n = x.numel() / C;
  LP_CHECK(n > 1, "batch_norm: training needs more than one value per channel, got ", x.describe());
  Tensor mu = empty_like(x, {C}), var = empty_like(x, {C});
  LP_ON_DEVICE(x, cpu::channel_stats(x, mu, var), cuda::channel_stats(x, mu, var));
  Tensor istd, scale, shift;
  {
    NoGradGuard ng;
    if (running_mean.defined()) {
      running_mean.copy_(add(mul_scalar(running_mean, 1.0 - momentum), mul_scalar(mu, momentum)));
      Tensor unbiased = mul_scalar(var, static_cast<double>(n) / static_cast<double>(n - 1));
      running_var.copy_(add(mul_scalar(running_var, 1.0 - momentum), mul_scalar(unbiased, momentum)));
    } else {
      LP_CHECK(!running_var.defined(), "batch_norm: running_var given without running_mean");
    }
    istd = rsqrt(add_scalar(var, eps));
    scale = gamma.defined() ? mul(gamma.detach(), istd) : istd;
    shift = sub(beta.defined() ? beta.detach() : zeros, mul(mu, scale));
  }
  Tensor y = empty_like(x);
  LP_ON_DEVICE(x, cpu::channel_affine(x, scale, shift, y), cuda::channel_affine(x, scale, shift, y));

  return record("batch_norm", y, {x, gamma, beta},
                [x, gamma, mu, istd, eps](const Tensor& g, const Tensor&, const std::vector<bool>& need) {
                  Grads r(3);
                  if (!grad_enabled()) {
                    // First order only: fused two-pass kernel with the saved statistics.
                    Tensor dx = need[0] ? empty_like(x) : Tensor();
                    Tensor dgamma = need[1] ? empty_like(x, {x.size(1)}) : Tensor();
                    Tensor dbeta = need[2] ? empty_like(x, {x.size(1)}) : Tensor();
                    LP_ON_DEVICE(x, cpu::batch_norm_bwd(g, x, mu, istd, gamma, dx, dgamma, dbeta),
                                 cuda::batch_norm_bwd(g, x, mu, istd, gamma, dx, dgamma, dbeta));
                    return Grads{dx, dgamma, dbeta};
                  }
                  // create_graph: dx by batch_norm_input_grad (its own fused rule for the next derivative); dgamma and
                  // dbeta composed from differentiable ops, with the batch statistics recomputed from x so that second
                  // derivatives see them.
                  if (need[0]) r[0] = batch_norm_input_grad(g, x, gamma, mu, istd, eps);
                  if (need[1] || need[2]) {
                    auto ax = stat_axes(x);
                    Tensor xc = sub(x, mean(x, ax, true));
                    Tensor is = rsqrt(add_scalar(mean(square(xc), ax), eps));  // (C)
                    if (need[2]) r[2] = sum(g, ax);
                    if (need[1]) r[1] = mul(sum(mul(g, xc), ax), is);
                  }
                  return r;
                });
}

Tensor batch_norm_input_grad(const Tensor& g, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                             const Tensor& invstd, double eps) {
  LP_CHECK(g.defined() && x.defined() && g.shape() == x.shape(), "batch_norm_input_grad: g ",
           g.defined() ? g.describe() : std::string("undefined"), " and x ",
           x.defined() ? x.describe() : std::string("undefined"), " must have one shape");
  LP_CHECK(x.dim() == 2 || x.dim() == 3, "batch_norm_input_grad: x must be (B, C) or (B, C, L), got ", x.describe());
  const int64_t C = x.size(1);
  check_channel_vec(gamma, x, C, "gamma");
  check_channel_vec(mean, x, C, "mean");
  check_channel_vec(invstd, x, C, "invstd");
  LP_SAME_DEVICE_DTYPE(x, g, "batch_norm_input_grad");
  Tensor dx = empty_like(x);
  Tensor none;
  LP_ON_DEVICE(x, cpu::batch_norm_bwd(g, x, mean, invstd, gamma, dx, none, none),
               cuda::batch_norm_bwd(g, x, mean, invstd, gamma, dx, none, none));
  const Tensor md = mean.detach(), id = invstd.detach();
  return record("batch_norm_input_grad", dx, {g, x, gamma},
                [g, x, gamma, md, id, eps](const Tensor& u, const Tensor&, const std::vector<bool>& need) {
                  if (grad_enabled()) {  // a third derivative: through the composed rule, differentiable again
                    std::vector<Tensor> ins;
                    for (int k = 0; k < 3; ++k)
                      if (need[static_cast<size_t>(k)]) ins.push_back(k == 0 ? g : k == 1 ? x : gamma);
                    std::vector<Tensor> got = grad({bn_input_grad_composed(g, x, gamma, eps)}, ins, {u}, true, true);
                    Grads r(3);
                    size_t j = 0;
                    for (int k = 0; k < 3; ++k)
                      if (need[static_cast<size_t>(k)]) r[static_cast<size_t>(k)] = got[j++];
                    return r;
                  }
                  // The fused rule (kernels/cpu/nn.h, batch_norm_bwd2): one sum pass, one element-wise pass.
                  Tensor dg = need[0] ? empty_like(x) : Tensor(), dx2 = need[1] ? empty_like(x) : Tensor();
                  Tensor dgam = need[2] ? empty_like(x, {x.size(1)}) : Tensor();
                  LP_ON_DEVICE(x, cpu::batch_norm_bwd2(u, g, x, md, id, gamma, dg, dx2, dgam),
                               cuda::batch_norm_bwd2(u, g, x, md, id, gamma, dg, dx2, dgam));
                  return Grads{dg, dx2, dgam};
                });
}

Tensor max_pool1d(const Tensor& x, int64_t kernel, int64_t stride) {
  LP_CHECK(x.defined() && x.dim() == 3, "max_pool1d: x must be (B, C, L), got ",
           x.defined() ? x.describe() : std::string("undefined"));
  LP_CHECK(kernel >= 1 && stride >= 1, "max_pool1d: kernel ", kernel, " and stride ", stride, " must be >= 1");
  const int64_t L = x.size(2);
  LP_CHECK(L >= kernel, "max_pool1d: kernel ", kernel, " longer than the input ", x.describe());
  LP_CHECK(L < (int64_t{1} << 31), "max_pool1d: length ", L, " does not fit the 32-bit argmax");
  const int64_t Lo = (L - kernel) / stride + 1;
  Tensor out = empty_like(x, {x.size(0), x.size(1), Lo});
  auto idx = Storage::allocate(static_cast<size_t>(out.numel()) * sizeof(int32_t), x.device());
  int32_t* pi = static_cast<int32_t*>(idx->data);
  LP_ON_DEVICE(x, cpu::max_pool1d_fwd(x, out, pi, kernel, stride), cuda::max_pool1d_fwd(x, out, pi, kernel, stride));
  return record("max_pool1d", out, {x}, [idx, L](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return Grads{pool_scatter(g, idx, L)};
  });
}

Tensor dropout(const Tensor& x, double p, Context& ctx) {
  LP_CHECK(x.defined(), "dropout: no input");
  LP_CHECK(p >= 0 && p < 1, "dropout: the rate must be in [0, 1), got ", p);
  if (p == 0) return x;
  Tensor mask;
  {
    NoGradGuard ng;
    Tensor u = Tensor::uniform(ctx, x.shape(), 0.0, 1.0, x.dtype());
    if (!x.is_cpu()) u = u.to(x.device());
    mask = mul_scalar(gt_scalar(u, p), 1.0 / (1.0 - p));
  }
  return mul(x, mask);
}

Tensor global_avg_pool1d(const Tensor& x) {
  LP_CHECK(x.defined() && x.dim() == 3, "global_avg_pool1d: x must be (B, C, L), got ",
           x.defined() ? x.describe() : std::string("undefined"));
  return mean(x, {2}, false);
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  LP_CHECK(x.defined(), "log_softmax: undefined tensor");
  int64_t d = norm_dim(dim, x, "log_softmax");
  int64_t outer, n, inner;
  axis_view(x, d, outer, n, inner);
  Tensor out = empty_like(x);
  LP_ON_DEVICE(x, cpu::log_softmax(x, out, outer, n, inner), cuda::log_softmax(x, out, outer, n, inner));
  // d/dx: g − softmax·Σg; written with `out` (recorded) so it differentiates again.
  return record("log_softmax", out, {x}, [d](const Tensor& g, const Tensor& out, const std::vector<bool>&) {
    return Grads{sub(g, mul(exp(out), sum(g, {d}, true)))};
  }, /*uses_output=*/true);
}

Tensor softmax(const Tensor& x, int64_t dim) {
  LP_CHECK(x.defined(), "softmax: undefined tensor");
  int64_t d = norm_dim(dim, x, "softmax");
  int64_t outer, n, inner;
  axis_view(x, d, outer, n, inner);
  Tensor out = empty_like(x);
  LP_ON_DEVICE(x, cpu::softmax(x, out, outer, n, inner), cuda::softmax(x, out, outer, n, inner));
  // d/dx: s·(g − Σ g·s).
  return record("softmax", out, {x}, [d](const Tensor& g, const Tensor& out, const std::vector<bool>&) {
    return Grads{mul(out, sub(g, sum(mul(g, out), {d}, true)))};
  }, /*uses_output=*/true);
}

}  // namespace lowpass
