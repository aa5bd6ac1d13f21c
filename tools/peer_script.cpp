#include "tools/peer_script.h"

#include <cstdio>

#include "core/error.h"

namespace sparta::tools {

nlohmann::json run_peer_script(const std::string& cmd, const std::string& failure) {
  FILE* p = popen(cmd.c_str(), "r");
  SPARTA_CHECK(p != nullptr, failure);
  std::string text;
  char buf[4096];
  while (size_t got = fread(buf, 1, sizeof buf, p)) text.append(buf, got);
  const int status = pclose(p);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const size_t line = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
  SPARTA_CHECK(status == 0 && line < text.size() && text[line] == '{', failure);
  try {
    return nlohmann::json::parse(text.substr(line));
  } catch (const nlohmann::json::exception&) {
    SPARTA_CHECK(false, failure);
  }
  return {};
}

}  // namespace sparta::tools
