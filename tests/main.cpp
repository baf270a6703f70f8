// doctest entry point for the whole suite: meson test (or build/tests/lowpass_tests).
// tests/doctest_text.h is force-included first, so doctest's interface is already in: DOCTEST_CONFIG_IMPLEMENT (which
// WITH_MAIN would set inside the interface part) is defined here for the second include to emit the implementation.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
