// `sparta prune`: the pruners of prune/ on an ONNX model, from the command
// line.
#pragma once

#include <CLI/CLI.hpp>

namespace sparta::tools {

// Adds the `prune` subcommand to app; its state lives as long as app.
void add_prune_command(CLI::App& app);

}  // namespace sparta::tools
