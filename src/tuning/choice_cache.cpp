#include "tuning/choice_cache.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/version.h"

namespace sparta {
namespace {

constexpr int kEntryVersion = 1;

std::string cache_folder() {
  if (const char* off = std::getenv("SPARTA_CACHE"); off && std::string(off) == "off") return "";
  if (const char* d = std::getenv("SPARTA_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/sparta";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/sparta";
  return "";
}

void warn(const std::string& msg) { std::fprintf(stderr, "sparta: warning: %s\n", msg.c_str()); }

}  // namespace

std::string ChoiceKey::str() const {
  std::ostringstream s;
  s << op << " | " << format << " | pattern " << hex64(pattern) << " | m " << m << " n " << n << " k " << k
    << " | threads " << threads << " | isa " << isa << " | candidates " << hex64(candidates) << " | cpu "
    << host_cpu_model() << " | onednn "
    << onednn_version() << " | sparta " << SPARTA_VERSION_STRING;
  return s.str();
}

ChoiceCache::ChoiceCache() : dir_(cache_folder()) {}

ChoiceCache& ChoiceCache::global() {
  static ChoiceCache c;
  return c;
}

std::string ChoiceCache::path_of(const std::string& key) const {
  return dir_ + "/choices/" + hex64(hash64(key)) + ".json";
}

std::optional<Choice> ChoiceCache::find(const ChoiceKey& key) {
  const std::string k = key.str();
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = memory_.find(k); it != memory_.end()) {
    ++stats_.hits_memory;
    return it->second;
  }
  if (!dir_.empty()) {
    const std::string path = path_of(k);
    std::ifstream f(path);
    if (f) {
      try {
        const nlohmann::json j = nlohmann::json::parse(f);
        if (j.at("version").get<int>() != kEntryVersion || j.at("key").get<std::string>() != k)
          throw std::runtime_error("written for another key or version");
        Choice c;
        c.kernel = j.at("kernel").get<std::string>();
        c.ms = j.at("ms").get<double>();
        for (const auto& cj : j.at("candidates")) c.candidates.push_back({cj.at(0).get<std::string>(), cj.at(1).get<double>()});
        if (c.kernel.empty() || !(c.ms >= 0)) throw std::runtime_error("no kernel or a bad time");
        memory_[k] = c;
        ++stats_.hits_disk;
        return c;
      } catch (const std::exception& e) {
        warn("kernel-choice cache entry " + path + " ignored (" + e.what() + ")");
        ++stats_.ignored;
      }
    }
  }
  ++stats_.misses;
  return std::nullopt;
}

void ChoiceCache::store(const ChoiceKey& key, const Choice& c) {
  const std::string k = key.str();
  std::lock_guard<std::mutex> lock(mu_);
  memory_[k] = c;
  ++stats_.measured;
  if (dir_.empty()) return;
  nlohmann::json j;
  j["version"] = kEntryVersion;
  j["key"] = k;
  j["kernel"] = c.kernel;
  j["ms"] = c.ms;
  j["candidates"] = nlohmann::json::array();
  for (const Candidate& cd : c.candidates) j["candidates"].push_back({cd.kernel, cd.ms});
  // Written to a temporary name and renamed: a reader sees a whole entry
  // or none, even with several compiles at once.
  std::error_code ec;
  std::filesystem::create_directories(dir_ + "/choices", ec);
  try {
    AtomicFile f(path_of(k));
    f.stream() << j.dump() << "\n";
    f.commit();
    ++stats_.written;
  } catch (const Error&) {
    static bool warned = false;
    if (!warned) warn("cannot write the kernel-choice cache in " + dir_ + " (choices kept in memory only)");
    warned = true;
  }
}

ChoiceCache::Stats ChoiceCache::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void ChoiceCache::reset_stats() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = {};
}

void ChoiceCache::set_folder(std::string dir) {
  std::lock_guard<std::mutex> lock(mu_);
  dir_ = std::move(dir);
}

void ChoiceCache::clear_memory() {
  std::lock_guard<std::mutex> lock(mu_);
  memory_.clear();
}

}  // namespace sparta
