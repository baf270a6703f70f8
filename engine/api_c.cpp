// The C API (include/lowpass/lowpass_c.h) over the C++ facade: handles wrap api::Model/api::Array,
// every exception becomes an lp_status plus a thread-local message. Test: build/tests/lowpass_c_tests
#include "include/lowpass/lowpass_c.h"

#include <cstring>
#include <new>
#include <string>

#include "include/lowpass/lowpass.h"

struct lp_model {
  lowpass::api::Model model;
  std::string type;
};
struct lp_array {
  lowpass::api::Array array;
};

namespace {

thread_local std::string last_error;

template <typename F>
lp_status call(F&& f) {
  try {
    f();
    return LP_OK;
  } catch (const std::bad_alloc&) {
    last_error = "out of memory";
    return LP_ERR_OUT_OF_MEMORY;
  } catch (const lowpass::api::OutOfMemory& e) {  // an allocation inside the engine
    last_error = e.what();
    return LP_ERR_OUT_OF_MEMORY;
  } catch (const lowpass::api::Error& e) {
    last_error = e.what();
    return LP_ERR_INVALID_ARGUMENT;
  } catch (const std::exception& e) {
    last_error = e.what();
    return LP_ERR_INTERNAL;
  } catch (...) {
    last_error = "unknown error";
    return LP_ERR_INTERNAL;
  }
}

void need(const void* p, const char* what) {
  if (!p) throw lowpass::api::Error(std::string(what) + " is NULL");
}

// A view with no elements may have a NULL data pointer (an empty batch); the C++ checks refuse one where a call
// needs data.
lowpass::api::Array to_array(const lp_view* v, const char* what) {
  if (!v) return {};
  if (v->ndim < 1 || v->ndim > 4) throw lowpass::api::Error(std::string(what) + ": ndim must be 1..4");
  auto a = lowpass::api::Array::view(v->data, std::vector<int64_t>(v->shape, v->shape + v->ndim));
  if (!v->data && a.size() > 0) throw lowpass::api::Error(std::string(what) + ".data is NULL for a non-empty shape");
  return a;
}

lp_array* wrap(lowpass::api::Array a) { return new lp_array{std::move(a)}; }

}  // namespace

extern "C" {

const char* lp_last_error(void) { return last_error.c_str(); }
const char* lp_version(void) {
  static const std::string v = lowpass::api::version_string();
  return v.c_str();
}

lp_view lp_view_3d(const float* data, int64_t n, int64_t c, int64_t l) {
  lp_view v;
  v.data = data;
  v.ndim = 3;
  v.shape[0] = n, v.shape[1] = c, v.shape[2] = l, v.shape[3] = 0;
  return v;
}

int lp_array_ndim(const lp_array* a) { return a ? static_cast<int>(a->array.ndim()) : 0; }
const int64_t* lp_array_shape(const lp_array* a) { return a ? a->array.shape().data() : nullptr; }
int64_t lp_array_size(const lp_array* a) { return a ? a->array.size() : 0; }
const float* lp_array_data(const lp_array* a) { return a ? a->array.data() : nullptr; }
void lp_array_free(lp_array* a) { delete a; }

lp_status lp_model_load(const char* path, const char* config, int threads, lp_model** out) {
  return call([&] {
    if (out) *out = nullptr;  // first, so that every failure leaves it NULL
    need(path, "path");
    need(out, "out");
    lowpass::api::LoadOptions o;
    if (config) o.config = config;
    o.threads = threads;
    auto m = lowpass::api::Model::load(path, o);
    std::string type = m.type();
    *out = new lp_model{std::move(m), type};
  });
}

lp_status lp_model_create(const char* cfg, uint64_t seed, int threads, lp_model** out) {
  return call([&] {
    if (out) *out = nullptr;
    need(cfg, "model_config_json");
    need(out, "out");
    auto m = lowpass::api::Model::create(cfg, seed, threads);
    std::string type = m.type();
    *out = new lp_model{std::move(m), type};
  });
}

lp_status lp_model_save(const lp_model* m, const char* dir) {
  return call([&] {
    need(m, "model");
    need(dir, "dir");
    m->model.save(dir);
  });
}

lp_status lp_model_save_checkpoint(const lp_model* m, const char* path) {
  return call([&] {
    need(m, "model");
    need(path, "path");
    m->model.save_checkpoint(path);
  });
}

lp_status lp_model_resume(lp_model* m, const char* path) {
  return call([&] {
    need(m, "model");
    need(path, "checkpoint_path");
    m->model.resume(path);
  });
}

void lp_model_free(lp_model* m) { delete m; }

lp_status lp_model_get_info(const lp_model* m, lp_model_info* info) {
  return call([&] {
    need(m, "model");
    need(info, "info");
    info->type = m->type.c_str();
    info->input_length = m->model.input_length();
    info->output_length = m->model.output_length();
    info->tasks = m->model.tasks();
    info->strands = m->model.strands();
    info->uses_control = m->model.uses_control() ? 1 : 0;
  });
}

lp_status lp_model_predict(lp_model* m, const lp_view* x, const lp_view* control, lp_array** out,
                           lp_array** log_counts) {
  return call([&] {
    if (out) *out = nullptr;
    if (log_counts) *log_counts = nullptr;
    need(m, "model");
    need(x, "x");
    need(out, "out");
    auto p = m->model.predict(to_array(x, "x"), to_array(control, "control"));
    if (m->type == "binary") {
      *out = wrap(std::move(p.logits));
    } else {
      *out = wrap(std::move(p.profile_logits));
      if (log_counts) *log_counts = wrap(std::move(p.log_counts));
    }
  });
}

void lp_attr_options_init(lp_attr_options* o) {
  if (!o) return;
  lowpass::api::AttributionOptions d;
  o->method = "grad";
  o->target = nullptr;
  o->refs = d.refs;
  o->seed = d.seed;
  o->ig_steps = d.ig_steps;
  o->ig_tolerance = d.ig_tolerance;
  o->ig_max_steps = d.ig_max_steps;
}

lp_status lp_model_attribute(lp_model* m, const lp_view* x, const lp_view* control, const lp_attr_options* o,
                             lp_array** hyp) {
  return call([&] {
    if (hyp) *hyp = nullptr;
    need(m, "model");
    need(x, "x");
    need(hyp, "hypothetical");
    lowpass::api::AttributionOptions a;
    if (o) {
      if (o->method) a.method = o->method;
      if (o->target) a.target = o->target;
      a.refs = o->refs;
      a.seed = o->seed;
      a.ig_steps = o->ig_steps;
      a.ig_tolerance = o->ig_tolerance;
      a.ig_max_steps = o->ig_max_steps;
    }
    auto r = m->model.attribute(to_array(x, "x"), a, to_array(control, "control"));
    *hyp = wrap(std::move(r.hypothetical));
  });
}

void lp_train_options_init(lp_train_options* o) {
  if (!o) return;
  o->prior = "fourier";
  o->prior_weight = -1;
  o->freq_limit = -1;
  o->softness = 0.2;
  o->smooth_sigma = 3.0;
  o->optimizer = "adam";
  o->lr = 1e-3;
  o->attribution_mode = nullptr;
  o->counts_loss_weight = -1;
  o->l2_weight = 0;
}

namespace {
lowpass::api::PriorOptions prior_of(const lp_train_options& o) {
  lowpass::api::PriorOptions p;
  if (o.prior) p.type = o.prior;
  if (!(o.prior_weight < 0)) p.weight = o.prior_weight;  // a NaN is passed on and refused, as in C++
  if (o.freq_limit >= 0) p.freq_limit = o.freq_limit;
  p.softness = !(o.softness <= 0) ? std::optional<double>(o.softness) : std::nullopt;  // NaN: refused
  p.smooth_sigma = o.smooth_sigma;
  p.l2_weight = o.l2_weight;
  if (o.attribution_mode) p.attribution_mode = o.attribution_mode;
  return p;
}
}  // namespace

lp_status lp_model_train_step(lp_model* m, const lp_view* x, const lp_view* y, const int* status,
                              const lp_view* control, const lp_train_options* o, lp_step_result* out) {
  return call([&] {
    need(m, "model");
    need(x, "x");
    need(y, "y");
    lp_train_options d;
    lp_train_options_init(&d);
    const lp_train_options& t = o ? *o : d;
    lowpass::api::TrainStepOptions so;
    so.prior = prior_of(t);
    if (t.optimizer) so.optimizer = t.optimizer;
    so.lr = t.lr;
    if (!(t.counts_loss_weight < 0)) so.counts_loss_weight = t.counts_loss_weight;  // a NaN is passed on and refused
    const auto xa = to_array(x, "x");  // shape checked before status is read
    if (xa.ndim() != 3)
      throw lowpass::api::Error("train_step: x must be (N, 4, L), got ndim " + std::to_string(x->ndim));
    std::vector<int> st;
    if (status) st.assign(status, status + xa.shape()[0]);
    auto r = m->model.train_step(xa, to_array(y, "y"), st, so, to_array(control, "control"));
    if (out) out->task = r.task, out->prior = r.prior, out->total = r.total, out->step = r.step;
  });
}

lp_status lp_fourier_prior_loss(const lp_view* attr, const int* status, int64_t freq_limit, double softness,
                                double smooth_sigma, double* loss, float* grad) {
  return call([&] {
    need(attr, "attr");
    need(loss, "loss");
    auto a = to_array(attr, "attr");
    std::vector<int> st;
    if (status && a.ndim() >= 1) st.assign(status, status + a.shape()[0]);
    lowpass::api::Array g;
    lowpass::api::PriorOptions p;
    p.type = "fourier";
    if (freq_limit >= 0) p.freq_limit = freq_limit;
    p.softness = !(softness <= 0) ? std::optional<double>(softness) : std::nullopt;  // NaN: refused
    p.smooth_sigma = smooth_sigma;
    *loss = lowpass::api::prior_loss(a, st, p, grad ? &g : nullptr);
    if (grad) std::memcpy(grad, g.data(), static_cast<size_t>(g.size()) * sizeof(float));
  });
}

}  // extern "C"
