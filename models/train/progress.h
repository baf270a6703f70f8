// Terminal progress bar with rate and ETA on stderr; when stderr is not a TTY it prints one plain
// line every `period_s` seconds (and at the end) instead. rate = items / elapsed, ETA = left / rate.
// Test: build/tests/lowpass_tests -ts=train
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace lowpass {

class Progress {
 public:
  // total items (0 = unknown); unit e.g. "ex" (examples); out defaults to stderr.
  Progress(std::string label, int64_t total, std::string unit, bool enabled = true,
           std::FILE* out = nullptr, double period_s = 30.0);
  ~Progress();
  // Advance by n items; `status` is shown after the bar (e.g. "loss 0.53").
  void update(int64_t n, const std::string& status = "");
  // Items already done before this bar started (e.g. a resumed epoch's earlier batches): shown in the count,
  // left out of the rate and the ETA. Call before the first update.
  void start_at(int64_t n);
  void finish(const std::string& status = "");
  double rate() const;  // items per second so far (items since start_at)
  // Formats, exposed for tests: "1:02:03" / "02:03"; a bar of `width` cells.
  static std::string format_duration(double seconds);
  static std::string bar(double fraction, int width);

 private:
  void draw(bool final_line);
  std::string label_, unit_, status_;
  int64_t total_, done_ = 0, base_ = 0;
  bool enabled_, tty_, finished_ = false;
  std::FILE* out_;
  double period_s_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lowpass
