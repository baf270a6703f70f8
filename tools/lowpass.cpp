// The lowpass command-line program: sub-commands simulate, train, demo, predict, attribute, evaluate, report, data-stats,
// export.
// Each sub-command lives in tools/cmd_<name>.cpp; errors become one line on stderr: exit code 2 for a usage
// mistake on the command line (CLI11's parse errors, the validators of tools/cli_checks.h and the combination checks
// of each sub-command's parse-complete callback), 1 for anything else (files, configs, training), 128 + signal for a
// predict/attribute stopped by SIGINT/SIGTERM (tools/interrupt.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/runtime.h"
#include "tools/commands.h"
#include "tools/interrupt.h"
namespace lowpass::tools {  // attribution/evaluation commands (tools/cmd_{predict,attribute,evaluate,report}.cpp)
CommandRun add_predict_command(CLI::App& app);
CommandRun add_attribute_command(CLI::App& app);
CommandRun add_evaluate_command(CLI::App& app);
CommandRun add_report_command(CLI::App& app);
CommandRun add_data_stats_command(CLI::App& app);  // tools/cmd_data_stats.cpp (genome data)
CommandRun add_export_command(CLI::App& app);      // tools/cmd_export.cpp (a config's split as an npz)
CommandRun add_variants_command(CLI::App& app);    // tools/cmd_variants.cpp (VCF variant effect scores)
CommandRun add_marginalize_command(CLI::App& app);  // tools/cmd_marginalize.cpp (motif effects, footprints)
}  // namespace lowpass::tools

int main(int argc, char** argv) {
  using namespace lowpass::tools;
  lowpass::cpu::stop_blas_threads();  // OpenBLAS's idle workers would spin ~0.1 s of CPU beside ours (gemm.h)
  CLI::App app{"lowpass: train DNA-sequence models with the Fourier attribution prior"};
  app.set_version_flag("--version", std::string("lowpass ") + LOWPASS_VERSION +
                                        (lowpass::cuda::compiled() ? " (CUDA backend compiled)" : " (CPU only)"));
  app.require_subcommand(0, 1);
  // --help shows each option's default (sub-commands copy these settings when they are added); options whose
  // default is a "not given" sentinel hide it with default_str("").
  app.option_defaults()->always_capture_default();
  std::vector<std::pair<std::string, CommandRun>> commands = {
      {"simulate", add_simulate_command(app)},
      {"train", add_train_command(app)},
      {"demo", add_demo_command(app)},
      {"predict", add_predict_command(app)}, {"attribute", add_attribute_command(app)},
      {"evaluate", add_evaluate_command(app)}, {"report", add_report_command(app)},
      {"data-stats", add_data_stats_command(app)}, {"export", add_export_command(app)},
      {"variants", add_variants_command(app)}, {"marginalize", add_marginalize_command(app)},
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // A usage mistake (unknown option, missing value, bad number or choice): one line, exit code 2.
    std::string what = e.what();  // a hidden option's message has no name before its ": " (cli_checks.h)
    if (what.rfind(": ", 0) == 0) what.erase(0, 2);
    std::fprintf(stderr, "lowpass: error: %s (lowpass%s --help lists the options)\n", what.c_str(),
                 app.get_subcommands().empty() ? "" : (" " + app.get_subcommands().front()->get_name()).c_str());
    return 2;
  }
  try {
    for (auto& [name, run] : commands)
      if (app.got_subcommand(name)) return run();
  } catch (const Interrupted& e) {
    std::fprintf(stderr, "lowpass: error: %s\n", e.what());
    return 128 + e.signal;
  } catch (const lowpass::Error& e) {
    std::fprintf(stderr, "lowpass: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowpass: error: %s\n", e.what());
    return 1;
  }
  std::cout << app.help();
  return 0;
}
