// Task losses and attribution priors: values against plain loops and known signals (sinusoid, delta,
// all-zero), gradients and gradients-of-gradients by finite differences, and the prior's gradient
// w.r.t. the parameters of tiny models through double backprop. Run: build/tests/lowpass_tests -ts=loss
#include <doctest/doctest.h>

#include <cmath>
#include <complex>

#include "models/arch/model.h"
#include "models/loss/baseline_priors.h"
#include "models/loss/binary_loss.h"
#include "models/loss/fourier_prior.h"
#include "models/loss/objective.h"
#include "models/loss/profile_loss.h"
#include "tests/gradcheck.h"

using namespace lowpass;
using namespace lowpass::test;
using nlohmann::json;

namespace {

// The prior by plain loops (double): REFERENCE §1.2 step by step.
double fourier_prior_loop(const std::vector<double>& attr, int64_t B, int64_t L, const std::vector<int>& status,
                          int64_t K, std::optional<double> s, double sigma) {
  auto kern = gaussian_kernel(sigma);
  const int64_t r = (static_cast<int64_t>(kern.size()) - 1) / 2;
  double total = 0;
  int n = 0;
  for (int64_t b = 0; b < B; ++b) {
    if (status[b] != 1) continue;
    std::vector<double> a(L), sm(L, 0.0);
    for (int64_t l = 0; l < L; ++l)
      for (int c = 0; c < 4; ++c) a[l] += std::abs(attr[(b * 4 + c) * L + l]);
    for (int64_t l = 0; l < L; ++l)
      for (int64_t j = -r; j <= r; ++j)
        if (l + j >= 0 && l + j < L) sm[l] += kern[j + r] * a[l + j];
    std::vector<double> m(L / 2 + 1);
    double msum = 0;
    for (int64_t k = 0; k <= L / 2; ++k) {
      std::complex<double> acc = 0;
      for (int64_t l = 0; l < L; ++l) acc += sm[l] * std::polar(1.0, -2 * M_PI * k * l / L);
      m[k] = std::abs(acc);
      msum += m[k];
    }
    if (msum == 0) msum = 1;
    double score = 0;
    for (int64_t k = 1; k <= L / 2; ++k) {
      double w = k <= K ? 1.0 : (s ? 1.0 / (1.0 + std::pow(double(k - K), *s)) : 0.0);
      score += w * m[k] / msum;
    }
    total += 1 - score;
    ++n;
  }
  return n ? total / n : 0.0;
}

Tensor attr_of_track(Context& ctx, const std::vector<double>& a) {  // base 0 carries the track
  const int64_t L = static_cast<int64_t>(a.size());
  std::vector<double> v(4 * L, 0.0);
  for (int64_t l = 0; l < L; ++l) v[l] = a[l];
  return Tensor::from_vector(ctx, {1, 4, L}, v);
}

}  // namespace

TEST_SUITE("loss") {
TEST_CASE("fourier weights: reference check values") {
  auto w = fourier_weights(500, 150, 0.2);
  CHECK(w[149] == 1.0);                                  // k = 150
  CHECK(w[150] == doctest::Approx(0.5).epsilon(1e-12));  // k = 151
  CHECK(w[151] == doctest::Approx(1.0 / (1.0 + std::pow(2.0, 0.2))).epsilon(1e-12));
  CHECK(w[151] == doctest::Approx(0.465).epsilon(1e-3));
  CHECK(w[499] == doctest::Approx(0.237).epsilon(2e-3));
  auto h = fourier_weights(500, 150, std::nullopt);
  CHECK(h[149] == 1.0);
  CHECK(h[150] == 0.0);
  CHECK(fourier_weights(10, 150, 0.2) == std::vector<double>(10, 1.0));
}

TEST_CASE("fourier prior on known signals: sinusoid, delta, all-zero, no eligible rows") {
  Context ctx(1, 1);
  const int64_t L = 64;
  for (int64_t k : {3, 20}) {  // a = 1 + cos(2πkn/L): |F_0| = L, |F_k| = L/2 → score w_k/3
    std::vector<double> a(L);
    for (int64_t n = 0; n < L; ++n) a[n] = 1.0 + std::cos(2 * M_PI * k * n / L);
    Tensor t = attr_of_track(ctx, a);
    const double wk = k <= 10 ? 1.0 : 1.0 / (1.0 + std::pow(double(k - 10), 0.2));
    CHECK(fourier_prior_loss(t, {1}, 10, 0.2, 0.0).item() == doctest::Approx(1.0 - wk / 3.0).epsilon(1e-10));
    CHECK(fourier_prior_loss(t, {1}, 10, std::nullopt, 0.0).item() ==
          doctest::Approx(k <= 10 ? 2.0 / 3.0 : 1.0).epsilon(1e-10));
  }
  // Delta: every |F_k| = 1, so each normalised bin is 1/(L/2+1).
  std::vector<double> d(L, 0.0);
  d[17] = 2.5;
  double expect = 0;
  auto w = fourier_weights(L / 2, 10, 0.2);
  for (double wi : w) expect += wi / (L / 2 + 1);
  CHECK(fourier_prior_loss(attr_of_track(ctx, d), {1}, 10, 0.2, 0.0).item() == doctest::Approx(1 - expect).epsilon(1e-10));
  // All-zero attribution: sum 0 → 1, score 0, loss 1. No eligible row: 0.
  Tensor z = Tensor::zeros(ctx, {2, 4, L}, DType::F64);
  CHECK(fourier_prior_loss(z, {1, 1}, 10, 0.2, 3.0).item() == 1.0);
  CHECK(fourier_prior_loss(z, {0, 0}, 10, 0.2, 3.0).item() == 0.0);
  // σ = 3 smoothing and status selection against plain loops, awkward lengths (odd, 1, 2).
  for (int64_t Ln : {1, 2, 7, 64, 101}) {
    Tensor t = rand64(ctx, {3, 4, Ln});
    std::vector<int> st{1, 0, 1};
    for (auto s : {std::optional<double>(0.2), std::optional<double>()}) {
      INFO("L ", Ln);
      double ref = fourier_prior_loop(t.to_vector<double>(), 3, Ln, st, 5, s, 3.0);
      CHECK(fourier_prior_loss(t, st, 5, s, 3.0).item() == doctest::Approx(ref).epsilon(1e-10));
    }
  }
}

TEST_CASE("fourier prior at the paper's lengths equals numpy/scipy values (tests/fixtures/make_prior_values.py)") {
  // REFERENCE §1.2 at L 1000 / K 150 (binary) and L 1346 / K 200 (profile), σ 3, s 0.2 and a hard cut-off: a track
  // of five cosines split over two bases with opposite signs (Σ_bases |attr| gives it back), and a flat track, whose
  // spectrum comes only from the zero-padded smoothing's edges (DC stays in the normaliser). The numbers were printed
  // by the script, which builds the kernel with scipy.ndimage.gaussian_filter as the reference does.
  Context ctx(1, 0);
  struct Case {
    int64_t L, K;
    double soft, hard, flat;
  };
  for (const Case& c : {Case{1000, 150, 0.64652853041053482, 0.66067903989035748, 0.84122380182025369},
                        Case{1346, 200, 0.62860139914932267, 0.6416899234667226, 0.84214385602125741}}) {
    INFO("L ", c.L);
    std::vector<double> v(static_cast<size_t>(4 * c.L), 0.0), flat(static_cast<size_t>(4 * c.L), 0.0);
    for (int64_t n = 0; n < c.L; ++n) {
      const double t = static_cast<double>(n) / static_cast<double>(c.L), pi2 = 2 * M_PI;
      const double a = 1 + 0.5 * std::cos(pi2 * 7 * t) + 0.25 * std::cos(pi2 * 160 * t) +
                       0.1 * std::cos(pi2 * 400 * t) + 0.05 * std::sin(pi2 * 3 * t);
      v[static_cast<size_t>(n)] = 0.6 * a;                // base A
      v[static_cast<size_t>(2 * c.L + n)] = -0.4 * a;     // base G
      flat[static_cast<size_t>(3 * c.L + n)] = 1.0;       // base T
    }
    Tensor attr = Tensor::from_vector(ctx, {1, 4, c.L}, v), ones = Tensor::from_vector(ctx, {1, 4, c.L}, flat);
    CHECK(fourier_prior_loss(attr, {1}, c.K, 0.2, 3.0).item() == doctest::Approx(c.soft).epsilon(1e-12));
    CHECK(fourier_prior_loss(attr, {1}, c.K, std::nullopt, 3.0).item() == doctest::Approx(c.hard).epsilon(1e-12));
    CHECK(fourier_prior_loss(ones, {1}, c.K, 0.2, 3.0).item() == doctest::Approx(c.flat).epsilon(1e-12));
    // float32 attributions (the training dtype): the same to float32's precision
    CHECK(fourier_prior_loss(attr.to(DType::F32), {1}, c.K, 0.2, 3.0).item() == doctest::Approx(c.soft).epsilon(1e-5));
  }
}

TEST_CASE("fourier prior: gradient and gradient-of-gradient w.r.t. the attributions") {
  Context ctx(1, 2);
  for (int64_t L : {9, 32}) {
    Tensor t = mul(rand64(ctx, {3, 4, L}, 0.2, 1.0), sign(rand64(ctx, {3, 4, L})));  // away from |·|'s kink
    Fn f = [](const std::vector<Tensor>& v) { return fourier_prior_loss(v[0], {1, 0, 1}, 3, 0.2, 3.0); };
    check_grad(ctx, f, {t});
    check_gradgrad(ctx, f, {t}, 1e-6, 1e-4);
  }
}

TEST_CASE("smoothness and sparsity priors against plain loops, with gradients") {
  Context ctx(1, 3);
  for (int64_t L : {1, 2, 13}) {
    Tensor t = mul(rand64(ctx, {3, 4, L}, 0.2, 1.0), sign(rand64(ctx, {3, 4, L})));
    std::vector<int> st{1, 1, 0};
    auto v = t.to_vector<double>();
    double tv = 0, gini = 0;
    for (int b = 0; b < 2; ++b) {
      std::vector<double> a(L, 0.0);
      for (int64_t l = 0; l < L; ++l)
        for (int c = 0; c < 4; ++c) a[l] += std::abs(v[(b * 4 + c) * L + l]);
      double s = 0, pairs = 0;
      for (int64_t l = 0; l + 1 < L; ++l) tv += std::abs(a[l + 1] - a[l]) / 2;
      for (int64_t i = 0; i < L; ++i) {
        s += a[i];
        for (int64_t j = 0; j < L; ++j) pairs += std::abs(a[i] - a[j]);
      }
      gini += pairs / (L * s) / 2;
    }
    INFO("L ", L);
    CHECK(smoothness_prior_loss(t, st).item() == doctest::Approx(tv).epsilon(1e-12));
    CHECK(sparsity_prior_loss(t, st).item() == doctest::Approx(-gini).epsilon(1e-12));
    CHECK(smoothness_prior_loss(t, {0, 0, 0}).item() == 0.0);
    CHECK(sparsity_prior_loss(Tensor::zeros(ctx, {1, 4, L}, DType::F64), {1}).item() == 0.0);
    if (L > 2) {
      check_grad(ctx, [&](auto& x) { return smoothness_prior_loss(x[0], st); }, {t});
      check_grad(ctx, [&](auto& x) { return sparsity_prior_loss(x[0], st); }, {t});
      check_gradgrad(ctx, [&](auto& x) { return sparsity_prior_loss(x[0], st); }, {t}, 1e-6, 1e-4);
    }
  }
  Tensor p1 = rand64(ctx, {3, 2}), p2 = rand64(ctx, {5});
  double ss = 0;
  for (auto& p : {p1, p2})
    for (double x : p.to_vector<double>()) ss += x * x;
  CHECK(l2_penalty({p1, p2}).item() == doctest::Approx(ss).epsilon(1e-12));
}

TEST_CASE("weighted losses, L2 penalty and the smoothness prior: the derivatives the other cases leave out") {
  // Compositions of checked ops; these close the loss-level gaps: the weighted forms (CUDA-graph training) had values
  // only (test_graph_step.cpp), l2_penalty none, the smoothness prior no second order (it is 0: piecewise linear).
  Context ctx(1, 9);
  const int64_t B = 3, L = 9;
  Tensor z = rand64(ctx, {B, 2}, -3.0, 3.0);
  Tensor pw = rand64(ctx, {B, 2}, 0.0, 0.5), nw = rand64(ctx, {B, 2}, 0.0, 0.5);
  Fn fb = [&](auto& v) { return binary_task_loss_weighted(v[0], pw, nw); };
  check_grad(ctx, fb, {z});
  check_gradgrad(ctx, fb, {z});
  Tensor t = mul(rand64(ctx, {B, 4, L}, 0.2, 1.0), sign(rand64(ctx, {B, 4, L})));  // away from |·|'s kink
  Tensor w = Tensor::from_vector(ctx, {B}, std::vector<double>{0.5, 0.0, 0.5});
  Fn ff = [&](auto& v) { return fourier_prior_loss_weighted(v[0], w, 3, 0.2, 3.0); };
  check_grad(ctx, ff, {t});
  check_gradgrad(ctx, ff, {t}, 1e-6, 1e-4);
  CHECK(ff({t}).item() == doctest::Approx(fourier_prior_loss(t, {1, 0, 1}, 3, 0.2, 3.0).item()).epsilon(1e-12));
  Tensor p1 = rand64(ctx, {3, 2}), p2 = rand64(ctx, {5});
  Fn fl = [](auto& v) { return l2_penalty({v[0], v[1]}); };
  check_grad(ctx, fl, {p1, p2});
  check_gradgrad(ctx, fl, {p1, p2});
  const std::vector<int> st{1, 1, 0};
  check_gradgrad(ctx, [&](auto& x) { return smoothness_prior_loss(x[0], st); }, {t});
}

TEST_CASE("binary task loss: class-averaged BCE ignoring -1, vs plain loop, gradients") {
  Context ctx(1, 4);
  Tensor z = rand64(ctx, {5, 3}, -3.0, 3.0);
  auto zv = z.to_vector<double>();
  std::vector<std::vector<double>> labels{
      {1, 0, -1, 1, 1, 0, 0, -1, 1, 0, 0, 0, 1, -1, -1},  // both classes
      {1, -1, 1, 1, 1, -1, 1, 1, 1, 1, 1, 1, 1, -1, -1},  // positives only
      {0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0}};   // negatives only
  for (auto& yv : labels) {
    Tensor y = Tensor::from_vector(ctx, {5, 3}, yv);
    double lp = 0, ln = 0;
    int np = 0, nn = 0;
    for (size_t i = 0; i < yv.size(); ++i) {
      double p = 1 / (1 + std::exp(-zv[i]));
      if (yv[i] == 1) lp -= std::log(p), ++np;
      if (yv[i] == 0) ln -= std::log(1 - p), ++nn;
    }
    double ref = np && nn ? (lp / np + ln / nn) / 2 : (np ? lp / np : ln / nn);
    CHECK(binary_task_loss(z, y).item() == doctest::Approx(ref).epsilon(1e-12));
    check_grad(ctx, [&](auto& x) { return binary_task_loss(x[0], y); }, {z});
    check_gradgrad(ctx, [&](auto& x) { return binary_task_loss(x[0], y); }, {z});
  }
  CHECK_THROWS_AS(binary_task_loss(z, Tensor::full(ctx, {5, 3}, 0.5, DType::F64)), Error);
  CHECK_THROWS_AS(binary_task_loss(z, Tensor::zeros(ctx, {5, 2}, DType::F64)), Error);
}

TEST_CASE("profile task loss: multinomial NLL with lgamma terms + weighted log-count MSE") {
  Context ctx(1, 5);
  const int64_t B = 2, T = 2, S = 1, O = 5;
  Tensor lg = rand64(ctx, {B, T, S, O}, -2, 2), lc = rand64(ctx, {B, T, S}, 0, 3);
  std::vector<double> yv(B * T * S * O);
  for (auto& v : yv) v = static_cast<double>(ctx.rng().randint(0, 4));
  for (int64_t o = 0; o < O; ++o) yv[o] = 0;  // one all-zero profile
  Tensor y = Tensor::from_vector(ctx, {B, T, S, O}, yv);
  auto l = lg.to_vector<double>();
  auto c = lc.to_vector<double>();
  double nll = 0, mse = 0;
  for (int64_t r = 0; r < B * T * S; ++r) {
    double mx = -1e300, se = 0, n = 0, lpy = 0, lgy = 0;
    for (int64_t o = 0; o < O; ++o) mx = std::max(mx, l[r * O + o]);
    for (int64_t o = 0; o < O; ++o) se += std::exp(l[r * O + o] - mx);
    for (int64_t o = 0; o < O; ++o) {
      double y0 = yv[r * O + o];
      n += y0;
      lpy += y0 * (l[r * O + o] - mx - std::log(se));
      lgy += std::lgamma(y0 + 1);
    }
    nll -= std::lgamma(n + 1) - lgy + lpy;
    mse += std::pow(c[r] - std::log(n + 1), 2);
  }
  nll /= B * T * S;
  mse /= B * T * S;
  auto r = profile_task_loss(lg, lc, y, 20.0);
  CHECK(r.profile.item() == doctest::Approx(nll).epsilon(1e-12));
  CHECK(r.counts.item() == doctest::Approx(mse).epsilon(1e-12));
  CHECK(r.total.item() == doctest::Approx(nll + 20 * mse).epsilon(1e-12));
  check_grad(ctx, [&](auto& x) { return profile_task_loss(x[0], x[1], y).total; }, {lg, lc});
  check_gradgrad(ctx, [&](auto& x) { return profile_task_loss(x[0], x[1], y).total; }, {lg, lc});
}

// The prior's gradient w.r.t. every parameter of a tiny model against central differences of the
// whole objective (forward → input gradient → prior), in float64: double backprop end to end.
void check_objective_param_grads(Model& m, const Batch& batch, const PriorConfig& prior, bool training,
                                 double tol) {
  auto restore_buffers = [&](const std::vector<std::vector<double>>& saved) {
    for (size_t i = 0; i < saved.size(); ++i)
      m.buffers()[i].second.copy_(Tensor::from_vector(m.buffers()[i].second.ctx(), m.buffers()[i].second.shape(), saved[i]));
  };
  std::vector<std::vector<double>> saved;
  for (auto& [k, v] : m.buffers()) saved.push_back(v.to_vector<double>());
  Losses l = compute_losses(m, batch, prior, training);
  restore_buffers(saved);
  // The profile seed ℓ − mean_O ℓ is detached (a stop-gradient), so the finite differences hold it
  // at its value at the base point: the prior as a function of θ with that seed fixed.
  Tensor seed;
  if (l.outputs.profile_logits.defined()) {
    Tensor pl = l.outputs.profile_logits.detach();
    seed = sub(pl, mean(pl, {3}, true)).clone();
  }
  auto value = [&]() {
    double r;
    if (seed.defined()) {
      Tensor x = batch.x.detach().clone();
      x.set_requires_grad(true);
      ModelOutput o = m.forward(x, batch.control, training);
      Tensor g = grad({o.profile_logits}, {x}, {seed}, false)[0];
      r = fourier_prior_loss(mul(g, x).detach(), prior_status(batch, m.type()), prior.freq_limit, prior.softness,
                             prior.smooth_sigma).item();
    } else {
      r = compute_losses(m, batch, prior, training).prior.item();
    }
    restore_buffers(saved);
    return r;
  };
  REQUIRE(l.prior.requires_grad());
  std::vector<Tensor> ps;
  for (auto& [k, p] : m.parameters()) ps.push_back(p);
  auto g = grad({l.prior}, ps, {}, false, true);
  double num_norm = 0, diff_norm = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    double* p = ps[i].data<double>();
    auto gv = g[i].defined() ? g[i].to_vector<double>() : std::vector<double>(ps[i].numel(), 0.0);
    for (int64_t j = 0; j < ps[i].numel(); ++j) {
      const double old = p[j], eps = 1e-6;
      p[j] = old + eps;
      double fp = value();
      p[j] = old - eps;
      double fm = value();
      p[j] = old;
      double num = (fp - fm) / (2 * eps);
      num_norm += num * num;
      diff_norm += (num - gv[j]) * (num - gv[j]);
    }
  }
  INFO("prior ", l.prior.item(), " |dprior/dθ| ", std::sqrt(num_norm), " rel err ", std::sqrt(diff_norm / num_norm));
  CHECK(num_norm > 1e-12);  // the prior does depend on the parameters
  CHECK(std::sqrt(diff_norm / num_norm) < tol);
}

TEST_CASE("prior gradient w.r.t. parameters by finite differences (double backprop end to end)") {
  Context ctx(1, 6);
  PriorConfig prior;
  prior.freq_limit = 3;
  SUBCASE("binary, no batch norm") {
    auto m = make_model(json{{"type", "binary"}, {"input_length", 24}, {"conv_filter_sizes", {5, 3}}, {"conv_depths", {3, 2}},
                             {"max_pool_size", 4}, {"fc_sizes", {4}}, {"num_tasks", 2}, {"batch_norm", false}, {"dtype", "float64"}},
                        ctx);
    Batch b;
    b.x = rand64(ctx, {3, 4, 24}, 0.2, 1.0);  // dense positive inputs: attributions away from 0
    b.y = Tensor::from_vector(ctx, {3, 2}, std::vector<double>{1, 0, 0, 0, 0, 1});
    for (std::string type : {"fourier", "smoothness", "sparsity"}) {
      INFO(type);
      prior.type = type;
      check_objective_param_grads(*m, b, prior, true, 1e-5);
    }
  }
  SUBCASE("binary with batch norm, eval-mode attributions, training forward") {
    prior.type = "fourier";
    prior.attribution_mode = "eval";
    auto m = make_model(json{{"type", "binary"}, {"input_length", 20}, {"conv_filter_sizes", {5}}, {"conv_depths", {3}},
                             {"max_pool_size", 4}, {"fc_sizes", {3}}, {"num_tasks", 1}, {"dtype", "float64"}},
                        ctx);
    for (auto& [k, v] : m->buffers()) {
      if (k.find("running_var") != std::string::npos) v.copy_(rand64(ctx, v.shape(), 0.5, 2.0));
      if (k.find("running_mean") != std::string::npos) v.copy_(rand64(ctx, v.shape(), -0.5, 0.5));
    }
    for (auto& [k, v] : m->parameters())  // BN γ away from 1, β away from 0
      if (k.find("layers.2.") != std::string::npos) v.copy_(rand64(ctx, v.shape(), 0.5, 1.5));
    Batch b;
    b.x = rand64(ctx, {4, 4, 20}, 0.2, 1.0);
    b.y = Tensor::from_vector(ctx, {4, 1}, std::vector<double>{1, 0, 1, 0});
    check_objective_param_grads(*m, b, prior, true, 1e-5);
  }
  SUBCASE("profile with matched controls") {
    prior.type = "fourier";
    auto m = make_model(json{{"type", "profile"}, {"input_length", 20}, {"num_tasks", 2}, {"num_strands", 2},
                             {"dil_conv_filter_sizes", {3, 3}}, {"dil_conv_dilations", {1, 2}}, {"dil_conv_depths", 3},
                             {"prof_conv_kernel_size", 5}, {"dtype", "float64"}},
                        ctx);
    REQUIRE(m->output_length() == 10);
    Batch b;
    b.x = rand64(ctx, {2, 4, 20}, 0.2, 1.0);
    b.y = rand64(ctx, {2, 2, 2, 10}, 0.0, 3.0);
    b.control = rand64(ctx, {2, 2, 2, 10}, 0.0, 2.0);
    b.status = {1, 1};
    check_objective_param_grads(*m, b, prior, true, 1e-5);
    // Two of three rows scored: the attributions and the double backward on those rows only.
    b.x = rand64(ctx, {3, 4, 20}, 0.2, 1.0);
    b.y = rand64(ctx, {3, 2, 2, 10}, 0.0, 3.0);
    b.control = rand64(ctx, {3, 2, 2, 10}, 0.0, 2.0);
    b.status = {1, 0, 1};
    check_objective_param_grads(*m, b, prior, true, 1e-5);
  }
}

// compute_losses with the prior's rows apart (PriorConfig::scored_rows_only, the default) against every row's
// attributions: outputs in batch order, losses and every parameter gradient of the total, in float64.
void check_rows_apart(Model& m, const Batch& b, PriorConfig p, bool training, size_t scored) {
  std::vector<Tensor> saved;  // a training forward moves batch norm's running statistics: both calls start alike
  for (auto& [k, v] : m.buffers()) saved.push_back(v.clone());
  p.scored_rows_only = true;
  Losses a = compute_losses(m, b, p, training);
  for (size_t i = 0; i < saved.size(); ++i) m.buffers()[i].second.copy_(saved[i]);
  p.scored_rows_only = false;
  Losses f = compute_losses(m, b, p, training);
  CHECK(a.attribution_rows.size() == (scored == static_cast<size_t>(b.x.size(0)) ? 0 : scored));
  CHECK(f.attribution_rows.empty());
  auto rel = [](const Tensor& x, const Tensor& y) {
    const double d = std::sqrt(sum_all(square(sub(x, y))).item()), n = std::sqrt(sum_all(square(y)).item());
    return n > 0 ? d / n : d;
  };
  for (const auto& xy : {std::pair{a.outputs.logits, f.outputs.logits},
                         std::pair{a.outputs.profile_logits, f.outputs.profile_logits},
                         std::pair{a.outputs.log_counts, f.outputs.log_counts}})
    if (xy.second.defined()) CHECK(rel(xy.first, xy.second) < 1e-13);
  if (!a.attribution_rows.empty()) CHECK(rel(a.attributions, index_select(f.attributions, 0, a.attribution_rows)) < 1e-13);
  CHECK(a.task.item() == doctest::Approx(f.task.item()).epsilon(1e-13));
  CHECK(a.prior.item() == doctest::Approx(f.prior.item()).epsilon(1e-13));
  CHECK(a.total.item() == doctest::Approx(f.total.item()).epsilon(1e-13));
  if (scored > 0) CHECK(a.prior.item() != 0.0);
  std::vector<Tensor> ps;
  for (auto& [k, v] : m.parameters()) ps.push_back(v);
  auto ga = grad({a.total}, ps, {}, false, true), gf = grad({f.total}, ps, {}, false, true);
  for (size_t i = 0; i < ps.size(); ++i) {
    INFO("parameter ", i);
    REQUIRE(ga[i].defined() == gf[i].defined());
    if (gf[i].defined()) CHECK(rel(ga[i], gf[i]) < 1e-12);
  }
}

TEST_CASE("eligible_rows and other_rows split a batch's rows") {
  const std::vector<int> status = {0, 1, -1, 1, 1, 0};
  const std::vector<int64_t> rows = eligible_rows(status);
  CHECK(rows == std::vector<int64_t>{1, 3, 4});
  CHECK(other_rows(rows, 6) == std::vector<int64_t>{0, 2, 5});
  CHECK(other_rows({}, 3) == std::vector<int64_t>{0, 1, 2});
  CHECK(other_rows({2, 0, 1}, 3).empty());
  CHECK_THROWS_WITH_AS(other_rows({3}, 3), doctest::Contains("row 3 outside a batch of 3"), Error);
}

TEST_CASE("objective: the prior's rows apart equal every row's attributions (binary, BN eval attributions, profile)") {
  Context ctx(1, 11);
  PriorConfig prior;
  prior.freq_limit = 3;
  SUBCASE("binary without batch norm") {
    auto m = make_model(json{{"type", "binary"}, {"input_length", 24}, {"conv_filter_sizes", {5, 3}},
                             {"conv_depths", {3, 2}}, {"max_pool_size", 4}, {"fc_sizes", {4}}, {"num_tasks", 2},
                             {"batch_norm", false}, {"dtype", "float64"}},
                        ctx);
    Batch b;
    b.x = rand64(ctx, {5, 4, 24}, 0.2, 1.0);
    b.y = Tensor::from_vector(ctx, {5, 2}, std::vector<double>{0, 0, 1, 0, 0, 0, 0, 1, 1, 1});
    for (bool training : {true, false}) check_rows_apart(*m, b, prior, training, 3);
    b.y = Tensor::from_vector(ctx, {5, 2}, std::vector<double>(10, 0.0));  // no positive: prior 0, task only
    check_rows_apart(*m, b, prior, true, 0);
    b.y = Tensor::from_vector(ctx, {5, 2}, std::vector<double>(10, 1.0));  // every row scored: one forward
    check_rows_apart(*m, b, prior, true, 5);
  }
  SUBCASE("binary with batch norm: eval-mode attributions apart, training forward whole") {
    auto m = make_model(json{{"type", "binary"}, {"input_length", 20}, {"conv_filter_sizes", {5}},
                             {"conv_depths", {3}}, {"max_pool_size", 4}, {"fc_sizes", {3}}, {"num_tasks", 1},
                             {"dtype", "float64"}},
                        ctx);
    for (auto& [k, v] : m->buffers())
      if (k.find("running_var") != std::string::npos) v.copy_(rand64(ctx, v.shape(), 0.5, 2.0));
    Batch b;
    b.x = rand64(ctx, {4, 4, 20}, 0.2, 1.0);
    b.y = Tensor::from_vector(ctx, {4, 1}, std::vector<double>{0, 1, 1, 0});
    prior.attribution_mode = "eval";
    check_rows_apart(*m, b, prior, true, 2);
    check_rows_apart(*m, b, prior, false, 2);  // evaluation: running statistics throughout
    prior.attribution_mode = "train";          // the reference: the training forward's attributions, every row
    PriorConfig p = prior;
    Losses l = compute_losses(*m, b, p, true);
    CHECK(l.attribution_rows.empty());
    CHECK(l.attributions.size(0) == 4);
  }
  SUBCASE("profile with matched controls, status given") {
    auto m = make_model(json{{"type", "profile"}, {"input_length", 20}, {"num_tasks", 2}, {"num_strands", 2},
                             {"dil_conv_filter_sizes", {3, 3}}, {"dil_conv_dilations", {1, 2}},
                             {"dil_conv_depths", 3}, {"prof_conv_kernel_size", 5}, {"dtype", "float64"}},
                        ctx);
    Batch b;
    b.x = rand64(ctx, {4, 4, 20}, 0.2, 1.0);
    b.y = rand64(ctx, {4, 2, 2, 10}, 0.0, 3.0);
    b.control = rand64(ctx, {4, 2, 2, 10}, 0.0, 2.0);
    b.status = {0, 1, 0, 1};
    check_rows_apart(*m, b, prior, true, 2);
    b.status = {1, 0, 0, 0};
    check_rows_apart(*m, b, prior, true, 1);
  }
}

TEST_CASE("profile attributions: the reference's log-prob-weighted scalar has the mean-centred logits' gradient") {
  // REFERENCE §1.1 / §8.4: the reference differentiates S = Σ_{b,t,s,o} (ℓ − mean_O ℓ) · stopgrad(log_softmax_O ℓ)
  // (the comment says probabilities, the code uses log-probs); input_attributions seeds ℓ − mean_O ℓ instead. Built
  // here literally, in the engine's ops, both attributions agree; the counts head is in neither.
  Context ctx(1, 13);
  auto m = make_model(json{{"type", "profile"}, {"input_length", 20}, {"num_tasks", 2}, {"num_strands", 2},
                           {"dil_conv_filter_sizes", {3, 3}}, {"dil_conv_dilations", {1, 2}}, {"dil_conv_depths", 3},
                           {"prof_conv_kernel_size", 5}, {"dtype", "float64"}},
                      ctx);
  Tensor x = rand64(ctx, {3, 4, 20}, 0.0, 1.0);
  x.set_requires_grad(true);
  Tensor control = rand64(ctx, {3, 2, 2, 10}, 0.0, 2.0);
  ModelOutput out = m->forward(x, control, true);
  const Tensor& l = out.profile_logits;  // (B, T, S, O)
  Tensor weights = log_softmax(l, 3).detach();
  Tensor s = sum_all(mul(sub(l, mean(l, {3}, true)), weights));
  Tensor literal = mul(grad({s}, {x})[0], x);
  Tensor ours = input_attributions(m->forward(x, control, true), x, false);  // a second forward: no dropout, equal
  const auto a = literal.to_vector<double>(), b = ours.to_vector<double>();
  double norm = 0;
  for (double v : a) norm = std::max(norm, std::abs(v));
  REQUIRE(norm > 1e-8);
  for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == doctest::Approx(a[i]).epsilon(1e-10).scale(norm));
}

TEST_CASE("objective: attributions, statuses, totals and the reference's train-mode BN quirk") {
  Context ctx(1, 7);
  auto m = make_model(json{{"type", "binary"}, {"input_length", 60}, {"num_tasks", 2}, {"conv_depths", 4},
                           {"max_pool_size", 10}, {"dtype", "float64"}},
                      ctx);
  Batch b;
  b.x = rand64(ctx, {4, 4, 60}, 0.0, 1.0);
  b.y = Tensor::from_vector(ctx, {4, 2}, std::vector<double>{1, 0, 0, 0, -1, 1, 0, -1});
  CHECK(prior_status(b, "binary") == std::vector<int>{1, 0, 1, 0});
  PriorConfig p;
  p.freq_limit = 10;
  // The reference: attributions from the training forward. Σ_b logits is constant in x with BN in
  // training mode right before the output layer, so they vanish (up to round-off).
  Losses tr = compute_losses(*m, b, p, true);
  Losses ev = compute_losses(*m, b, p, false);
  double ntr = std::sqrt(sum_all(square(tr.attributions)).item());
  double nev = std::sqrt(sum_all(square(ev.attributions)).item());
  CHECK(nev > 1e-6);
  CHECK(ntr < 1e-9 * nev);
  p.attribution_mode = "eval";
  Losses em = compute_losses(*m, b, p, true);
  CHECK(std::sqrt(sum_all(square(em.attributions)).item()) > 1e-6);
  CHECK(em.total.item() == doctest::Approx(em.task.item() + p.weight * em.prior.item()).epsilon(1e-12));
  // No prior: prior 0, total = task, no attributions; L2 adds λ₂ Σθ².
  PriorConfig none;
  none.type = "none";
  none.l2_weight = 0.01;
  Losses n = compute_losses(*m, b, none, false);
  CHECK(!n.attributions.defined());
  CHECK(n.prior.item() == 0.0);
  std::vector<Tensor> ps;
  for (auto& [k, v] : m->parameters()) ps.push_back(v);
  CHECK(n.total.item() == doctest::Approx(n.task.item() + 0.01 * l2_penalty(ps).item()).epsilon(1e-12));
  // No eligible example: prior 0.
  b.status = {0, 0, 0, 0};
  CHECK(compute_losses(*m, b, p, false).prior.item() == 0.0);
  b.status = {1};
  CHECK_THROWS_AS(compute_losses(*m, b, p, false), Error);
  // In no-grad mode the values are still computed (attributions need a graph internally).
  b.status = {};
  double with_grad = compute_losses(*m, b, p, false).prior.item();
  NoGradGuard ng;
  CHECK(compute_losses(*m, b, p, false).prior.item() == doctest::Approx(with_grad).epsilon(1e-12));
}
}
