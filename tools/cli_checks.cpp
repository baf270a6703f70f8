// Command-line value checks (tools/cli_checks.h): each validator returns "" or what is wrong; CLI11 prefixes the
// option's name. Test: python/tests/test_cli_errors.py
#include "tools/cli_checks.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "engine/context.h"
#include "engine/error.h"
#include "kernels/cuda/conv_backend.h"
#include "models/attr/target.h"

namespace lowpass::tools {

namespace {
// The library's message without a leading "<flag>: " (CLI11 adds the option's name itself).
std::string without_prefix(std::string msg, const std::string& flag) {
  if (msg.rfind(flag + ": ", 0) == 0) msg.erase(0, flag.size() + 2);
  return msg;
}
// A validator from a library parser that throws Error for a bad value: the parser's message, without "<flag>: ".
template <class Parse>
CLI::Validator from_parser(Parse parse, const std::string& flag) {
  return CLI::Validator(
      [parse, flag](std::string& s) -> std::string {
        try {
          parse(s);
        } catch (const Error& e) {
          return without_prefix(e.what(), flag);
        }
        return "";
      },
      "");
}
bool parse_integer(const std::string& s, int64_t& v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}
}  // namespace

CLI::Validator integer_at_least(int64_t min, const std::string& hidden_name) {
  // CLI11 names the option in its message, except a hidden one (group ""): such an option passes its name here.
  const std::string who = hidden_name.empty() ? "" : hidden_name + ": ";
  return CLI::Validator(
      [min, who](std::string& s) -> std::string {
        int64_t v = 0;
        if (!parse_integer(s, v)) return who + "'" + s + "' is not an integer";
        if (v < min) return who + "must be >= " + std::to_string(min) + ", got " + s;
        return "";
      },
      "");
}

CLI::Validator number_above(double lo) {
  return CLI::Validator(
      [lo](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) return "'" + s + "' is not a number";
        if (!(v > lo)) {
          std::ostringstream o;
          o << "must be > " << lo << ", got " << s;
          return o.str();
        }
        return "";
      },
      "");
}

CLI::Validator device_name() {
  return from_parser([](const std::string& s) { (void)parse_device(s, "--device"); }, "--device");
}

CLI::Validator conv_backend_name() {
  return from_parser([](const std::string& s) { (void)cuda::parse_conv_backend(s, "--cuda-conv"); }, "--cuda-conv");
}

CLI::Validator target_name() {
  return from_parser([](const std::string& s) { (void)attr::parse_target(s); }, "--target");
}

CLI::Validator weights_choice() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        if (s == "best" || s == "last" || s.find('/') != std::string::npos || s.find('.') != std::string::npos ||
            std::filesystem::exists(s))
          return "";
        return "'" + s + "' is neither best, last nor a .safetensors file";
      },
      "");
}

CLI::Validator index_list() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        std::stringstream ss(s);
        std::string item;
        while (std::getline(ss, item, ',')) {
          int64_t v = 0;
          if (item.empty()) continue;
          if (!parse_integer(item, v) || v < 0) return "'" + item + "' in '" + s + "' is not an index >= 0";
        }
        return "";
      },
      "");
}

}  // namespace lowpass::tools
