#include "core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace sparta {

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), tmp_(path_ + ".tmp." + std::to_string(::getpid())),
      out_(tmp_, std::ios::binary | std::ios::trunc) {
  SPARTA_CHECK(out_.good(), "cannot write ", path_, " (", std::strerror(errno), ")");
}

AtomicFile::~AtomicFile() {
  if (done_) return;
  out_.close();
  std::error_code ec;
  std::filesystem::remove(tmp_, ec);
}

void AtomicFile::commit() {
  out_.flush();
  out_.close();
  SPARTA_CHECK(!out_.fail(), "cannot write ", path_, " (", std::strerror(errno), ")");
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  SPARTA_CHECK(!ec, "cannot write ", path_, " (", ec.message(), ")");
  done_ = true;
}

}  // namespace sparta
