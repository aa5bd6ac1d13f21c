// ONNX operator conformance: runs ONNX's own backend node tests (Debian
// libonnx-testdata) for every test whose operators sparta supports, and
// compares with the expected outputs. A checked-in list names the tests
// expected to fail, each with its reason; an unexpected failure, or an
// expected failure that now passes (a stale list), fails the run.
//
//   sparta_conformance EXPECTED_FAILURES_FILE DATA_DIR...
//
// Tests are named <data dir name>/<test> (node/test_add). Prints one line per
// failure and ends with "N passed, N failed".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <onnx/onnx_pb.h>

#include "core/error.h"
#include "frontend/onnx_import.h"
#include "ops/op_def.h"
#include "runtime/executor.h"

namespace fs = std::filesystem;
using namespace sparta;

namespace {

std::map<std::string, std::string> read_expected(const std::string& path) {
  std::map<std::string, std::string> m;
  std::ifstream f(path);
  if (!f) throw Error("cannot read the expected-failures list " + path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string name, reason;
    is >> name;
    std::getline(is, reason);
    m[name] = reason;
  }
  return m;
}

std::string compare(const Tensor& got, const Tensor& want) {
  if (got.dtype() != want.dtype())
    return "dtype " + std::string(dtype_name(got.dtype())) + " vs " + std::string(dtype_name(want.dtype()));
  if (got.shape() != want.shape()) return "shape " + got.shape().str() + " vs " + want.shape().str();
  if (got.dtype() == DType::f32) {
    for (int64_t i = 0; i < got.numel(); ++i) {
      const float g = got.data<float>()[i], w = want.data<float>()[i];
      if (std::isnan(w) && std::isnan(g)) continue;
      if (!(std::fabs(g - w) <= 1e-4f + 1e-4f * std::fabs(w)))
        return "element " + std::to_string(i) + ": " + std::to_string(g) + " vs " + std::to_string(w);
    }
    return "";
  }
  return std::memcmp(got.raw(), want.raw(), got.nbytes()) == 0 ? "" : "values differ";
}

enum class Scope { run, unsupported_op, opset };

// Every operator of the graph and of its subgraphs (If, Loop) implemented.
bool all_ops_supported(const onnx::GraphProto& g) {
  for (const auto& n : g.node()) {
    if (!(n.domain().empty() || n.domain() == "ai.onnx") || !find_op_def(n.op_type()) || !find_op_def(n.op_type())->run)
      return false;
    for (const auto& a : n.attribute()) {
      if (a.has_g() && !all_ops_supported(a.g())) return false;
      for (const auto& sg : a.graphs())
        if (!all_ops_supported(sg)) return false;
    }
  }
  return true;
}

// Whether a test is in scope: its default-domain opset at most 17 (below 11
// the importer upgrades the model) and every operator implemented. Read straight from the protobuf, so that tests out
// of scope are told apart from import failures.
Scope scope_of(const fs::path& model) {
  onnx::ModelProto m;
  std::ifstream f(model, std::ios::binary);
  if (!m.ParseFromIstream(&f)) return Scope::run;  // let the importer report it
  for (const auto& op : m.opset_import())
    if ((op.domain().empty() || op.domain() == "ai.onnx") && op.version() > kMaxOnnxOpset)
      return Scope::opset;  // older ones are upgraded by the importer
  return all_ops_supported(m.graph()) ? Scope::run : Scope::unsupported_op;
}

// "" when the test passes, else why not.
std::string run_test(const fs::path& dir) {
  Graph g = import_onnx_file((dir / "model.onnx").string());
  std::vector<std::string> in_names, out_names;
  for (const Value* v : g.inputs) in_names.push_back(v->name);
  for (const Value* v : g.outputs) out_names.push_back(v->name);
  Executor s(std::move(g));
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  for (const auto& set : sets) {
    std::map<std::string, Tensor> inputs;
    for (size_t i = 0; i < in_names.size(); ++i) {
      const fs::path p = set / ("input_" + std::to_string(i) + ".pb");
      if (fs::exists(p)) inputs[in_names[i]] = read_onnx_tensor_file(p.string());
    }
    const std::vector<Tensor> got = s.run(inputs);
    for (size_t i = 0; i < out_names.size(); ++i) {
      const Tensor want = read_onnx_tensor_file((set / ("output_" + std::to_string(i) + ".pb")).string());
      const std::string diff = compare(got[i], want);
      if (!diff.empty()) return set.filename().string() + " output " + out_names[i] + ": " + diff;
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: sparta_conformance EXPECTED_FAILURES_FILE DATA_DIR...\n");
    return 2;
  }
  try {
    const auto expected = read_expected(argv[1]);
    std::vector<std::pair<std::string, fs::path>> tests;  // (dir/test, path)
    for (int a = 2; a < argc; ++a) {
      const fs::path dir(argv[a]);
      const std::string prefix = dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string();
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_directory()) tests.push_back({prefix + "/" + e.path().filename().string(), e.path()});
    }
    std::sort(tests.begin(), tests.end());
    int passed = 0, failed = 0, skipped_op = 0, skipped_opset = 0, xfail = 0;
    std::set<std::string> seen;
    for (const auto& [name, t] : tests) {
      const Scope scope = scope_of(t / "model.onnx");
      if (scope == Scope::unsupported_op) ++skipped_op;
      if (scope == Scope::opset) ++skipped_opset;
      if (scope != Scope::run) continue;
      std::string why;
      try {
        why = run_test(t);
      } catch (const Error& e) {
        why = e.what();
      }
      seen.insert(name);
      const bool listed = expected.count(name) > 0;
      if (why.empty() && !listed) {
        ++passed;
      } else if (!why.empty() && listed) {
        ++xfail;
      } else if (why.empty()) {
        ++failed;
        std::printf("FAIL %s: passes but is listed as an expected failure (remove it from the list)\n", name.c_str());
      } else {
        ++failed;
        std::printf("FAIL %s: %s\n", name.c_str(), why.c_str());
      }
    }
    for (const auto& [name, reason] : expected)
      if (!seen.count(name)) {
        ++failed;
        std::printf("FAIL %s: listed as an expected failure but no longer runs (unknown test or unsupported op)\n",
                    name.c_str());
      }
    std::printf("conformance: %d tests run, %d expected failures (listed with reasons); skipped: %d with ops sparta "
                "does not implement yet, %d at opsets above %lld\n",
                passed + failed + xfail, xfail, skipped_op, skipped_opset, static_cast<long long>(kMaxOnnxOpset));
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparta_conformance: %s\n", e.what());
    return 2;
  }
}
