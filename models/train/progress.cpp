// Terminal progress bar: "label [#####.....] 512/1024 ex  85.3 ex/s  ETA 00:06  loss 0.53".
// Redrawn in place at most 10 times a second on a TTY; periodic plain lines otherwise.
// Test: build/tests/lowpass_tests -ts=train
#include "models/train/progress.h"

#include <unistd.h>

#include <cmath>

namespace lowpass {

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled, std::FILE* out,
                   double period_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled),
      out_(out ? out : stderr), period_s_(period_s) {
  tty_ = isatty(fileno(out_)) != 0;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  if (!finished_ && enabled_ && tty_ && done_ > 0) std::fputc('\n', out_);
}

double Progress::rate() const {
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return el > 0 ? static_cast<double>(done_ - base_) / el : 0.0;
}

void Progress::start_at(int64_t n) {
  done_ = base_ = n;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

std::string Progress::format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  int64_t t = static_cast<int64_t>(std::llround(s));
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  return buf;
}

std::string Progress::bar(double f, int width) {
  f = std::fmin(1.0, std::fmax(0.0, f));
  int full = static_cast<int>(std::floor(f * width));
  return std::string(static_cast<size_t>(full), '#') + std::string(static_cast<size_t>(width - full), '.');
}

void Progress::update(int64_t n, const std::string& status) {
  done_ += n;
  if (!status.empty()) status_ = status;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if ((tty_ && since >= 0.1) || (!tty_ && since >= period_s_)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish(const std::string& status) {
  if (!status.empty()) status_ = status;
  if (enabled_ && !finished_) draw(true);
  finished_ = true;
}

void Progress::draw(bool final_line) {
  double r = rate();
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string count = std::to_string(done_) + (total_ > 0 ? "/" + std::to_string(total_) : "") + " " + unit_;
  char rate_s[64];
  std::snprintf(rate_s, sizeof rate_s, "%.1f %s/s", r, unit_.c_str());
  std::string time_s = final_line || total_ <= 0 || r <= 0
                           ? "in " + format_duration(el)
                           : "ETA " + format_duration(static_cast<double>(total_ - done_) / r);
  std::string line = label_ + " ";
  if (total_ > 0) line += "[" + bar(static_cast<double>(done_) / static_cast<double>(total_), 24) + "] ";
  line += count + "  " + rate_s + "  " + time_s;
  if (!status_.empty()) line += "  " + status_;
  if (tty_)
    std::fprintf(out_, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  else
    std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

}  // namespace lowpass
