// Target seeds. Profile: seed = ℓ − mean_O ℓ, because d/dℓ_o Σ_o' (ℓ_o' − ℓ̄)·w_o' with w = log softmax ℓ
// held constant is w_o − mean w = ℓ_o − ℓ̄. Test: build/tests/lowpass_tests -ts=attr
#include "models/attr/target.h"

namespace lowpass::attr {

std::string Target::name() const {
  std::string n = kind == TargetKind::Logits ? "logits"
                  : kind == TargetKind::Profile ? "profile"
                  : kind == TargetKind::ProfileRaw ? "profile_raw"
                                                   : "counts";
  return task < 0 ? n : n + ":" + std::to_string(task);
}

Target parse_target(const std::string& s) {
  Target t;
  std::string kind = s, task;
  if (auto c = s.find(':'); c != std::string::npos) {
    kind = s.substr(0, c);
    task = s.substr(c + 1);
  }
  if (kind == "logits") t.kind = TargetKind::Logits;
  else if (kind == "profile") t.kind = TargetKind::Profile;
  else if (kind == "profile_raw") t.kind = TargetKind::ProfileRaw;
  else if (kind == "counts") t.kind = TargetKind::Counts;
  else throw Error("--target: '" + s + "' is not logits[:T], profile[:T], profile_raw[:T] or counts[:T]");
  if (!task.empty()) {
    size_t used = 0;
    try {
      t.task = std::stoll(task, &used);
    } catch (...) {
      used = 0;
    }
    LP_CHECK(used == task.size() && t.task >= 0, "--target: task '", task, "' in '", s, "' is not a task index >= 0");
  }
  return t;
}

Target default_target(const Model& m) {
  Target t;
  t.kind = m.type() == "profile" ? TargetKind::Profile : TargetKind::Logits;
  return t;
}

void check_target_output(const Tensor& y, const ModelOutput& out, const Target& t) {
  LP_CHECK(y.defined(), "target ", t.name(), ": ",
           out.logits.defined() ? "a binary model has only logits[:t]"
                                : "a profile model has no logits; its targets are profile[:t], profile_raw[:t] and "
                                  "counts[:t]");
}

std::pair<Tensor, Tensor> target_seed(const ModelOutput& out, const Target& t) {
  NoGradGuard ng;
  Tensor y;
  switch (t.kind) {
    case TargetKind::Logits: y = out.logits; break;
    case TargetKind::Profile:
    case TargetKind::ProfileRaw: y = out.profile_logits; break;
    case TargetKind::Counts: y = out.log_counts; break;
  }
  check_target_output(y, out, t);
  const int64_t T = y.size(1);
  LP_CHECK(t.task < T, "target ", t.name(), ": task ", t.task, " out of range (the model has ", T, " tasks)");
  Tensor seed;
  if (t.kind == TargetKind::Profile) {
    Tensor yd = y.detach();
    seed = sub(yd, mean(yd, {-1}, true));
  } else {
    seed = Tensor::ones(y.ctx(), y.shape(), y.dtype(), y.device());
  }
  if (t.task >= 0) {  // zero the other tasks
    std::vector<double> m(static_cast<size_t>(T), 0.0);
    m[static_cast<size_t>(t.task)] = 1.0;
    Shape ms(y.dim(), 1);
    ms[1] = T;
    Tensor mask = Tensor::from_vector(y.ctx(), ms, m);
    if (mask.dtype() != y.dtype()) mask = cast(mask, y.dtype());
    if (!y.is_cpu()) mask = mask.to(y.device());
    seed = mul(seed, mask);
  }
  return {y, seed};
}

std::vector<double> target_value(const Tensor& output, const Tensor& seed) {
  NoGradGuard ng;
  const int64_t B = output.size(0), per = output.numel() / std::max<int64_t>(B, 1);
  auto o = output.to_vector<double>(), s = seed.to_vector<double>();
  std::vector<double> v(B, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < per; ++i) v[b] += o[b * per + i] * s[b * per + i];
  return v;
}

}  // namespace lowpass::attr
