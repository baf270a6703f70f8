// Context, Rng state serialisation, assertion failure.
#include "engine/context.h"

#include <sched.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <locale>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "engine/error.h"

namespace lowpass {

namespace detail {
void assert_fail(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "lowpass: internal error: %s failed at %s:%d %s\n", expr, file, line, msg.c_str());
  std::abort();
}
}  // namespace detail

// The text is checkpoint content: in the classic locale whatever the caller's global one (a locale with digit
// grouping wrote "2.015.527..." that no other process could read back).
std::string Rng::state() const {
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os << gen_;
  return os.str();
}

void Rng::set_state(const std::string& s) {
  std::istringstream is(s);
  is.imbue(std::locale::classic());
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

namespace {
std::atomic<uint64_t> g_next_context_id{1};
std::atomic<uint64_t> g_destroyed{0};  // Contexts destroyed so far: a thread's cached answer is stale when it moves
struct Registry {
  std::mutex mu;
  std::unordered_set<uint64_t> live;
};
Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: Contexts may die during static destruction
  return *r;
}
}  // namespace

bool context_alive(uint64_t id) {
  thread_local uint64_t ok_id = 0, ok_at = ~uint64_t{0};
  const uint64_t destroyed = g_destroyed.load(std::memory_order_acquire);
  if (id == ok_id && destroyed == ok_at) return true;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!r.live.count(id)) return false;
  ok_id = id, ok_at = destroyed;
  return true;
}

Context::Context(int threads, uint64_t seed, Device device)
    : id_(g_next_context_id.fetch_add(1)), threads_(threads > 0 ? threads : hardware_threads()), device_(device),
      rng_(seed) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.live.insert(id_);
}

Context::~Context() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.live.erase(id_);
  g_destroyed.fetch_add(1, std::memory_order_release);
}

void Context::set_threads(int n) { threads_ = n > 0 ? n : hardware_threads(); }

}  // namespace lowpass
