// Checks of command-line values that need nothing but the command line: CLI11 validators whose failures main()
// reports as usage mistakes (one line with the --help hint, exit code 2; docs/cli.md). File and data errors are not
// checked here: they stay lowpass::Error (exit code 1). Test: python/tests/test_cli_errors.py
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace lowpass::tools {

// An integer >= min ("--batch: must be >= 1, got 0"; "'x' is not an integer"). A hidden option (group "", which
// CLI11 does not name in its message) passes its name as hidden_name.
CLI::Validator integer_at_least(int64_t min, const std::string& hidden_name = "");
// A number > lo ("--neg-upsample: must be > 0, got 0").
CLI::Validator number_above(double lo);
// cpu | cuda | cuda:N.
CLI::Validator device_name();
// A CUDA conv backend name (kernels/cuda/conv_backend.h).
CLI::Validator conv_backend_name();
// An attribution target (models/attr/target.h).
CLI::Validator target_name();
// --weights: best | last | a file. A bare word that is neither keyword nor an existing file ("lsat") is a usage
// mistake; a path that does not exist is left to the loader (a file error naming it).
CLI::Validator weights_choice();
// A comma-separated list of integers >= 0 ("0,5,7").
CLI::Validator index_list();

// Thrown (from a sub-command's parse-complete callback) for a combination of options that cannot work; main()
// reports it like CLI11's own errors.
inline void usage_check(bool ok, const std::string& what) {
  if (!ok) throw CLI::ValidationError(what);
}

}  // namespace lowpass::tools
