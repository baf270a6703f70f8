// Attribution methods (see attribute.h for the formulas). Work is chunked to at most max_batch
// sequences per forward pass; shuffles are seeded per example so batching never changes a result.
// Test: build/tests/lowpass_tests -ts=attr
#include "models/attr/attribute.h"

#include <cmath>

#include "models/arch/mutant_forward.h"
#include "models/attr/deeplift.h"
#include "models/attr/dinuc_shuffle.h"

namespace lowpass::attr {

namespace {

Tensor rows_of(const Tensor& t, const std::vector<int64_t>& owners) {
  return t.defined() ? index_select(t.detach(), 0, owners) : Tensor();
}

Tensor select_output(const ModelOutput& out, const Target& t) {
  switch (t.kind) {
    case TargetKind::Logits: return out.logits;
    case TargetKind::Profile:
    case TargetKind::ProfileRaw: return out.profile_logits;
    case TargetKind::Counts: return out.log_counts;
  }
  return {};
}

std::vector<double> sum_rows(const Tensor& t) {  // (N, ...) -> (N)
  auto v = t.to_vector<double>();
  const int64_t N = t.size(0), per = t.numel() / std::max<int64_t>(N, 1);
  std::vector<double> s(N, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < per; ++i) s[n] += v[n * per + i];
  return s;
}

// The target's value per row at outputs already computed (f_x(x') with the rows' seeds); target_values runs the
// forward first.
std::vector<double> output_values(const ModelOutput& out, const Tensor& seed_rows, const Target& t) {
  Tensor y = select_output(out, t);
  check_target_output(y, out, t);
  return target_value(y, seed_rows);
}

}  // namespace

Tensor input_gradient(Model& model, const Tensor& x, const Tensor& control, const Target& t) {
  Tensor xl = x.detach().clone();
  xl.set_requires_grad(true);
  EnableGradGuard on(true);
  ModelOutput out = model.forward(xl, control, /*training=*/false);
  auto [y, seed] = target_seed(out, t);
  LP_CHECK(y.requires_grad(), "attribution: target ", t.name(), " does not depend on the input");
  return grad({y}, {xl}, {seed})[0].detach();
}

std::vector<double> target_values(Model& model, const Tensor& xs, const Tensor& control_rows, const Tensor& seed_rows,
                                  const Target& t) {
  NoGradGuard ng;
  return output_values(model.forward(xs, control_rows, false), seed_rows, t);
}

Tensor combine_mult_and_diffref(const Tensor& mults, const Tensor& refs, int64_t k) {
  LP_CHECK(mults.shape() == refs.shape() && mults.dim() == 3 && mults.size(1) == 4 && mults.size(0) % k == 0,
           "combine_mult_and_diffref: multipliers ", shape_str(mults.shape()), " and references ",
           shape_str(refs.shape()), " must be (B*k, 4, L)");
  const int64_t BK = mults.size(0), B = BK / k, L = mults.size(2);
  auto m = mults.to_vector<double>(), r = refs.to_vector<double>();
  std::vector<double> h(static_cast<size_t>(B * 4 * L), 0.0);
  for (int64_t p = 0; p < BK; ++p) {
    const double* mp = m.data() + p * 4 * L;
    const double* rp = r.data() + p * 4 * L;
    double* hp = h.data() + (p / k) * 4 * L;
    for (int64_t l = 0; l < L; ++l) {
      double rm = 0;
      for (int c = 0; c < 4; ++c) rm += rp[c * L + l] * mp[c * L + l];
      for (int b = 0; b < 4; ++b) hp[b * L + l] += (mp[b * L + l] - rm) / static_cast<double>(k);
    }
  }
  return make_like(mults, {B, 4, L}, h);
}

Tensor make_like(const Tensor& like, const Shape& s, const std::vector<double>& v) {
  Tensor t = Tensor::from_vector(like.ctx(), s, v);
  if (like.dtype() != DType::F64) t = cast(t, like.dtype());
  if (!like.is_cpu()) t = t.to(like.device());
  return t;
}

AttrResult attribute(Model& model, const Tensor& x_in, const Tensor& control_in, const AttrOptions& opt,
                     int64_t first_index) {
  LP_CHECK(x_in.defined() && x_in.dim() == 3 && x_in.size(1) == 4, "attribute: input must be (B, 4, L), got ",
           x_in.defined() ? shape_str(x_in.shape()) : std::string("nothing"));
  LP_CHECK(opt.max_batch >= 1, "attribute: max_batch must be >= 1, got ", opt.max_batch);
  const Device dev = model.device();  // inputs follow the model (host batches, GPU model)
  const Tensor x = on_device(x_in.detach(), dev);
  const Tensor control = on_device(control_in, dev);
  const int64_t B = x.size(0), L = x.size(2);
  const Target& tg = opt.target;
  AttrResult res;
  // Seeds at the explained inputs (constant for every target except profile), for ism and ig, which evaluate the
  // target at other inputs. The gradient methods and deepshap take the seed from their own forward pass at x, so
  // they run no forward for it; ig reuses this one for f_x(x).
  Tensor seed;
  ModelOutput out_x;  // (B, ...) outputs at x: ism and ig only
  if (opt.method == "ism" || opt.method == "ig") {
    NoGradGuard ng;
    out_x = model.forward(x, control, false);
    seed = target_seed(out_x, tg).second;  // (B, ...)
  }

  if (opt.method == "grad" || opt.method == "gradxinput" || opt.method == "deepshap_ref") {
    Tensor g = input_gradient(model, x, control, tg);
    if (opt.method == "grad") res.hyp = g;
    else if (opt.method == "gradxinput") res.hyp = mul(g, x);
    else {
      const int64_t k = opt.refs_used();
      std::vector<double> rbar(static_cast<size_t>(B * 4 * L), 0.0);
      for (int64_t b = 0; b < B; ++b) {
        Rng rng(opt.seed + static_cast<uint64_t>(first_index + b));
        auto refs = dinuc_shuffle_onehot(slice(x, 0, b, 1), k, rng).to_vector<double>();  // (k, 4, L)
        for (int64_t j = 0; j < k; ++j)
          for (int64_t i = 0; i < 4 * L; ++i) rbar[b * 4 * L + i] += refs[j * 4 * L + i] / static_cast<double>(k);
      }
      Tensor rb = make_like(x, {B, 4, L}, rbar);
      res.hyp = sub(g, sum(mul(rb, g), {1}, true));  // g_b − Σ_c r̄_c g_c
    }
  } else if (opt.method == "deepshap") {
    const int64_t k = opt.refs_used();
    std::vector<Tensor> refs_all;
    for (int64_t b = 0; b < B; ++b) {
      Rng rng(opt.seed + static_cast<uint64_t>(first_index + b));
      refs_all.push_back(dinuc_shuffle_onehot(slice(x, 0, b, 1), k, rng));
    }
    Tensor refs = concat(refs_all, 0);  // (B*k, 4, L)
    std::vector<int64_t> owner(B * k);
    for (int64_t p = 0; p < B * k; ++p) owner[p] = p / k;
    const int64_t chunk = std::max<int64_t>(1, opt.max_batch / 2);
    // A model without max-pool (the profile model) on the CPU runs each input once per pass, not once per reference,
    // and carries only the input half's gradient: the same multipliers from about half the rows.
    const bool shared = model.type() == "profile" && x.is_cpu();
    std::vector<Tensor> mults;
    std::vector<double> contrib(B, 0.0), dout(B, 0.0);
    for (int64_t p0 = 0; p0 < B * k; p0 += chunk) {
      const int64_t n = std::min(chunk, B * k - p0);
      std::vector<int64_t> own(owner.begin() + p0, owner.begin() + p0 + n);
      Tensor xs = rows_of(x, own), rs = slice(refs, 0, p0, n);
      DeepLiftOutput dl;
      if (shared) {
        std::vector<int64_t> uniq, local(static_cast<size_t>(n));  // own is ascending: its distinct rows in order
        for (int64_t i = 0; i < n; ++i) {
          if (uniq.empty() || uniq.back() != own[i]) uniq.push_back(own[i]);
          local[i] = static_cast<int64_t>(uniq.size()) - 1;
        }
        dl = deeplift_multipliers_shared(model, rows_of(x, uniq), rs, local, rows_of(control, uniq), tg);
      } else {
        dl = deeplift_multipliers(model, xs, rs, rows_of(control, own), tg);
      }
      auto c = sum_rows(mul(dl.multipliers, sub(xs, rs)));
      for (int64_t i = 0; i < n; ++i) {
        contrib[own[i]] += c[i] / static_cast<double>(k);
        dout[own[i]] += (dl.f_x[i] - dl.f_r[i]) / static_cast<double>(k);
      }
      mults.push_back(dl.multipliers);
    }
    res.hyp = combine_mult_and_diffref(concat(mults, 0), refs, k);
    for (int64_t b = 0; b < B; ++b) {
      res.delta.push_back(contrib[b] - dout[b]);
      res.delta_rel.push_back(std::fabs(contrib[b] - dout[b]) / std::max(std::fabs(dout[b]), 1e-12));
    }
    res.difference = dout;
  } else if (opt.method == "ism") {
    NoGradGuard ng;
    auto xv = x.to_vector<double>();
    std::vector<double> hyp(static_cast<size_t>(B * 4 * L), 0.0);
    for (int64_t b = 0; b < B; ++b) {
      auto tok = onehot_to_tokens(x, b);
      const double* xb = xv.data() + b * 4 * L;
      // Mutants (l, c) with c != the current base, plus the unmutated sequence as row 0.
      std::vector<std::pair<int64_t, int>> edits{{-1, -1}};
      for (int64_t l = 0; l < L; ++l)
        for (int c = 0; c < 4; ++c)
          if (c != tok[l]) edits.push_back({l, c});
      std::vector<double> vals;
      // fastISM: each layer recomputed over the windows the edits reach (models/arch/mutant_forward.h).
      std::unique_ptr<MutantForward> fast;
      if (!opt.ism_full)
        fast = model.mutant_forward(slice(x, 0, b, 1), control.defined() ? slice(control, 0, b, 1) : Tensor());
      if (fast) {
        const Tensor sb = slice(seed, 0, b, 1);
        vals = output_values(fast->reference(), sb, tg);
        const bool need_profile = tg.kind == TargetKind::Profile || tg.kind == TargetKind::ProfileRaw;
        const size_t rows = static_cast<size_t>(opt.max_batch * fast->rows_per_sequence());
        for (size_t e0 = 1; e0 < edits.size(); e0 += rows) {
          const size_t n = std::min(rows, edits.size() - e0);
          std::vector<int64_t> pos(n);
          std::vector<int> base(n);
          for (size_t i = 0; i < n; ++i) pos[i] = edits[e0 + i].first, base[i] = edits[e0 + i].second;
          auto v = output_values(fast->run(pos, base, need_profile), rows_of(sb, std::vector<int64_t>(n, 0)), tg);
          vals.insert(vals.end(), v.begin(), v.end());
        }
      }
      for (size_t e0 = 0; !fast && e0 < edits.size(); e0 += static_cast<size_t>(opt.max_batch)) {
        const int64_t n = std::min<int64_t>(opt.max_batch, static_cast<int64_t>(edits.size() - e0));
        std::vector<double> rows(static_cast<size_t>(n * 4 * L));
        for (int64_t i = 0; i < n; ++i) {
          double* r = rows.data() + i * 4 * L;
          std::copy(xb, xb + 4 * L, r);
          auto [l, c] = edits[e0 + i];
          if (l >= 0) {
            for (int cc = 0; cc < 4; ++cc) r[cc * L + l] = 0.0;
            r[c * L + l] = 1.0;
          }
        }
        std::vector<int64_t> own(n, b);
        auto v = target_values(model, make_like(x, {n, 4, L}, rows), rows_of(control, own), rows_of(seed, own), tg);
        vals.insert(vals.end(), v.begin(), v.end());
      }
      double* hb = hyp.data() + b * 4 * L;
      for (size_t e = 1; e < edits.size(); ++e) hb[edits[e].second * L + edits[e].first] = vals[e] - vals[0];
      for (int64_t l = 0; l < L; ++l) {
        double m = 0;
        for (int c = 0; c < 4; ++c) m += hb[c * L + l] / 4.0;
        for (int c = 0; c < 4; ++c) hb[c * L + l] -= m;
      }
    }
    res.hyp = make_like(x, {B, 4, L}, hyp);
  } else if (opt.method == "ig") {
    LP_CHECK(opt.ig_steps >= 1, "attribute: ig_steps must be >= 1, got ", opt.ig_steps);
    LP_CHECK(opt.ig_tolerance >= 0, "attribute: ig_tolerance must be >= 0, got ", opt.ig_tolerance);
    LP_CHECK(opt.ig_max_steps >= 1, "attribute: ig_max_steps must be >= 1, got ", opt.ig_max_steps);
    auto xv = x.to_vector<double>();
    // gsum[b] += Σ gradients at α x_b for each (b, α) point, max_batch points per forward/backward pass.
    std::vector<double> gsum(static_cast<size_t>(B * 4 * L), 0.0);
    auto add_path_gradients = [&](const std::vector<std::pair<int64_t, double>>& pts) {
      const int64_t total = static_cast<int64_t>(pts.size());
      for (int64_t r0 = 0; r0 < total; r0 += opt.max_batch) {
        const int64_t n = std::min(opt.max_batch, total - r0);
        std::vector<int64_t> own(n);
        std::vector<double> rows(static_cast<size_t>(n * 4 * L));
        for (int64_t i = 0; i < n; ++i) {
          const auto [b, a] = pts[static_cast<size_t>(r0 + i)];
          own[i] = b;
          for (int64_t j = 0; j < 4 * L; ++j) rows[i * 4 * L + j] = a * xv[b * 4 * L + j];
        }
        Tensor xl = make_like(x, {n, 4, L}, rows);
        xl.set_requires_grad(true);
        Tensor g;
        {
          EnableGradGuard on(true);
          ModelOutput out = model.forward(xl, rows_of(control, own), false);
          Tensor y = select_output(out, tg);
          g = grad({y}, {xl}, {rows_of(seed, own)})[0];
        }
        auto gv = g.to_vector<double>();
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < 4 * L; ++j) gsum[own[i] * 4 * L + j] += gv[i * 4 * L + j];
      }
    };
    // Midpoint rule with m points: α = (i + ½)/m. Tripling m keeps the old points ((i + ½)/m = (3i + 1 + ½)/3m),
    // so a refinement adds only the 2m new ones.
    res.steps.assign(static_cast<size_t>(B), opt.ig_steps);
    std::vector<std::pair<int64_t, double>> pts;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < opt.ig_steps; ++i) pts.push_back({b, (static_cast<double>(i) + 0.5) / opt.ig_steps});
    add_path_gradients(pts);
    // Completeness: Σ x ⊙ Ḡ vs f_x(x) − f_x(0).
    auto fx = output_values(out_x, seed, tg);  // the seed's forward at x: no second one
    auto f0 = target_values(model, make_like(x, {B, 4, L}, std::vector<double>(B * 4 * L, 0.0)), control, seed, tg);
    for (;;) {
      std::vector<double> gbar(gsum.size());
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < 4 * L; ++j) gbar[b * 4 * L + j] = gsum[b * 4 * L + j] / res.steps[b];
      res.hyp = make_like(x, {B, 4, L}, gbar);  // baseline 0: hyp_b = Ḡ_b
      auto c = sum_rows(mul(res.hyp, x));
      res.delta.clear(), res.delta_rel.clear(), res.difference.clear();
      pts.clear();
      for (int64_t b = 0; b < B; ++b) {
        const double d = fx[b] - f0[b];
        res.difference.push_back(d);
        res.delta.push_back(c[b] - d);
        res.delta_rel.push_back(std::fabs(c[b] - d) / std::max(std::fabs(d), 1e-12));
        // An error under 1e-6 (in the target's units) is not worth 3x the work, whatever |f(x) - f(0)| is.
        const int64_t m = res.steps[b];
        if (opt.ig_tolerance > 0 && res.delta_rel.back() > opt.ig_tolerance && std::fabs(res.delta.back()) > 1e-6 &&
            m <= opt.ig_max_steps / 3) {
          for (int64_t i = 0; i < 3 * m; ++i)
            if (i % 3 != 1) pts.push_back({b, (static_cast<double>(i) + 0.5) / (3 * m)});
          res.steps[b] = 3 * m;
        }
      }
      if (pts.empty()) break;
      add_path_gradients(pts);
    }
  } else {
    throw Error("attribute: --method '" + opt.method + "' is not grad, gradxinput, deepshap_ref, deepshap, ism or ig");
  }
  res.actual = mul(res.hyp, x);
  return res;
}

AttrResult attribute_mean(const std::vector<Model*>& models, const Tensor& x, const std::vector<Tensor>& controls,
                          const AttrOptions& opt, int64_t first_index) {
  LP_CHECK(!models.empty() && controls.size() == models.size(), "attribute_mean: ", models.size(), " models and ",
           controls.size(), " control tensors");
  if (models.size() == 1) return attribute(*models.front(), x, controls.front(), opt, first_index);
  AttrResult r;
  const auto acc = [](Tensor& s, const Tensor& t) {
    const Tensor h = on_device(t, Device{});
    s = s.defined() ? add(s, h) : h;
  };
  for (size_t k = 0; k < models.size(); ++k) {
    const AttrResult a = attribute(*models[k], x, controls[k], opt, first_index);
    acc(r.hyp, a.hyp), acc(r.actual, a.actual);
    if (k == 0) {
      r.delta.assign(a.delta.size(), 0.0), r.difference.assign(a.delta.size(), 0.0), r.steps = a.steps;
      r.model_delta_rel.assign(a.delta.size(), 0.0);
    }
    for (size_t b = 0; b < a.delta.size(); ++b) {
      r.delta[b] += a.delta[b], r.difference[b] += a.difference[b];
      // NaN stays NaN (a model with NaN scores must show)
      if (!(a.delta_rel[b] <= r.model_delta_rel[b])) r.model_delta_rel[b] = a.delta_rel[b];
      if (b < a.steps.size()) r.steps[b] = std::max(r.steps[b], a.steps[b]);
    }
  }
  const double inv = 1.0 / static_cast<double>(models.size());
  r.hyp = mul_scalar(r.hyp, inv), r.actual = mul_scalar(r.actual, inv);
  for (size_t b = 0; b < r.delta.size(); ++b) {
    r.delta[b] *= inv, r.difference[b] *= inv;
    r.delta_rel.push_back(std::fabs(r.delta[b]) / std::max(std::fabs(r.difference[b]), 1e-12));
  }
  return r;
}

}  // namespace lowpass::attr
