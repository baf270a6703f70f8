// Context: the only place for "global" state — thread count, RNG, device, CUDA handles.
// Every tensor points at the Context that created it; ops run with their first input's Context.
#pragma once
#include <cstdint>
#include <memory>
#include <random>
#include <string>

namespace lowpass {

enum class DeviceKind : uint8_t { CPU = 0, CUDA = 1 };

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;
  bool operator==(const Device&) const = default;
  bool is_cpu() const { return kind == DeviceKind::CPU; }
  bool is_cuda() const { return kind == DeviceKind::CUDA; }
};

// "cpu", "cuda" (= cuda:0) or "cuda:N"; anything else throws Error naming `what` (a flag or config key).
Device parse_device(const std::string& text, const std::string& what);
std::string device_str(Device d);  // inverse of parse_device ("cpu", "cuda:0")

struct CudaState;  // streams, cuBLAS/cuFFT handles, caching allocator (kernels/cuda)

// Seeded random stream. Philox-free and simple: a 64-bit Mersenne twister, serialisable for resume.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : gen_(seed) {}
  void seed(uint64_t s) { gen_.seed(s); }
  double uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(gen_); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal() { return std::normal_distribution<double>(0.0, 1.0)(gen_); }
  int64_t randint(int64_t lo, int64_t hi_exclusive) {  // [lo, hi)
    return std::uniform_int_distribution<int64_t>(lo, hi_exclusive - 1)(gen_);
  }
  uint64_t next_u64() { return gen_(); }
  std::mt19937_64& engine() { return gen_; }
  std::string state() const;            // text form, for checkpoints
  void set_state(const std::string& s);  // throws Error on a malformed state

 private:
  std::mt19937_64 gen_;
};

// A seed for item b of stream a (SplitMix64 finaliser over a + golden-ratio·(b + 1)): per-batch and per-example
// generators that do not depend on the order in which items are made (prefetch threads, resume).
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Context {
 public:
  explicit Context(int threads = 0, uint64_t seed = 0, Device device = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  // A Context must outlive every tensor made with it: tensors hold a plain pointer to it. Each Context has a
  // process-unique id, registered while it lives; Tensor::ctx() checks the id the tensor recorded
  // (context_alive), so a tensor used after its Context is gone throws an Error instead of running on freed state
  // (in a test, a batch whose Context had gone out of scope gave silently different numbers in one build only).
  uint64_t id() const { return id_; }

  int threads() const { return threads_; }
  void set_threads(int n);
  Device device() const { return device_; }
  Rng& rng() { return rng_; }
  // CUDA streams/handles/allocator, created by kernels/cuda on first use (null on CPU-only runs).
  CudaState* cuda_state() const { return cuda_.get(); }
  void set_cuda_state(std::shared_ptr<CudaState> s) { cuda_ = std::move(s); }

 private:
  uint64_t id_;
  int threads_;
  Device device_;
  Rng rng_;
  std::shared_ptr<CudaState> cuda_;
};

// Whether the Context with this id still lives. One atomic load when nothing was destroyed since this thread's
// last check of the same id; otherwise a look-up under a mutex.
bool context_alive(uint64_t id);

// Number of usable hardware threads (cgroup-aware via std::thread + sched affinity).
int hardware_threads();

}  // namespace lowpass
