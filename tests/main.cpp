// doctest entry point for the whole suite: meson test (or build/tests/lowpass_tests).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
