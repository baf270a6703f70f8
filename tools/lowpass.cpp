// The lowpass command-line program: sub-commands simulate/train/predict/attribute/evaluate/report.
// Each sub-command lives in tools/cmd_<name>.cpp; errors become one line on stderr and exit 1.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "engine/error.h"
#include "kernels/cuda/runtime.h"

int main(int argc, char** argv) {
  CLI::App app{"lowpass: train DNA-sequence models with the Fourier attribution prior"};
  app.set_version_flag("--version", std::string("lowpass ") + LOWPASS_VERSION +
                                        (lowpass::cuda::compiled() ? " (CUDA backend compiled)" : " (CPU only)"));
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lowpass::Error& e) {
    std::fprintf(stderr, "lowpass: error: %s\n", e.what());
    return 1;
  }
  if (app.get_subcommands().empty()) {
    std::cout << app.help();
    return 0;
  }
  return 0;
}
