// Stopping predict/attribute between batches on SIGINT/SIGTERM (tools/interrupt.h).
// Test: python/tests/test_cli_errors.py
#include "tools/interrupt.h"

#include <csignal>

namespace lowpass::tools {

namespace {
volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_signal(int sig) {
  g_signal = sig;
  std::signal(sig, SIG_DFL);  // a second signal: the default action (stop at once)
}
}  // namespace

Interrupted::Interrupted(int sig)
    : signal(sig),
      msg("interrupted by signal " + std::to_string(sig) +
          (sig == SIGINT ? " (SIGINT)" : sig == SIGTERM ? " (SIGTERM)" : "") +
          "; the output being written was removed, files finished before it were kept") {}

StopOnSignal::StopOnSignal() {
  g_signal = 0;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

StopOnSignal::~StopOnSignal() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

void throw_if_interrupted() {
  if (g_signal != 0) throw Interrupted(g_signal);
}

}  // namespace lowpass::tools
