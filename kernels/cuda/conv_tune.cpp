// The plain-C++ part of the `tune` conv backend (kernels/cuda/conv_tune.h): route names, shape keys, the choice
// among timed candidates and the process-wide table of choices. Built with and without CUDA.
// Test: build/tests/lowpass_tests -tc='*conv tune*'.
#include "kernels/cuda/conv_tune.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>

#include "engine/error.h"

namespace lowpass::cuda {

const char* conv_route_name(ConvRoute r) {
  switch (r) {
    case ConvRoute::Direct: return "direct";
    case ConvRoute::Tiled: return "tiled";
    case ConvRoute::TiledPipelined: return "tiled-pipelined";
    case ConvRoute::Narrow: return "narrow";
    case ConvRoute::Taps: return "taps";
    case ConvRoute::Cudnn: return "cudnn";
    case ConvRoute::Im2col: break;
  }
  return "im2col";
}

const char* conv_dir_name(ConvDir d) {
  switch (d) {
    case ConvDir::BwdInput: return "input-grad";
    case ConvDir::BwdWeight: return "weight-grad";
    case ConvDir::Fwd: break;
  }
  return "forward";
}

std::string ConvTuneKey::describe() const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s B %lld G %lld C %lld O %lld Lin %lld Lout %lld K %lld d %lld p %lld %s%s%s",
                conv_dir_name(dir), static_cast<long long>(B), static_cast<long long>(G), static_cast<long long>(C),
                static_cast<long long>(O), static_cast<long long>(Lin), static_cast<long long>(Lout),
                static_cast<long long>(K), static_cast<long long>(d), static_cast<long long>(p),
                dtype_bytes == 8 ? "float64" : "float32", gemm_math == 1 ? " tf32" : gemm_math == 2 ? " bf16" : "",
                bias ? " +bias" : "");
  return buf;
}

int conv_tune_pick(const std::vector<ConvTrial>& trials) {
  int best = -1;
  for (size_t i = 0; i < trials.size(); ++i) {
    const ConvTrial& t = trials[i];
    if (!t.ran || !t.agrees) continue;
    if (best < 0 || t.ms < trials[static_cast<size_t>(best)].ms) best = static_cast<int>(i);
  }
  return best;
}

bool conv_tune_output_is(const std::vector<ConvTrial>& trials, int pick, ConvRoute stored) {
  if (pick < 0 || static_cast<size_t>(pick) + 1 != trials.size()) return false;
  const ConvTrial& t = trials[static_cast<size_t>(pick)];
  return t.ran && t.route == stored;
}

bool conv_tune_rethrows(const std::vector<ConvTrial>& earlier) {
  return std::none_of(earlier.begin(), earlier.end(), [](const ConvTrial& t) { return t.ran; });
}

int conv_tune_reference(const std::vector<ConvTrial>& trials, const ConvTuneKey& key) {
  for (size_t i = 0; i < trials.size(); ++i)
    if (trials[i].ran) return static_cast<int>(i);
  throw Error(::lowpass::detail::concat("conv tune: every route declined ", key.describe(), " (", trials.size(),
                                        " tried)"));
}

double conv_tune_median(std::vector<double> ms) {
  if (ms.empty()) return 0;
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  return n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
}

namespace {
std::mutex& table_mutex() {
  static std::mutex mu;
  return mu;
}
// Entries are held by pointer so that conv_tune_find's answer stays valid while others are added (conv_tune_reset
// aside, which only tests call).
std::map<ConvTuneKey, std::unique_ptr<ConvTuneEntry>>& table() {
  static auto* t = new std::map<ConvTuneKey, std::unique_ptr<ConvTuneEntry>>;
  return *t;
}
}  // namespace

const ConvTuneEntry* conv_tune_find(const ConvTuneKey& key) {
  std::lock_guard<std::mutex> lock(table_mutex());
  auto it = table().find(key);
  return it == table().end() ? nullptr : it->second.get();
}

const ConvTuneEntry& conv_tune_store(ConvTuneEntry e) {
  std::lock_guard<std::mutex> lock(table_mutex());
  auto& slot = table()[e.key];
  if (!slot) slot = std::make_unique<ConvTuneEntry>(std::move(e));
  return *slot;
}

std::vector<ConvTuneEntry> conv_tune_entries() {
  std::lock_guard<std::mutex> lock(table_mutex());
  std::vector<ConvTuneEntry> out;
  for (const auto& [k, e] : table()) out.push_back(*e);
  return out;
}

std::string conv_tune_report() {
  std::string s;
  for (const ConvTuneEntry& e : conv_tune_entries()) {
    s += e.key.describe() + ": " + conv_route_name(e.chosen) + " (";
    bool first = true;
    for (const ConvTrial& t : e.trials) {
      char buf[96];
      if (!t.ran)
        std::snprintf(buf, sizeof buf, "%s declined", conv_route_name(t.route));
      else if (!t.agrees)
        std::snprintf(buf, sizeof buf, "%s disagrees, rel %.2g", conv_route_name(t.route), t.rel_diff);
      else
        std::snprintf(buf, sizeof buf, "%s %.4f ms", conv_route_name(t.route), t.ms);
      s += (first ? "" : ", ") + std::string(buf);
      first = false;
    }
    s += ")\n";
  }
  return s;
}

void conv_tune_reset() {
  std::lock_guard<std::mutex> lock(table_mutex());
  table().clear();
}

}  // namespace lowpass::cuda
