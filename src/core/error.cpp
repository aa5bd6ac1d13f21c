#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace sparta::detail {

void assert_fail(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "sparta: internal error at %s:%d: %s failed%s%s\n", file, line, expr,
               msg.empty() ? "" : ": ", msg.c_str());
  std::abort();
}

}  // namespace sparta::detail
