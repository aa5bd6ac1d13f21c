// A file written through a temporary name beside it and renamed into place
// by commit(): a failure (or an exception) leaves nothing half-written, and
// a reader sees the old file or the whole new one.
#pragma once

#include <fstream>
#include <string>

namespace sparta {

class AtomicFile {
 public:
  // Opens PATH.tmp.<pid> for binary writing; sparta::Error naming `path`
  // when it cannot.
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ofstream& stream() { return out_; }
  // Flushes, closes and renames; sparta::Error when any of it fails.
  void commit();

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool done_ = false;
};

}  // namespace sparta
