// lowpass::Error and the checking macros used everywhere.
// User-caused problems throw Error (message names file/line/field); broken invariants use LP_ASSERT.
#pragma once
#include <locale>
#include <sstream>
#include <stdexcept>
#include <string>

namespace lowpass {

// An error a user can cause (bad file, config, shape, number). Tools print what() on one line.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// An allocation the machine cannot make (host memory); still an Error, so the tools need no second catch.
// The public API maps it to api::OutOfMemory / LP_ERR_OUT_OF_MEMORY / MemoryError.
class OutOfMemory : public Error {
 public:
  explicit OutOfMemory(const std::string& msg) : Error(msg) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  os.imbue(std::locale::classic());  // "length 1200", whatever global locale an embedding program has set
  (os << ... << args);
  return os.str();
}
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace lowpass

// Throw lowpass::Error when cond is false; the message is the concatenation of the arguments.
#define LP_CHECK(cond, ...)                                                   \
  do {                                                                        \
    if (!(cond)) throw ::lowpass::Error(::lowpass::detail::concat(__VA_ARGS__)); \
  } while (0)

// Internal invariant: aborts with the statement, file and line (never for user input).
#define LP_ASSERT(cond, ...)                                                              \
  do {                                                                                    \
    if (!(cond))                                                                          \
      ::lowpass::detail::assert_fail(#cond, __FILE__, __LINE__,                            \
                                     ::lowpass::detail::concat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
