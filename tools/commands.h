// Sub-commands of the lowpass program: each add_<name>_command registers its options on `app` and
// returns the function that runs it (exit code). One file per sub-command: tools/cmd_<name>.cpp.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>

namespace lowpass::tools {

using CommandRun = std::function<int()>;

CommandRun add_simulate_command(CLI::App& app);
CommandRun add_train_command(CLI::App& app);
CommandRun add_demo_command(CLI::App& app);

}  // namespace lowpass::tools
