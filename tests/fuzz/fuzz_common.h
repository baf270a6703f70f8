// Shared helpers of the libFuzzer targets: a per-process scratch folder on a RAM disk when there is
// one, writing an input to a file there, and the rule that a parser may only throw lowpass::Error.
// Build: CXX=clang++ meson setup build-fuzz -Dfuzz=true -Dcuda=disabled -Db_sanitize=address,undefined -Db_lundef=false; run: scripts/fuzz.sh
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/error.h"
#include "models/data/fasta.h"  // ChromSizes

namespace lowpass::fuzz {

// Scratch folder (created once per process, removed at exit by the OS's tmp cleaner / scripts/fuzz.sh).
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("lowpass-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir;
}

// Writes bytes to scratch_dir()/name and returns the path.
inline std::string write_input(const std::string& name, const uint8_t* data, size_t size) {
  std::string path = scratch_dir() + "/" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// The genome the BED and folds targets check against: chr1 (1,000 bp), chr2 (500), chrX (10).
inline const ChromSizes& three_chroms() {
  static const ChromSizes g = [] {
    ChromSizes c;
    c.add("chr1", 1000);
    c.add("chr2", 500);
    c.add("chrX", 10);
    return c;
  }();
  return g;
}

}  // namespace lowpass::fuzz

// Runs `body`; lowpass::Error is the expected answer to a bad input, anything else escapes and is
// reported by libFuzzer as a crash (an uncaught std::out_of_range, json::type_error, bad_alloc ...).
#define LP_FUZZ_EXPECT_ERROR(body) \
  do {                             \
    try {                          \
      body;                        \
    } catch (const ::lowpass::Error&) {   \
    }                              \
  } while (0)
