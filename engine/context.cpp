// Context, Rng state serialisation, assertion failure.
#include "engine/context.h"

#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "engine/error.h"

namespace lowpass {

namespace detail {
void assert_fail(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "lowpass: internal error: %s failed at %s:%d %s\n", expr, file, line, msg.c_str());
  std::abort();
}
}  // namespace detail

std::string Rng::state() const {
  std::ostringstream os;
  os << gen_;
  return os.str();
}

void Rng::set_state(const std::string& s) {
  std::istringstream is(s);
  std::mt19937_64 g;
  is >> g;
  LP_CHECK(!is.fail(), "RNG state: malformed (", s.size(), " characters)");
  gen_ = g;
}

int hardware_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

Device parse_device(const std::string& text, const std::string& what) {
  if (text == "cpu") return Device{};
  if (text == "cuda") return Device{DeviceKind::CUDA, 0};
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() <= 8 &&
      text.find_first_not_of("0123456789", 5) == std::string::npos)
    return Device{DeviceKind::CUDA, std::stoi(text.substr(5))};
  throw Error(what + ": expected cpu, cuda or cuda:N, got \"" + text + "\"");
}

std::string device_str(Device d) { return d.is_cpu() ? "cpu" : "cuda:" + std::to_string(d.index); }

Context::Context(int threads, uint64_t seed, Device device)
    : threads_(threads > 0 ? threads : hardware_threads()), device_(device), rng_(seed) {}

Context::~Context() = default;

void Context::set_threads(int n) { threads_ = n > 0 ? n : hardware_threads(); }

}  // namespace lowpass
