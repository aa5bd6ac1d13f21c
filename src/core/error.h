// Error taxonomy for sparta.
//
// sparta::Error is the one exception type that crosses the public API: it is
// thrown for user errors (bad shapes, bad parameters, malformed files) and its
// message says what was wrong and what to do. Internal invariants use
// SPARTA_ASSERT, which aborts with file/line context: those are bugs, not
// user errors, and must never be caught and ignored.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

#include "sparta/error.h"

namespace sparta {

namespace detail {
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);

template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  ((os << args), ...);
  return os.str();
}
}  // namespace detail

}  // namespace sparta

// Throws sparta::Error with a message built from the remaining arguments.
#define SPARTA_CHECK(cond, ...)                                     \
  do {                                                              \
    if (!(cond)) throw ::sparta::Error(::sparta::detail::cat(__VA_ARGS__)); \
  } while (0)

#define SPARTA_ASSERT(cond, ...)                                                      \
  do {                                                                                \
    if (!(cond))                                                                      \
      ::sparta::detail::assert_fail(#cond, __FILE__, __LINE__, ::sparta::detail::cat(__VA_ARGS__)); \
  } while (0)
