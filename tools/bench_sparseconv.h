// `sparta bench sparseconv`: sparse 3-D convolution layers on a generated
// scene, against spconv (scripts/spconv_peer.py) on the same coordinates and
// weights, outputs compared before anything is timed.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sparta::tools {

struct SparseConvBenchConfig {
  std::string scene = "shells";  // shells, lidar, room (data/scenes.h)
  int64_t voxels = 50000;
  std::vector<int64_t> channels = {16, 32, 64, 128};  // submanifold 3x3x3 C -> C
  int64_t strided_channels = 64;                      // the strided and inverse layers' C -> C
  std::string net_scene = "lidar";                    // the networks' scene
  int64_t net_voxels = 100000;
  std::string cases;  // comma-separated case names to run ("" = all)
  std::string dataflow = "auto";  // the layers': auto (measured) or a fixed one (runtime/sparse_conv3d.h)
  int threads = 1;
  int reps = 10;
  uint64_t seed = 1;
  bool peers = true;
  std::string python;  // with spconv, for the peer
};

// Runs the cases; returns {"scene", "voxels", "threads", "cases": [...]}
// with per case sparta_ms (map cached), map_ms (indexing and map from the
// coordinates), pairs, gflops, and with peers spconv_ms, speedup, max_rel_err.
// Throws sparta::Error when the engines' outputs disagree (1e-4).
nlohmann::json bench_sparseconv(const SparseConvBenchConfig& c);

// The table printed for a result of bench_sparseconv.
std::string sparseconv_table(const nlohmann::json& r);

}  // namespace sparta::tools
