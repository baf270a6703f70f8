// SIGINT/SIGTERM in the commands that stream outputs (predict, attribute): the signal sets a flag, the command checks
// it between batches and throws Interrupted, and unwinding removes the temporary files of the writes in progress
// (safetensors::AtomicFile), so no `<file>.tmp.<pid>.<n>` is left behind. A second signal stops at once.
// main() reports Interrupted as one line and exit code 128 + signal. Test: python/tests/test_cli_errors.py
#pragma once
#include <exception>
#include <string>

namespace lowpass::tools {

struct Interrupted : std::exception {
  explicit Interrupted(int sig);
  const char* what() const noexcept override { return msg.c_str(); }
  int signal;
  std::string msg;
};

// While alive: SIGINT and SIGTERM set the flag that throw_if_interrupted() reads; on destruction the default actions
// come back.
class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
};

// Throws Interrupted when a signal arrived since the StopOnSignal was made.
void throw_if_interrupted();

}  // namespace lowpass::tools
