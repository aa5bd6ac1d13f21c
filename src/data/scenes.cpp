#include "data/scenes.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <unordered_map>

#include "core/error.h"

namespace sparta {

namespace {

constexpr float kPi = 3.14159265358979f;

struct Box {
  Point3 lo, hi;
};
struct Cylinder {  // vertical
  float x, y, r, z0, z1;
};

// Ray (origin o, direction d) against an axis-aligned box: the entry
// distance, or a negative number for a miss.
float hit_box(const Point3& o, const Point3& d, const Box& b) {
  float t0 = 0.f, t1 = 1e30f;
  const float os[3] = {o.x, o.y, o.z}, ds[3] = {d.x, d.y, d.z}, lo[3] = {b.lo.x, b.lo.y, b.lo.z},
              hi[3] = {b.hi.x, b.hi.y, b.hi.z};
  for (int a = 0; a < 3; ++a) {
    if (std::fabs(ds[a]) < 1e-12f) {
      if (os[a] < lo[a] || os[a] > hi[a]) return -1.f;
      continue;
    }
    float ta = (lo[a] - os[a]) / ds[a], tb = (hi[a] - os[a]) / ds[a];
    if (ta > tb) std::swap(ta, tb);
    t0 = std::max(t0, ta);
    t1 = std::min(t1, tb);
    if (t0 > t1) return -1.f;
  }
  return t0 > 0.f ? t0 : -1.f;
}

// Ray against a vertical cylinder's side: the nearer hit, or negative.
float hit_cylinder(const Point3& o, const Point3& d, const Cylinder& c) {
  const float ox = o.x - c.x, oy = o.y - c.y;
  const float a = d.x * d.x + d.y * d.y, b = 2 * (ox * d.x + oy * d.y), cc = ox * ox + oy * oy - c.r * c.r;
  const float disc = b * b - 4 * a * cc;
  if (a < 1e-12f || disc < 0) return -1.f;
  const float t = (-b - std::sqrt(disc)) / (2 * a);
  if (t <= 0) return -1.f;
  const float z = o.z + t * d.z;
  return z >= c.z0 && z <= c.z1 ? t : -1.f;
}

struct Street {
  std::vector<Box> boxes;
  std::vector<Cylinder> cylinders;
};

// Buildings along both sides of a street running along x, parked cars,
// walls, poles and trees, from the seed.
Street make_street(std::mt19937_64& rng) {
  Street s;
  std::uniform_real_distribution<float> u(0.f, 1.f);
  const auto in = [&](float a, float b) { return a + (b - a) * u(rng); };
  for (int side : {-1, 1}) {
    for (float x = -90.f; x < 90.f;) {  // building blocks with gaps
      const float len = in(8.f, 30.f), front = in(9.f, 14.f), depth = in(8.f, 20.f), h = in(4.f, 22.f);
      Box b;
      b.lo = {x, side > 0 ? front : -front - depth, 0.f};
      b.hi = {x + len, side > 0 ? front + depth : -front, h};
      s.boxes.push_back(b);
      x += len + in(2.f, 12.f);
    }
    for (float x = -80.f; x < 80.f; x += in(5.f, 12.f)) {  // parked cars
      const float y = side * in(3.5f, 5.5f), l = in(3.8f, 5.2f), w = in(1.6f, 2.0f), h = in(1.3f, 1.9f);
      s.boxes.push_back({{x, y - w / 2, 0.f}, {x + l, y + w / 2, h}});
    }
    for (float x = -85.f; x < 85.f; x += in(12.f, 20.f))  // poles
      s.cylinders.push_back({x, side * in(7.f, 8.f), in(0.08f, 0.15f), 0.f, in(5.f, 8.f)});
    for (float x = -85.f; x < 85.f; x += in(6.f, 15.f)) {  // trees: trunk and crown
      const float tx = x, ty = side * in(6.f, 8.5f), th = in(2.f, 3.5f), cr = in(1.2f, 2.5f);
      s.cylinders.push_back({tx, ty, in(0.15f, 0.35f), 0.f, th});
      s.cylinders.push_back({tx, ty, cr, th, th + in(2.f, 4.f)});
    }
  }
  for (int i = 0; i < 6; ++i) {  // low walls and fences across the open ground
    const float x = in(-70.f, 70.f), y = in(-30.f, 30.f), len = in(4.f, 15.f);
    if (std::fabs(y) < 9.f) continue;  // not across the street
    s.boxes.push_back({{x, y, 0.f}, {x + len, y + 0.3f, in(1.f, 2.5f)}});
  }
  return s;
}

}  // namespace

std::vector<Point3> simulate_lidar(const LidarOptions& o) {
  SPARTA_CHECK(o.beams >= 1 && o.azimuths >= 1 && o.range > 0 && o.height > 0, "lidar: beams, azimuths, range and height must be positive");
  std::mt19937_64 rng(o.seed);
  const Street street = make_street(rng);
  std::normal_distribution<float> noise(0.f, o.noise);
  std::vector<Point3> pts;
  pts.reserve(size_t(o.beams) * size_t(o.azimuths));
  const Point3 origin{0.f, 0.f, o.height};
  for (int b = 0; b < o.beams; ++b) {
    const float e = (o.elevation_min + (o.elevation_max - o.elevation_min) * (o.beams > 1 ? float(b) / float(o.beams - 1) : 0.f)) * kPi / 180.f;
    for (int a = 0; a < o.azimuths; ++a) {
      const float phi = 2 * kPi * (float(a) + 0.5f) / float(o.azimuths);
      const Point3 d{std::cos(e) * std::cos(phi), std::cos(e) * std::sin(phi), std::sin(e)};
      float t = d.z < 0 ? -o.height / d.z : 1e30f;  // the ground
      for (const Box& bx : street.boxes) {
        const float h = hit_box(origin, d, bx);
        if (h > 0 && h < t) t = h;
      }
      for (const Cylinder& c : street.cylinders) {
        const float h = hit_cylinder(origin, d, c);
        if (h > 0 && h < t) t = h;
      }
      if (t > o.range) continue;
      t += noise(rng);
      pts.push_back({origin.x + t * d.x, origin.y + t * d.y, origin.z + t * d.z});
    }
  }
  return pts;
}

std::vector<Point3> indoor_room(float spacing, uint64_t seed) {
  SPARTA_CHECK(spacing > 0.001f, "room: spacing must be above 1 mm, got ", spacing);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  const auto in = [&](float a, float b) { return a + (b - a) * u(rng); };
  const float L = in(6.f, 10.f), W = in(4.f, 7.f), H = in(2.6f, 3.2f);
  std::vector<Point3> pts;
  // A rectangle spanned from p along e1 (length a) and e2 (length b).
  const auto face = [&](Point3 p, Point3 e1, float a, Point3 e2, float b) {
    for (float s = 0; s < a; s += spacing)
      for (float t = 0; t < b; t += spacing) {
        const float js = s + spacing * (u(rng) - 0.5f) * 0.5f, jt = t + spacing * (u(rng) - 0.5f) * 0.5f;
        pts.push_back({p.x + e1.x * js + e2.x * jt, p.y + e1.y * js + e2.y * jt, p.z + e1.z * js + e2.z * jt});
      }
  };
  const Point3 X{1, 0, 0}, Y{0, 1, 0}, Z{0, 0, 1};
  face({0, 0, 0}, X, L, Y, W);  // floor
  face({0, 0, H}, X, L, Y, W);  // ceiling
  face({0, 0, 0}, X, L, Z, H);
  face({0, W, 0}, X, L, Z, H);
  face({0, 0, 0}, Y, W, Z, H);
  face({L, 0, 0}, Y, W, Z, H);
  const int furniture = 4 + int(u(rng) * 6);
  for (int i = 0; i < furniture; ++i) {  // boxes standing on the floor: top and four sides
    const float w = in(0.4f, 2.f), d = in(0.4f, 1.2f), h = in(0.4f, 2.f);
    const float x = in(0.1f, L - w - 0.1f), y = in(0.1f, W - d - 0.1f);
    face({x, y, h}, X, w, Y, d);
    face({x, y, 0}, X, w, Z, h);
    face({x, y + d, 0}, X, w, Z, h);
    face({x, y, 0}, Y, d, Z, h);
    face({x + w, y, 0}, Y, d, Z, h);
  }
  const int columns = int(u(rng) * 3);
  for (int i = 0; i < columns; ++i) {  // round columns floor to ceiling
    const float cx = in(1.f, L - 1.f), cy = in(1.f, W - 1.f), r = in(0.15f, 0.4f);
    const int around = std::max(8, int(2 * kPi * r / spacing));
    for (int k = 0; k < around; ++k)
      for (float z = 0; z < H; z += spacing) {
        const float a = 2 * kPi * (float(k) + u(rng) * 0.5f) / float(around);
        pts.push_back({cx + r * std::cos(a), cy + r * std::sin(a), z});
      }
  }
  return pts;
}

VoxelGrid voxelize(const std::vector<Point3>& points, float size, int32_t batch) {
  SPARTA_CHECK(size > 0, "voxel size must be positive, got ", size);
  VoxelGrid g;
  Point3 lo{1e30f, 1e30f, 1e30f};
  for (const Point3& p : points) lo = {std::min(lo.x, p.x), std::min(lo.y, p.y), std::min(lo.z, p.z)};
  std::unordered_map<uint64_t, int64_t> seen;
  seen.reserve(points.size());
  std::vector<std::array<int32_t, 3>> cells;
  for (const Point3& p : points) {
    const int64_t c[3] = {int64_t(std::floor((p.x - lo.x) / size)), int64_t(std::floor((p.y - lo.y) / size)),
                          int64_t(std::floor((p.z - lo.z) / size))};
    for (int64_t v : c)
      SPARTA_CHECK(v >= 0 && v <= 32767, "voxelizing: the scene spans more than 32768 voxels of ", size,
                   " m along an axis; use larger voxels");
    const uint64_t key = (uint64_t(c[0]) << 32) | (uint64_t(c[1]) << 16) | uint64_t(c[2]);
    if (seen.emplace(key, int64_t(cells.size())).second) cells.push_back({int32_t(c[0]), int32_t(c[1]), int32_t(c[2])});
  }
  const int64_t n = int64_t(cells.size());
  g.coords = Tensor(DType::i32, Shape{n, 4}, Uninitialized{});
  int32_t* o = g.coords.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    o[4 * i] = batch;
    for (int a = 0; a < 3; ++a) {
      o[4 * i + 1 + a] = cells[size_t(i)][size_t(a)];
      g.extent[size_t(a)] = std::max<int64_t>(g.extent[size_t(a)], cells[size_t(i)][size_t(a)] + 1);
    }
  }
  return g;
}

VoxelGrid sphere_shells(int64_t n, int64_t extent, uint64_t seed) {
  SPARTA_CHECK(n >= 0 && extent >= 24 && extent <= 32768, "shells: extent must be 24..32768 voxels, got ", extent);
  SPARTA_CHECK(n <= extent * extent * extent / 4, "shells: ", n, " voxels do not fit a grid of ", extent, "^3");
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::unordered_map<uint64_t, char> seen;
  std::vector<std::array<int32_t, 3>> cells;
  const double rmax = std::min<double>(40.0, double(extent) / 2 - 2);
  while (int64_t(cells.size()) < n) {
    const double r = 6.0 + (rmax - 6.0) * u(rng);
    const double cx = r + 1 + (double(extent) - 2 * r - 2) * u(rng), cy = r + 1 + (double(extent) - 2 * r - 2) * u(rng),
                 cz = r + 1 + (double(extent) - 2 * r - 2) * u(rng);
    const int64_t R = int64_t(std::ceil(r + 1));
    for (int64_t dx = -R; dx <= R && int64_t(cells.size()) < n; ++dx)
      for (int64_t dy = -R; dy <= R && int64_t(cells.size()) < n; ++dy)
        for (int64_t dz = -R; dz <= R && int64_t(cells.size()) < n; ++dz) {
          const double dist = std::sqrt(double(dx * dx + dy * dy + dz * dz));
          if (dist < r - 1 || dist >= r + 1) continue;
          const int64_t x = int64_t(cx) + dx, y = int64_t(cy) + dy, z = int64_t(cz) + dz;
          if (x < 0 || y < 0 || z < 0 || x >= extent || y >= extent || z >= extent) continue;
          if (seen.emplace((uint64_t(x) << 32) | (uint64_t(y) << 16) | uint64_t(z), 0).second)
            cells.push_back({int32_t(x), int32_t(y), int32_t(z)});
        }
  }
  VoxelGrid g;
  g.extent = {extent, extent, extent};
  g.coords = Tensor(DType::i32, Shape{n, 4}, Uninitialized{});
  int32_t* o = g.coords.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    o[4 * i] = 0;
    for (int a = 0; a < 3; ++a) o[4 * i + 1 + a] = cells[size_t(i)][size_t(a)];
  }
  return g;
}

VoxelGrid make_scene(const std::string& name, int64_t n, uint64_t seed) {
  SPARTA_CHECK(n >= 1, "a scene needs at least one voxel, asked for ", n);
  if (name == "shells") return sphere_shells(n, 256, seed);
  std::vector<Point3> pts;
  if (name == "lidar") {
    LidarOptions o;
    o.seed = seed;
    pts = simulate_lidar(o);
  } else if (name == "room") {
    pts = indoor_room(0.02f, seed);
  } else {
    SPARTA_CHECK(false, "unknown scene '", name, "' (lidar, room or shells)");
  }
  // The voxel size whose grid has about n voxels (the count falls as the
  // size grows): bisection on a log scale.
  double lo = 0.005, hi = 2.0;
  for (int it = 0; it < 24; ++it) {
    const double mid = std::sqrt(lo * hi);
    if (voxelize(pts, float(mid), 0).coords.dim(0) > n) lo = mid; else hi = mid;
  }
  return voxelize(pts, float(hi), 0);
}

}  // namespace sparta
