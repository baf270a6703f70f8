// The nanobind extension `lowpass._lowpass` over the public C++ API (include/lowpass/lowpass.h):
// float32 C-contiguous NumPy inputs are read in place; outputs are NumPy arrays over the engine's memory.
// Test: scripts/test_python.sh (pytest python/tests); python/lowpass/__init__.py is the documented surface.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "lowpass/lowpass.h"

namespace nb = nanobind;
namespace api = lowpass::api;

using InArray = nb::ndarray<const float, nb::c_contig, nb::device::cpu>;
using OutArray = nb::ndarray<nb::numpy, float>;

namespace {

api::Array in(const InArray& a) {
  std::vector<int64_t> shape(a.ndim());
  for (size_t i = 0; i < a.ndim(); ++i) shape[i] = static_cast<int64_t>(a.shape(i));
  return api::Array::view(a.data(), std::move(shape));
}
api::Array in_opt(const std::optional<InArray>& a) { return a ? in(*a) : api::Array(); }

// A NumPy array over the Array's memory; the capsule keeps the Array (and so its owner) alive.
nb::object out(const api::Array& a) {
  if (a.empty()) return nb::none();
  auto* keep = new api::Array(a);
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<api::Array*>(p); });
  std::vector<size_t> shape(a.shape().begin(), a.shape().end());
  return nb::cast(OutArray(keep->mutable_data(), shape.size(), shape.data(), owner));
}

api::TrainStepOptions step_options(const std::string& prior, std::optional<double> weight,
                                   std::optional<int64_t> freq_limit, std::optional<double> softness,
                                   double smooth_sigma, double l2_weight, const std::string& attribution_mode,
                                   const std::string& optimizer, double lr, double counts_loss_weight) {
  api::TrainStepOptions o;
  o.prior.type = prior;
  o.prior.weight = weight;
  o.prior.freq_limit = freq_limit;
  o.prior.softness = softness;
  o.prior.smooth_sigma = smooth_sigma;
  o.prior.l2_weight = l2_weight;
  o.prior.attribution_mode = attribution_mode;
  o.optimizer = optimizer;
  o.lr = lr;
  o.counts_loss_weight = counts_loss_weight;
  return o;
}

nb::dict step_dict(const api::StepResult& r) {
  nb::dict d;
  d["task"] = r.task, d["prior"] = r.prior, d["total"] = r.total, d["step"] = r.step;
  return d;
}

}  // namespace

NB_MODULE(_lowpass, m) {
  m.doc() = "lowpass engine bindings (use the `lowpass` package, not this module directly)";
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const api::OutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const api::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.attr("__version__") = api::version();
  m.def("version_string", &api::version_string);

  nb::class_<api::Model>(m, "Model")
      .def_static(
          "load",
          [](const std::string& path, const std::string& config, const std::string& weights, int threads) {
            api::LoadOptions o;
            o.config = config, o.weights = weights, o.threads = threads;
            nb::gil_scoped_release r;
            return api::Model::load(path, o);
          },
          nb::arg("path"), nb::arg("config") = "", nb::arg("weights") = "best", nb::arg("threads") = 0)
      .def_static("create", &api::Model::create, nb::arg("model_config_json"), nb::arg("seed") = 0,
                  nb::arg("threads") = 0)
      .def("save", &api::Model::save, nb::arg("dir"))
      .def("save_weights", &api::Model::save_weights, nb::arg("path"))
      .def("save_checkpoint", &api::Model::save_checkpoint, nb::arg("path"))
      .def("resume", &api::Model::resume, nb::arg("checkpoint_path"))
      .def_prop_ro("type", &api::Model::type)
      .def_prop_ro("dtype", &api::Model::dtype)
      .def_prop_ro("input_length", &api::Model::input_length)
      .def_prop_ro("output_length", &api::Model::output_length)
      .def_prop_ro("tasks", &api::Model::tasks)
      .def_prop_ro("strands", &api::Model::strands)
      .def_prop_ro("uses_control", &api::Model::uses_control)
      .def_prop_ro("config_json", &api::Model::config_json)
      .def("parameter_names", &api::Model::parameter_names)
      .def("parameter", [](const api::Model& self, const std::string& n) { return out(self.parameter(n)); })
      .def("set_threads", &api::Model::set_threads)
      .def(
          "predict",
          [](const api::Model& self, const InArray& x, std::optional<InArray> control, int64_t batch) {
            api::Predictions p;
            {
              nb::gil_scoped_release r;
              p = self.predict(in(x), in_opt(control), batch);
            }
            if (self.type() == "binary") return out(p.logits);
            return nb::object(nb::make_tuple(out(p.profile_logits), out(p.log_counts)));
          },
          nb::arg("x"), nb::arg("control") = nb::none(), nb::arg("batch") = 64)
      .def(
          "attribute",
          [](const api::Model& self, const InArray& x, const std::string& method, const std::string& target,
             int64_t refs, uint64_t seed, int64_t first_index, int64_t ig_steps, double ig_tolerance,
             int64_t ig_max_steps, int64_t batch, int64_t max_batch, std::optional<InArray> control) {
            api::AttributionOptions o;
            o.method = method, o.target = target, o.refs = refs, o.seed = seed, o.first_index = first_index;
            o.ig_steps = ig_steps, o.ig_tolerance = ig_tolerance, o.ig_max_steps = ig_max_steps;
            o.batch = batch, o.max_batch = max_batch;
            api::Attributions a;
            {
              nb::gil_scoped_release r;
              a = self.attribute(in(x), o, in_opt(control));
            }
            nb::dict d;
            d["hypothetical"] = out(a.hypothetical), d["actual"] = out(a.actual);
            d["delta"] = a.delta, d["delta_relative"] = a.delta_relative, d["ig_steps"] = a.ig_steps;
            return d;
          },
          nb::arg("x"), nb::arg("method") = "grad", nb::arg("target") = "", nb::arg("refs") = -1,
          nb::arg("seed") = 20200219, nb::arg("first_index") = 0, nb::arg("ig_steps") = 50,
          nb::arg("ig_tolerance") = 0.05, nb::arg("ig_max_steps") = 450, nb::arg("batch") = 16,
          nb::arg("max_batch") = 64, nb::arg("control") = nb::none())
      .def(
          "train_step",
          [](api::Model& self, const InArray& x, const InArray& y, const std::vector<int>& status,
             std::optional<InArray> control, bool update, const std::string& prior, std::optional<double> weight,
             std::optional<int64_t> freq_limit, std::optional<double> softness, double smooth_sigma, double l2_weight,
             const std::string& attribution_mode, const std::string& optimizer, double lr, double counts_loss_weight) {
            auto o = step_options(prior, weight, freq_limit, softness, smooth_sigma, l2_weight, attribution_mode,
                                  optimizer, lr, counts_loss_weight);
            api::StepResult r;
            {
              nb::gil_scoped_release g;
              r = update ? self.train_step(in(x), in(y), status, o, in_opt(control))
                         : self.losses(in(x), in(y), status, o, in_opt(control));
            }
            return step_dict(r);
          },
          nb::arg("x"), nb::arg("y"), nb::arg("status"), nb::arg("control").none(), nb::arg("update"),
          nb::arg("prior"), nb::arg("weight").none(), nb::arg("freq_limit").none(), nb::arg("softness").none(),
          nb::arg("smooth_sigma"), nb::arg("l2_weight"), nb::arg("attribution_mode"), nb::arg("optimizer"),
          nb::arg("lr"), nb::arg("counts_loss_weight"));

  m.def(
      "prior_loss",
      [](const InArray& attr, const std::vector<int>& status, const std::string& type, std::optional<int64_t> freq_limit,
         std::optional<double> softness, double smooth_sigma, bool with_grad) {
        api::PriorOptions p;
        p.type = type, p.freq_limit = freq_limit, p.softness = softness, p.smooth_sigma = smooth_sigma;
        api::Array g;
        double v;
        {
          nb::gil_scoped_release r;
          v = api::prior_loss(in(attr), status, p, with_grad ? &g : nullptr);
        }
        if (!with_grad) return nb::object(nb::float_(v));
        return nb::object(nb::make_tuple(v, out(g)));
      },
      nb::arg("attr"), nb::arg("status"), nb::arg("type"), nb::arg("freq_limit").none(), nb::arg("softness").none(),
      nb::arg("smooth_sigma"), nb::arg("with_grad"));
}
