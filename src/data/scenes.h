// Point-cloud scenes made here, without downloads, for sparse convolution's
// tests, benchmarks and examples: a rotating LiDAR ray-cast into a
// procedural street, a procedural indoor room sampled on its surfaces, and
// voxel sphere shells (the synthetic cloud of the peer measurements). Every
// scene is a pure function of its seed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace sparta {

struct Point3 {
  float x = 0, y = 0, z = 0;
};

struct LidarOptions {
  int beams = 64;          // elevation rows, spread from elevation_min to elevation_max
  int azimuths = 2048;     // columns of one revolution
  float elevation_min = -24.9f, elevation_max = 2.0f;  // degrees (an HDL-64E's field of view)
  float height = 1.8f;     // sensor above the ground, metres
  float range = 80.f;      // farthest return, metres
  float noise = 0.01f;     // range noise (standard deviation), metres
  uint64_t seed = 0;
};

// One revolution of a rotating LiDAR in a street of seeded buildings, parked
// cars (boxes), poles and tree trunks (cylinders) and walls, over a ground
// plane: the returns' points, sensor at the origin (z up).
std::vector<Point3> simulate_lidar(const LidarOptions& o);

// The surfaces of a room (floor, walls, ceiling) with seeded furniture
// (boxes) and columns, sampled every `spacing` metres with jitter.
std::vector<Point3> indoor_room(float spacing, uint64_t seed);

struct VoxelGrid {
  Tensor coords;                    // int32 [N, 4] (batch, x, y, z), distinct, x, y, z >= 0
  std::array<int64_t, 3> extent{};  // the grid's extent per axis
};

// Points to distinct voxels of `size` metres (the grid's origin at the
// points' minimum corner), in order of first occurrence; every coordinate
// lands in [0, 32767].
VoxelGrid voxelize(const std::vector<Point3>& points, float size, int32_t batch = 0);

// n voxels on sphere shells two voxels thick, centres and radii seeded, in
// a grid of `extent` voxels per axis (batch 0).
VoxelGrid sphere_shells(int64_t n, int64_t extent, uint64_t seed);

// A scene by name ("lidar", "room", "shells") at about n voxels (lidar and
// room choose the voxel size that gives about n; shells exactly n).
VoxelGrid make_scene(const std::string& name, int64_t n, uint64_t seed);

}  // namespace sparta
