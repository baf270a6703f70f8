// Array datasets: npz ⇄ memory, checks of every field, and batches with reverse-complement copies.
// RC of x (4, L): x'[c][p] = x[3−c][L−1−p]; of a profile (T, S, O): y'[t][s][o] = y[t][S−1−s][O−1−o].
// Test: build/tests/lowpass_tests -ts=train
#include "models/data/array_dataset.h"

#include <algorithm>
#include <random>
#include <cmath>
#include <cstring>

#include "engine/error.h"
#include "engine/npz.h"

namespace lowpass {

int ArrayDataset::label_class(int64_t i) const {
  if (type != "binary") return status[static_cast<size_t>(i)] != 0 ? 1 : 0;
  const int64_t T = tasks();
  bool any_pos = false, all_zero = true;
  for (int64_t t = 0; t < T; ++t) {
    float v = y[static_cast<size_t>(i * T + t)];
    any_pos |= v == 1.f;
    all_zero &= v == 0.f;
  }
  return any_pos ? 1 : all_zero ? 0 : -1;
}

void ArrayDataset::validate_shapes_then_default_status() {
  if (status.empty() && n > 0 && static_cast<int64_t>(y.size()) == shape_numel(y_shape) && !y_shape.empty() &&
      y_shape[0] == n) {
    // Default eligibility: binary = any task positive; profile = every example (REFERENCE §1.4).
    status.assign(static_cast<size_t>(n), 1);
    if (type == "binary") {
      const int64_t T = shape_numel(y_shape) / n;
      for (int64_t i = 0; i < n; ++i) {
        bool any = false;
        for (int64_t t = 0; t < T; ++t) any |= y[static_cast<size_t>(i * T + t)] == 1.f;
        status[static_cast<size_t>(i)] = any ? 1 : 0;
      }
    }
  }
  validate();
}

void ArrayDataset::validate() const {
  const std::string& s = source;
  LP_CHECK(type == "binary" || type == "profile", s, ": unknown dataset type '", type, "'");
  LP_CHECK(n >= 1, s, ": 'x' has no examples");
  LP_CHECK(length >= 1, s, ": 'x' has length 0");
  LP_CHECK(static_cast<int64_t>(x.size()) == n * 4 * length, s, ": 'x' size mismatch");
  for (float v : x) LP_CHECK(std::isfinite(v), s, ": 'x' has a non-finite value");
  if (type == "binary") {
    LP_CHECK(y_shape.size() == 2, s, ": 'y' must be (N, T) for a binary model, got ", shape_str(y_shape));
  } else {
    LP_CHECK(y_shape.size() == 4, s, ": 'y' must be (N, T, S, O) for a profile model, got ", shape_str(y_shape));
  }
  LP_CHECK(y_shape[0] == n, s, ": 'y' has ", y_shape[0], " rows but 'x' has ", n);
  LP_CHECK(static_cast<int64_t>(y.size()) == shape_numel(y_shape), s, ": 'y' size mismatch");
  for (float v : y) {
    LP_CHECK(std::isfinite(v), s, ": 'y' has a non-finite value");
    if (type == "binary")
      LP_CHECK(v == 1.f || v == 0.f || v == -1.f, s, ": 'y' values must be 1, 0 or -1, found ", v);
    else
      LP_CHECK(v >= 0, s, ": 'y' counts must be >= 0, found ", v);
  }
  if (has_control()) {
    LP_CHECK(type == "profile", s, ": 'control' is only used by profile models");
    LP_CHECK(control_shape.size() == 4 && control_shape[0] == n &&
                 (control_shape[1] == y_shape[1] || control_shape[1] == 1) &&
                 control_shape[2] == y_shape[2] && control_shape[3] == y_shape[3],
             s, ": 'control' must be (N, T or 1, S, O) = (", n, ", ", y_shape[1], " or 1, ", y_shape[2], ", ",
             y_shape[3], "), got ", shape_str(control_shape));
    for (float v : control) LP_CHECK(std::isfinite(v) && v >= 0, s, ": 'control' counts must be finite and >= 0");
  }
  LP_CHECK(static_cast<int64_t>(status.size()) == n, s, ": 'status' has ", status.size(), " entries but 'x' has ",
           n, " rows");
  for (const auto& [k, e] : extra)
    LP_CHECK(!e.shape.empty() && static_cast<int64_t>(e.values.size()) == shape_numel(e.shape), s, ": '", k,
             "' size mismatch");
}

namespace {

// Values of any numeric npy array as float (ints exact up to 2^24, checked by the caller's range).
std::vector<float> as_floats(const npy::Array& a) {
  const int64_t n = a.numel();
  std::vector<float> v(static_cast<size_t>(n));
  const uint8_t* p = a.bytes.data();
  auto get = [&]<typename T>(T) {
    for (int64_t i = 0; i < n; ++i) {
      T t;
      std::memcpy(&t, p + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
      v[static_cast<size_t>(i)] = static_cast<float>(t);
    }
  };
  switch (a.dtype) {
    case npy::NpyDType::B1: case npy::NpyDType::U1: get(uint8_t{}); break;
    case npy::NpyDType::I1: get(int8_t{}); break;
    case npy::NpyDType::U2: get(uint16_t{}); break;
    case npy::NpyDType::I2: get(int16_t{}); break;
    case npy::NpyDType::U4: get(uint32_t{}); break;
    case npy::NpyDType::I4: get(int32_t{}); break;
    case npy::NpyDType::U8: get(uint64_t{}); break;
    case npy::NpyDType::I8: get(int64_t{}); break;
    case npy::NpyDType::F4: get(float{}); break;
    case npy::NpyDType::F8: get(double{}); break;
  }
  return v;
}

template <typename T>
npy::Array raw_array(npy::NpyDType dt, const Shape& shape, const std::vector<T>& v) {
  npy::Array a;
  a.dtype = dt;
  a.shape = shape;
  a.bytes.resize(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(a.bytes.data(), v.data(), a.bytes.size());
  return a;
}

}  // namespace

ArrayDataset read_array_dataset(const std::string& path, const std::string& model_type) {
  LP_CHECK(model_type == "binary" || model_type == "profile", path, ": unknown model type '", model_type, "'");
  auto arrays = npy::load_npz(path);
  ArrayDataset ds;
  ds.source = path;
  ds.type = model_type;
  auto need = [&](const char* k) -> const npy::Array& {
    auto it = arrays.find(k);
    LP_CHECK(it != arrays.end(), path, ": missing array '", k, "'");
    return it->second;
  };
  const npy::Array& x = need("x");
  LP_CHECK(x.dtype == npy::NpyDType::U1 || x.dtype == npy::NpyDType::B1 || x.dtype == npy::NpyDType::F4, path,
           ": 'x' must be uint8 or float32, got ", npy::npy_descr(x.dtype));
  LP_CHECK(x.shape.size() == 3 && x.shape[1] == 4, path, ": 'x' must be (N, 4, L) one-hot, got ",
           shape_str(x.shape));
  ds.n = x.shape[0];
  ds.length = x.shape[2];
  ds.x = as_floats(x);
  const npy::Array& y = need("y");
  ds.y_shape = y.shape;
  if (model_type == "binary" && y.shape.size() == 1) ds.y_shape = {y.shape[0], 1};  // (N,) = one task
  LP_CHECK(!ds.y_shape.empty() && ds.y_shape[0] == ds.n, path, ": 'y' has ",
           ds.y_shape.empty() ? 0 : ds.y_shape[0], " rows but 'x' has ", ds.n, " (shape ", shape_str(y.shape), ")");
  ds.y = as_floats(y);
  if (auto it = arrays.find("control"); it != arrays.end()) {
    ds.control_shape = it->second.shape;
    ds.control = as_floats(it->second);
  }
  if (auto it = arrays.find("status"); it != arrays.end()) {
    const npy::Array& s = it->second;
    LP_CHECK(s.shape.size() == 1 && s.shape[0] == ds.n, path, ": 'status' must be (N) = (", ds.n, "), got ",
             shape_str(s.shape));
    auto v = as_floats(s);
    ds.status.resize(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      LP_CHECK(std::isfinite(v[i]) && v[i] == std::floor(v[i]), path, ": 'status' must hold integers");
      ds.status[i] = v[i] != 0 ? 1 : 0;  // peaks are 1 + BED index in the reference: any nonzero = 1
    }
  }
  for (auto& [k, a] : arrays) {
    if (k == "x" || k == "y" || k == "control" || k == "status" || !npy::npy_is_int(a.dtype)) continue;
    ds.extra[k] = ExtraArray{a.shape, a.to_int64(path + ": '" + k + "'")};
  }
  ds.validate_shapes_then_default_status();
  return ds;
}

void write_array_dataset(const ArrayDataset& ds, const std::string& path) {
  ds.validate();
  std::vector<std::pair<std::string, npy::Array>> out;
  bool onehot = std::all_of(ds.x.begin(), ds.x.end(), [](float v) { return v == 0.f || v == 1.f; });
  if (onehot) {
    std::vector<uint8_t> xb(ds.x.size());
    for (size_t i = 0; i < xb.size(); ++i) xb[i] = ds.x[i] != 0.f;
    out.emplace_back("x", raw_array(npy::NpyDType::U1, {ds.n, 4, ds.length}, xb));
  } else {
    out.emplace_back("x", raw_array(npy::NpyDType::F4, {ds.n, 4, ds.length}, ds.x));
  }
  out.emplace_back("y", raw_array(npy::NpyDType::F4, ds.y_shape, ds.y));
  if (ds.has_control()) out.emplace_back("control", raw_array(npy::NpyDType::F4, ds.control_shape, ds.control));
  std::vector<int32_t> st(ds.status.begin(), ds.status.end());
  out.emplace_back("status", raw_array(npy::NpyDType::I4, {ds.n}, st));
  for (const auto& [k, e] : ds.extra) out.emplace_back(k, raw_array(npy::NpyDType::I8, e.shape, e.values));
  npy::save_npz(path, out);
}

namespace {

// Reverse-complement copy of one profile block (T, S, O) into dst.
void rc_profile(const float* src, float* dst, int64_t T, int64_t S, int64_t O) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t o = 0; o < O; ++o) dst[(t * S + s) * O + o] = src[(t * S + (S - 1 - s)) * O + (O - 1 - o)];
}

}  // namespace

Batch make_batch(Context& ctx, const ArrayDataset& ds, const std::vector<int64_t>& idx, bool revcomp) {
  const int64_t m = static_cast<int64_t>(idx.size()), B = revcomp ? 2 * m : m, L = ds.length;
  LP_ASSERT(m >= 1, "make_batch: empty index list");
  Batch b;
  b.x = Tensor::zeros(ctx, {B, 4, L});
  const int64_t ystride = shape_numel(ds.y_shape) / ds.n;
  Shape ys = ds.y_shape;
  ys[0] = B;
  b.y = Tensor::zeros(ctx, ys);
  int64_t cstride = 0;
  if (ds.has_control()) {
    Shape cs = ds.control_shape;
    cs[0] = B;
    b.control = Tensor::zeros(ctx, cs);
    cstride = shape_numel(ds.control_shape) / ds.n;
  }
  b.status.resize(static_cast<size_t>(B));
  float* x = b.x.data<float>();
  float* y = b.y.data<float>();
  float* c = b.control.defined() ? b.control.data<float>() : nullptr;
  for (int64_t j = 0; j < m; ++j) {
    const int64_t i = idx[static_cast<size_t>(j)];
    LP_ASSERT(i >= 0 && i < ds.n, "make_batch: index ", i, " out of range ", ds.n);
    const float* xs = ds.x.data() + i * 4 * L;
    std::copy(xs, xs + 4 * L, x + j * 4 * L);
    std::copy(ds.y.data() + i * ystride, ds.y.data() + (i + 1) * ystride, y + j * ystride);
    if (c) std::copy(ds.control.data() + i * cstride, ds.control.data() + (i + 1) * cstride, c + j * cstride);
    b.status[static_cast<size_t>(j)] = ds.status[static_cast<size_t>(i)];
    if (!revcomp) continue;
    const int64_t r = m + j;
    for (int64_t ch = 0; ch < 4; ++ch)
      for (int64_t p = 0; p < L; ++p) x[(r * 4 + ch) * L + p] = xs[(3 - ch) * L + (L - 1 - p)];
    b.status[static_cast<size_t>(r)] = b.status[static_cast<size_t>(j)];
    if (ds.type == "binary") {
      std::copy(y + j * ystride, y + (j + 1) * ystride, y + r * ystride);
    } else {
      rc_profile(ds.y.data() + i * ystride, y + r * ystride, ds.y_shape[1], ds.y_shape[2], ds.y_shape[3]);
      if (c)
        rc_profile(ds.control.data() + i * cstride, c + r * cstride, ds.control_shape[1], ds.control_shape[2],
                   ds.control_shape[3]);
    }
  }
  return b;
}

ArrayBatchSource::ArrayBatchSource(const ArrayDataset& ds, const ArraySamplerOptions& o, std::string role)
    : ds_(ds), o_(o), role_(std::move(role)) {
  LP_CHECK(o.batch_size >= 1, role_, ": batch_size must be >= 1");
  std::vector<int64_t> pos, neg;
  for (int64_t i = 0; i < ds.n; ++i) {
    const int c = o.sequential ? 1 : ds.label_class(i);  // sequential: every row, in order
    if (c == 1) pos.push_back(i);
    else if (c == 0) neg.push_back(i);
  }
  LP_CHECK(o.sequential || !pos.empty(), ds.source, ": no positive examples to sample (", role_, ")");
  sampler_ = BalancedSampler(std::move(pos), std::move(neg), o.batch_size, o.negative_ratio, o.sequential);
}

void ArrayBatchSource::start_epoch(int64_t /*epoch*/, Rng& rng) {
  sampler_.start_epoch(rng, o_.shuffle);
  cursor_ = 0;
}

Batch ArrayBatchSource::next(Context& ctx) {
  LP_CHECK(cursor_ >= 0, role_, ": next() before start_epoch()");
  LP_CHECK(cursor_ < sampler_.batches(), role_, ": next() called more than batches_per_epoch() = ",
           sampler_.batches(), " times");
  return make_batch(ctx, ds_, sampler_.batch(cursor_++), o_.revcomp);
}

SourceGeometry ArrayBatchSource::geometry() const {
  SourceGeometry g;
  g.profile = ds_.type == "profile";
  g.input_length = ds_.length;
  g.tasks = ds_.tasks();
  if (g.profile) {
    g.strands = ds_.y_shape[2];
    g.output_length = ds_.y_shape[3];
    g.control_tasks = ds_.has_control() ? ds_.control_shape[1] : 0;
  }
  return g;
}

std::string ArrayBatchSource::describe() const {
  // The role ("train", or the file itself for an evaluation split: its errors name it) and the file, once each.
  std::string s = (role_ == ds_.source ? "" : role_ + ": ") + ds_.source + ", " + std::to_string(ds_.n) +
                  " examples of length " +
                  std::to_string(ds_.length);
  if (o_.sequential) return s + ", all in order" + (o_.revcomp ? " + reverse complements" : "");
  return s + ", " + std::to_string(sampler_.positives()) + " positives / " + std::to_string(sampler_.negatives()) +
         " negatives, batches of " + std::to_string(sampler_.positives_per_batch()) + "+" +
         std::to_string(sampler_.negatives_per_batch()) +
         (o_.revcomp ? " (x2 reverse complements)" : "");
}

}  // namespace lowpass
