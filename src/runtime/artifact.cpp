#include "runtime/artifact.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/cpu.h"
#include "core/error.h"
#include "jit/jit_stats.h"
#include "core/hash.h"
#include "core/version.h"
#include "runtime/artifact_format.h"

namespace sparta {
namespace {

constexpr char kMagic[8] = {'S', 'P', 'A', 'R', 'T', 'A', 'M', 'D'};
constexpr uint64_t kHeaderBytes = 64, kChecksumAt = 56, kDataAlign = 4096;
constexpr uint64_t kChecksumSeed = 0x2e737061727461ull;  // ".sparta"

struct Header {
  uint32_t version = kArtifactVersion;
  uint32_t header_bytes = kHeaderBytes;
  uint64_t file_size = 0, meta_offset = 0, meta_size = 0, data_offset = 0, data_size = 0, checksum = 0;
};

void put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint64_t get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
uint32_t get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void write_header(uint8_t* h, const Header& x) {
  std::memset(h, 0, kHeaderBytes);
  std::memcpy(h, kMagic, 8);
  std::memcpy(h + 8, &x.version, 4);
  std::memcpy(h + 12, &x.header_bytes, 4);
  put64(h + 16, x.file_size);
  put64(h + 24, x.meta_offset);
  put64(h + 32, x.meta_size);
  put64(h + 40, x.data_offset);
  put64(h + 48, x.data_size);
  put64(h + kChecksumAt, x.checksum);
}

// The checksum of a whole image: the header with its checksum field as
// zeros, then everything after it.
uint64_t image_checksum(const uint8_t* data, size_t size) {
  uint8_t h[kHeaderBytes];
  std::memcpy(h, data, kHeaderBytes);
  put64(h + kChecksumAt, 0);
  Hasher hs(kChecksumSeed);
  hs.feed(h, kHeaderBytes);
  hs.feed(data + kHeaderBytes, size - kHeaderBytes);
  return hs.value();
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

nlohmann::json host_json(const CompiledModel& m) {
  return {{"isa", std::string(isa_name(host_isa()))},
          {"cpu", host_cpu_model()},
          {"onednn", onednn_version()},
          {"sparta", SPARTA_VERSION_STRING}};
}

// A file mapped into memory, unmapped when the last user lets go.
struct Mapping {
  void* p = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (p != MAP_FAILED) ::munmap(p, size);
  }
};

}  // namespace

void save_compiled(const CompiledModel& m, const std::string& path) {
  artifact::DataWriter data;
  nlohmann::json meta;
  meta["format"] = "sparta compiled model";
  meta["host"] = host_json(m);
  meta["source"] = m.source;
  meta["options"] = {{"threads", m.options.threads},
                     {"sparse", m.options.sparse},
                     {"propagate", m.options.propagate},
                     {"decompose", m.options.decompose},
                     {"jit", m.options.jit},
                     {"layout_block", m.options.layout_block},
                     {"simplify", m.options.simplify}};
  meta["times"] = {{"passes_ms", m.times.passes_ms},
                   {"propagate_ms", m.times.propagate_ms},
                   {"tune_ms", m.times.tune_ms},
                   {"pack_ms", m.times.pack_ms}};
  nlohmann::json log = nlohmann::json::array();
  for (const PassLogEntry& e : m.pipeline.log) log.push_back({{"pass", e.pass}, {"ms", e.ms}, {"summary", e.summary}});
  meta["log"] = log;
  meta["graph"] = artifact::graph_to_json(m, data);
  meta["report"] = m.report;
  meta["compiled_shapes"] = m.compiled_shapes;
  // Names are UTF-8 in every model seen; other bytes are replaced, not an error.
  std::string text = meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  Header h;
  h.meta_offset = kHeaderBytes;
  h.meta_size = text.size();
  h.data_offset = (kHeaderBytes + text.size() + kDataAlign - 1) / kDataAlign * kDataAlign;
  h.data_size = data.size();
  h.file_size = h.data_offset + h.data_size;
  text.resize(h.data_offset - kHeaderBytes, '\0');  // zero padding up to the data

  // The checksum is computed while writing: header (checksum zero), meta,
  // then every data part and the zero gaps between them.
  uint8_t head[kHeaderBytes];
  write_header(head, h);
  Hasher hs(kChecksumSeed);
  hs.feed(head, kHeaderBytes);
  hs.feed(text.data(), text.size());
  AtomicFile file(path);
  std::ofstream& f = file.stream();
  f.write(reinterpret_cast<const char*>(head), kHeaderBytes);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  // Data parts are 64-byte aligned; the hasher wants whole 32-byte steps
  // for every feed but the last, so parts go through a staging buffer.
  std::vector<uint8_t> stage;
  stage.reserve(1 << 22);
  uint64_t pos = 0;
  auto flush = [&](bool last) {
    const size_t whole = last ? stage.size() : stage.size() / 32 * 32;
    hs.feed(stage.data(), whole);
    f.write(reinterpret_cast<const char*>(stage.data()), static_cast<std::streamsize>(whole));
    stage.erase(stage.begin(), stage.begin() + static_cast<std::ptrdiff_t>(whole));
  };
  for (const auto& part : data.parts()) {
    stage.insert(stage.end(), part.offset - pos, 0);
    const auto* p = static_cast<const uint8_t*>(part.p);
    for (size_t done = 0; done < part.bytes;) {
      const size_t n = std::min<size_t>(part.bytes - done, (1 << 22));
      stage.insert(stage.end(), p + done, p + done + n);
      done += n;
      if (stage.size() >= (1 << 22)) flush(false);
    }
    pos = part.offset + part.bytes;
  }
  stage.insert(stage.end(), h.data_size - pos, 0);
  flush(true);
  h.checksum = hs.value();
  write_header(head, h);
  f.seekp(0);
  f.write(reinterpret_cast<const char*>(head), kHeaderBytes);
  file.commit();
}

void reseal_artifact(uint8_t* data, size_t size) {
  if (size < kHeaderBytes) return;
  put64(data + kChecksumAt, image_checksum(data, size));
}

bool is_compiled_model_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char m[8] = {};
  f.read(m, 8);
  return f.gcount() == 8 && std::memcmp(m, kMagic, 8) == 0;
}

CompiledModel load_compiled_bytes(std::shared_ptr<const void> owner, const uint8_t* data, size_t size, int threads,
                                  const std::string& what) {
  const auto t0 = std::chrono::steady_clock::now();
  const jit::Stats gen0 = jit::stats();  // kernels generated again for this host
  SPARTA_CHECK(threads >= 0 && threads <= 1024, "threads must be in [0, 1024]");
  // Weights are used in place: 16-byte alignment is what tensors need (a
  // mapped file is page-aligned).
  SPARTA_CHECK(reinterpret_cast<uintptr_t>(data) % 16 == 0, what, ": the image must be 16-byte aligned in memory");
  auto bad = [&](const std::string& why) { return Error(what + ": " + why); };
  if (size < kHeaderBytes || std::memcmp(data, kMagic, 8) != 0) {
    if (size >= 8 && std::memcmp(data, kMagic, 8) == 0) throw bad("truncated (shorter than its header)");
    throw bad("not a compiled sparta model (no SPARTAMD header)");
  }
  Header h;
  h.version = get32(data + 8);
  h.header_bytes = get32(data + 12);
  h.file_size = get64(data + 16);
  h.meta_offset = get64(data + 24);
  h.meta_size = get64(data + 32);
  h.data_offset = get64(data + 40);
  h.data_size = get64(data + 48);
  h.checksum = get64(data + kChecksumAt);
  if (h.version != kArtifactVersion)
    throw bad("format version " + std::to_string(h.version) + ", this sparta (" SPARTA_VERSION_STRING ") reads version " +
              std::to_string(kArtifactVersion) + ": compile the model again");
  if (h.file_size != size)
    throw bad(size < h.file_size ? "truncated: " + std::to_string(size) + " of " + std::to_string(h.file_size) + " bytes"
                                 : "has " + std::to_string(size - h.file_size) + " bytes after its end");
  if (h.checksum != image_checksum(data, size)) throw bad("checksum mismatch (the file is corrupt)");
  if (h.header_bytes != kHeaderBytes || h.meta_offset != kHeaderBytes || h.meta_size > size ||
      h.meta_offset + h.meta_size > h.data_offset || h.data_offset > size || h.data_size != size - h.data_offset ||
      h.data_offset % 64 != 0)
    throw bad("inconsistent section table in the header");

  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(data + h.meta_offset, data + h.meta_offset + h.meta_size);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("metadata is not JSON (") + e.what() + ")");
  }
  CompiledModel m;
  try {
    if (!meta.is_object() || meta.value("format", "") != "sparta compiled model") throw bad("metadata is not a sparta model's");
    const auto& host = meta.at("host");
    const std::string isa = host.at("isa").get<std::string>();
    Isa compiled = Isa::portable;
    bool known = false;
    for (Isa i : {Isa::portable, Isa::avx2, Isa::avx512})
      if (isa_name(i) == isa) compiled = i, known = true;
    if (!known) throw bad("compiled for an unknown ISA '" + isa + "'");
    if (!host_supports(compiled))
      throw bad("compiled for " + isa + ", but this host runs " + std::string(isa_name(host_isa())) +
                " at most: compile the model again on this host");
    if (host.at("cpu").get<std::string>() != host_cpu_model())
      std::fprintf(stderr, "sparta: warning: %s was compiled on another CPU (%s); its kernel choices were measured there\n",
                   what.c_str(), host.at("cpu").get<std::string>().c_str());
    const auto& o = meta.at("options");
    m.options.threads = static_cast<int>(artifact::as_int(o.at("threads"), 1, 1024, "threads"));
    m.options.sparse = o.at("sparse").get<bool>();
    m.options.propagate = o.at("propagate").get<bool>();
    m.options.decompose = o.at("decompose").get<bool>();
    m.options.jit = !o.contains("jit") || o.at("jit").get<bool>();  // files before generated kernels: allowed
    m.options.layout_block = static_cast<int>(artifact::as_int(o.at("layout_block"), -1, 16, "layout_block"));
    m.options.simplify = o.at("simplify").get<bool>();
    if (threads > 0) m.options.threads = threads;
    m.source = meta.at("source").get<std::string>();
    m.report = meta.at("report").get<std::string>();
    SPARTA_CHECK(meta.at("compiled_shapes").is_object(), "compiled shapes: expected an object");
    for (const auto& [name, dims] : meta.at("compiled_shapes").items()) {
      std::vector<int64_t> d = artifact::as_ints(dims, 1, int64_t{1} << 31, "compiled shape of '" + name + "'");
      int64_t numel = 1;
      for (int64_t x : d) {
        SPARTA_CHECK(numel <= (int64_t{1} << 32) / x, "compiled shape of '", name, "': too many elements");
        numel *= x;
      }
      m.compiled_shapes[name] = std::move(d);
    }
    const auto& t = meta.at("times");
    m.times.passes_ms = t.at("passes_ms").get<double>();
    m.times.propagate_ms = t.at("propagate_ms").get<double>();
    m.times.tune_ms = t.at("tune_ms").get<double>();
    m.times.pack_ms = t.at("pack_ms").get<double>();
    for (const auto& e : meta.at("log"))
      m.pipeline.log.push_back({e.at("pass").get<std::string>(), e.at("ms").get<double>(), e.at("summary").get<std::string>()});
    const artifact::DataView view{owner, data + h.data_offset, h.data_size};
    artifact::graph_from_json(meta.at("graph"), view, m, m.options.threads);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("bad metadata (") + e.what() + ")");
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind(what + ": ", 0) == 0) throw;
    throw bad(msg);
  }
  m.times.load_ms = ms_since(t0);
  m.times.jit = jit::since(gen0);
  return m;
}

CompiledModel load_compiled(const std::string& path, int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  SPARTA_CHECK(fd >= 0, "cannot open ", path, " (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  auto map = std::make_shared<Mapping>();
  map->size = static_cast<size_t>(st.st_size);
  if (map->size > 0) {
    // Private and writable: weights are used in place; a stray write would
    // touch this process's copy, never the file.
    map->p = ::mmap(nullptr, map->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  }
  const int map_errno = errno;
  ::close(fd);
  SPARTA_CHECK(map->size == 0 || map->p != MAP_FAILED, "cannot map ", path, " (", std::strerror(map_errno), ")");
  static const uint8_t empty = 0;
  const uint8_t* bytes = map->size ? static_cast<const uint8_t*>(map->p) : &empty;
  CompiledModel m = load_compiled_bytes(std::shared_ptr<const void>(map, bytes), bytes, map->size, threads, path);
  m.times.load_ms = ms_since(t0);
  return m;
}

}  // namespace sparta
