// Force-included before every test source (tests/meson.build): doctest 2.4 writes a char* in INFO and CHECK
// messages as a pointer ("target 0x55…", a dtype_name(t)), and its DOCTEST_CONFIG_TREAT_CHAR_STAR_AS_STRING does
// not compile in 2.4.9; these write the text.
#pragma once
#include <doctest/doctest.h>

#include <ostream>

namespace doctest::detail {
template <>
struct filldata<const char*> {
  static void fill(std::ostream* s, const char* in) { *s << (in ? in : "(null)"); }
};
template <>
struct filldata<char*> {
  static void fill(std::ostream* s, char* in) { *s << (in ? in : "(null)"); }
};
}  // namespace doctest::detail
