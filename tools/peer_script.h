// Running a peer benchmark script (Python, with the peers installed) from
// the command line tool.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace sparta::tools {

// Runs cmd through the shell and returns the JSON object it prints on its
// last line. Throws sparta::Error "<failure>" when the command cannot start,
// exits non-zero or prints no JSON.
nlohmann::json run_peer_script(const std::string& cmd, const std::string& failure);

}  // namespace sparta::tools
