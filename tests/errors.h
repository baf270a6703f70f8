// Error-message helpers of the doctest suites.
#pragma once
#include <string>

#include "engine/error.h"

namespace lowpass::test {

// The message of the E that f throws ("" when f throws nothing; another exception type propagates: a test failure).
template <typename E = Error, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

inline bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace lowpass::test
