// sparta::Error: the one exception type that crosses sparta's API. Its
// message says what was wrong (a bad model, shape, file or argument) and,
// where there is one, what to do.
#pragma once

#include <stdexcept>
#include <string>

namespace sparta {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

}  // namespace sparta
