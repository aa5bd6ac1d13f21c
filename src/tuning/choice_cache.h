// Kernel choices by measurement, remembered: in memory for the process and
// on disk across processes (an XDG cache folder), so that compiling a model
// a second time times no kernel again.
//
// One typed key names a choice: the operation, the weight's format and the
// digest of its pattern, the problem size, the thread count it runs with,
// the ISA cap, and (filled in here) the CPU model and library versions. An
// entry on disk is one small JSON file named by the key's hash that repeats
// the whole key; a file that does not parse, or whose key differs (a hash
// collision, another machine's cache), is ignored with a warning, never
// trusted.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace sparta {

struct ChoiceKey {
  std::string op;        // what is chosen: "spmm" (a kernel for one weight)
  std::string format;    // "dense", "bsr 32x1", "nm 2:4", "csr", ...
  uint64_t pattern = 0;  // digest of the kept positions (0: dense)
  int64_t m = 0, n = 0, k = 0;
  int threads = 1;
  std::string isa;  // the highest ISA the candidates may use
  // A digest of the candidate list: a build with new or renamed kernels
  // measures again instead of trusting a choice made without them.
  uint64_t candidates = 0;
  // The canonical text of the key, with the host's CPU model, oneDNN's
  // version and sparta's version appended.
  std::string str() const;
};

struct Candidate {
  std::string kernel;
  double ms = 0;
};

struct Choice {
  std::string kernel;  // the fastest candidate
  double ms = 0;       // its measured time
  std::vector<Candidate> candidates;  // every candidate timed, in list order
};

class ChoiceCache {
 public:
  // The process's cache. Its folder: $SPARTA_CACHE_DIR, else
  // $XDG_CACHE_HOME/sparta, else $HOME/.cache/sparta; SPARTA_CACHE=off keeps
  // choices in memory only.
  static ChoiceCache& global();

  std::optional<Choice> find(const ChoiceKey& key);
  void store(const ChoiceKey& key, const Choice& c);

  // Counters since the process started (or reset_stats()).
  struct Stats {
    int64_t hits_memory = 0, hits_disk = 0, misses = 0, ignored = 0, written = 0;
    int64_t measured = 0;  // choices stored after timing
  };
  Stats stats();
  void reset_stats();
  std::string folder() const { return dir_; }  // "" when the disk cache is off
  // Drops the in-memory entries (tests: the disk alone must answer).
  void clear_memory();
  // Another folder ("" for memory only), e.g. a test's own.
  void set_folder(std::string dir);

 private:
  ChoiceCache();
  std::string path_of(const std::string& key) const;

  std::mutex mu_;
  std::string dir_;
  std::unordered_map<std::string, Choice> memory_;
  Stats stats_;
};

}  // namespace sparta
