// The autograd graph's memory (engine/autograd.h, Node): edges hold no values, so an intermediate that no backward
// rule saved is freed when the forward pass lets go of it, while gradients, gradients of gradients, gradients with
// respect to intermediates and tape walkers that read values (KeepGraphValues) are unchanged.
// Run: build/tests/lowpass_tests -sf='*test_autograd.cpp'
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;

namespace {
std::weak_ptr<Storage> values_of(const Tensor& t) { return t.impl()->storage; }

// Largest |a − b| over two tensors of the same shape.
double max_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto u = a.to_vector<double>(), v = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < u.size(); ++i) m = std::max(m, std::abs(u[i] - v[i]));
  return m;
}
}  // namespace

TEST_CASE("autograd edges hold no values: an unsaved intermediate is freed after the forward pass") {
  Context ctx(1, 3);
  Tensor x = Tensor::uniform(ctx, {3, 5}, -1, 1, DType::F64);
  x.set_requires_grad(true);
  for (bool keep : {false, true}) {
    INFO("KeepGraphValues ", keep);
    std::weak_ptr<Storage> w;
    Tensor s;
    {
      std::unique_ptr<KeepGraphValues> guard(keep ? new KeepGraphValues : nullptr);
      Tensor t = add(x, x);                          // add's rule needs shapes only
      Tensor u = mul_scalar(t, 3.0);                 // so does mul_scalar's: nothing saves t
      s = sum_all(mul(u, Tensor::full(ctx, {3, 5}, 0.5, DType::F64)));  // a constant factor: u is not saved
      w = values_of(t);
    }
    CHECK(w.expired() == !keep);  // kept whole only under KeepGraphValues
    Tensor g = grad({s}, {x})[0];
    CHECK(max_diff(g, Tensor::full(ctx, {3, 5}, 3.0, DType::F64)) == 0.0);  // 2 · 3 · 0.5
  }
}

TEST_CASE("relu keeps its output, not its input; its gradient and second derivative are unchanged") {
  Context ctx(1, 4);
  Tensor x = Tensor::uniform(ctx, {4, 6}, -1, 1, DType::F64);
  x.set_requires_grad(true);
  std::weak_ptr<Storage> pre;
  Tensor r;
  {
    Tensor h = mul_scalar(x, 1.5);  // the pre-activation, read by nothing after relu
    pre = values_of(h);
    r = relu(h);
  }
  CHECK(pre.expired());
  Tensor y = sum_all(square(r));
  auto g = grad({y}, {x}, {}, /*create_graph=*/true)[0];  // 2·relu(1.5x)·1.5·[x > 0]
  auto xv = x.to_vector<double>(), gv = g.to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) CHECK(gv[i] == doctest::Approx(xv[i] > 0 ? 4.5 * xv[i] : 0.0).epsilon(1e-14));
  auto h2 = grad({sum_all(g)}, {x})[0];  // d/dx Σ 4.5·x·[x > 0] = 4.5·[x > 0]
  auto hv = h2.to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) CHECK(hv[i] == doctest::Approx(xv[i] > 0 ? 4.5 : 0.0).epsilon(1e-14));
}

TEST_CASE("rules that read their output still get it after the output's handle is gone (uses_output)") {
  Context ctx(1, 5);
  Tensor x = Tensor::uniform(ctx, {2, 7}, -1, 1, DType::F64);
  x.set_requires_grad(true);
  Tensor s;
  std::weak_ptr<Storage> w;
  {
    Tensor e = exp(x);  // exp's rule is g·out
    w = values_of(e);
    s = sum_all(mul_scalar(e, 2.0));
  }
  CHECK(!w.expired());  // kept by the node, for its rule
  auto g = grad({s}, {x}, {}, /*create_graph=*/true)[0];
  Tensor ref = mul_scalar(exp(x.detach()), 2.0);
  CHECK(max_diff(g, ref) <= 1e-15);
  CHECK(max_diff(grad({sum_all(g)}, {x})[0], ref) <= 1e-15);  // second order through the kept output
  for (auto f : {+[](const Tensor& t) { return sigmoid(t); }, +[](const Tensor& t) { return rsqrt(add_scalar(t, 2.0)); },
                 +[](const Tensor& t) { return log_softmax(t, 1); }, +[](const Tensor& t) { return softmax(t, 1); },
                 +[](const Tensor& t) { return sqrt(add_scalar(t, 2.0)); },
                 +[](const Tensor& t) { return div(t, add_scalar(t, 3.0)); }}) {
    // gradient and gradient of gradient against finite differences, the op's output dropped by the forward pass
    Fn fn = [&](const std::vector<Tensor>& in) { return square(f(in[0])); };
    CHECK(check_grad(ctx, fn, {x.detach()}) <= 1e-6);
    CHECK(check_gradgrad(ctx, fn, {x.detach()}) <= 1e-5);
  }
}

TEST_CASE("gradients with respect to an intermediate and through a diamond use the vertex, not the handle") {
  Context ctx(1, 6);
  Tensor x = Tensor::uniform(ctx, {3, 4}, -1, 1, DType::F64);
  x.set_requires_grad(true);
  Tensor h = mul_scalar(x, 2.0);  // consumed twice: each consumer's node holds its own alias of h
  Tensor y = add(sum_all(square(h)), sum_all(mul_scalar(h, 5.0)));
  auto gh = grad({y}, {h, x});
  CHECK(max_diff(gh[0], add_scalar(mul_scalar(h.detach(), 2.0), 5.0)) <= 1e-15);  // 2h + 5
  CHECK(max_diff(gh[1], add_scalar(mul_scalar(x.detach(), 8.0), 10.0)) <= 1e-14);  // (2h + 5)·2
  // backward() accumulates into the leaf once, whatever the number of aliases on the way
  Tensor y2 = add(sum_all(square(h)), sum_all(mul_scalar(h, 5.0)));
  backward(y2);
  CHECK(max_diff(x.grad(), gh[1]) <= 1e-14);
}

TEST_CASE("gradient sums taken in place never touch a tensor someone else holds") {
  Context ctx(1, 7);
  Tensor x = Tensor::uniform(ctx, {3, 4}, -1, 1, DType::F64);
  x.set_requires_grad(true);
  Tensor h = mul_scalar(x, 2.0);
  // The same output twice with the caller's seeds: the first seed must not become the sum.
  Tensor v = Tensor::uniform(ctx, {3, 4}, -1, 1, DType::F64), w = Tensor::uniform(ctx, {3, 4}, -1, 1, DType::F64);
  const std::vector<double> v0 = v.to_vector<double>();
  Tensor g = grad({h, h}, {x}, {v, w})[0];
  CHECK(v.to_vector<double>() == v0);
  CHECK(max_diff(g, mul_scalar(add(v, w), 2.0)) <= 1e-15);
  // add(h, h): its rule hands the same tensor to both inputs, which are one vertex; then three more terms.
  Tensor y = add(sum_all(add(h, h)), add(sum_all(mul_scalar(h, 3.0)), sum_all(square(h))));
  auto gs = grad({y}, {h, x});
  CHECK(max_diff(gs[0], add_scalar(mul_scalar(h.detach(), 2.0), 5.0)) <= 1e-15);  // 2 + 3 + 2h
  CHECK(max_diff(gs[1], add_scalar(mul_scalar(x.detach(), 8.0), 10.0)) <= 1e-14);
}
