#include "formats/kernel_map.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "kernels/parallel.h"

namespace sparta {

std::array<int, 3> SparseConvGeometry::effective_pad() const {
  if (!subm) return pad;
  return {dil[0] * (k[0] - 1) / 2, dil[1] * (k[1] - 1) / 2, dil[2] * (k[2] - 1) / 2};
}

void SparseConvGeometry::check() const {
  for (int a = 0; a < 3; ++a) {
    // Bounded by the coordinate range, which also keeps every product of
    // them below 2^31.
    SPARTA_CHECK(k[size_t(a)] >= 1 && k[size_t(a)] <= 15, "sparse convolution: kernel extents must be 1..15, got ", str());
    SPARTA_CHECK(stride[size_t(a)] >= 1 && stride[size_t(a)] <= kCoordMax,
                 "sparse convolution: strides must be 1..32767, got ", str());
    SPARTA_CHECK(pad[size_t(a)] >= 0 && pad[size_t(a)] <= kCoordMax, "sparse convolution: padding must be 0..32767, got ",
                 str());
    SPARTA_CHECK(dil[size_t(a)] >= 1 && dil[size_t(a)] <= kCoordMax / 14,
                 "sparse convolution: dilations must be 1..2340, got ", str());
    if (subm) {
      SPARTA_CHECK(k[size_t(a)] % 2 == 1, "submanifold convolution needs an odd kernel, got ", str());
      SPARTA_CHECK(stride[size_t(a)] == 1, "submanifold convolution has stride 1, got ", str());
    }
  }
}

std::string SparseConvGeometry::str() const {
  const auto v = [](const std::array<int, 3>& a) {
    return std::to_string(a[0]) + "x" + std::to_string(a[1]) + "x" + std::to_string(a[2]);
  };
  return std::string(subm ? "submanifold " : "") + "kernel " + v(k) + " stride " + v(stride) + " padding " + v(pad) +
         " dilation " + v(dil);
}

int64_t KernelMap::total_pairs() const {
  return int64_t(in.size()) + (centre >= 0 ? n_in : 0);
}

int64_t pack_coords(const int32_t* coords, int64_t n, uint64_t* keys) {
  for (int64_t i = 0; i < n; ++i) {
    const Coord c{coords[4 * i], coords[4 * i + 1], coords[4 * i + 2], coords[4 * i + 3]};
    if (!coord_in_range(c)) return i;
    keys[i] = pack_coord(c);
  }
  return -1;
}

namespace {

// The site at c + delta along x, y, z, when it is packable.
inline bool shifted(const Coord& c, int dx, int dy, int dz, uint64_t& key) {
  const Coord s{c.b, c.x + dx, c.y + dy, c.z + dz};
  if (!coord_in_range(s)) return false;
  key = pack_coord(s);
  return true;
}

}  // namespace

KernelMap build_strided_map(const uint64_t* in_keys, int64_t n_in, const SparseConvGeometry& g,
                            const std::array<int64_t, 3>* out_extent, int threads, std::vector<uint64_t>& out_keys) {
  g.check();
  SPARTA_CHECK(!g.subm, "a submanifold layer's output sites are its input sites");
  const int V = g.volume();
  const int nt = int(std::clamp<int64_t>(n_in / 8192, 1, std::max(1, threads)));
  // Per axis and input coordinate p, the kernel taps kk whose output o = (p
  // + pad - kk * dil) / stride is an integer, >= 0 and inside the extent,
  // tabulated once over the inputs' range of p (a few hundred to a few
  // thousand values) instead of divided out per input.
  struct AxisTaps {
    int64_t lo = 0;
    std::vector<int32_t> first;  // [p - lo]: its taps are [first[.], first[. + 1])
    std::vector<int32_t> tap, pos;
  };
  std::array<AxisTaps, 3> axes;
  bool beyond = false;
  {
    std::array<int64_t, 3> lo{kCoordMax, kCoordMax, kCoordMax}, hi{kCoordMin, kCoordMin, kCoordMin};
    for (int64_t i = 0; i < n_in; ++i) {
      const Coord c = unpack_coord(in_keys[i]);
      const int64_t p[3] = {c.x, c.y, c.z};
      for (int a = 0; a < 3; ++a) lo[size_t(a)] = std::min(lo[size_t(a)], p[a]), hi[size_t(a)] = std::max(hi[size_t(a)], p[a]);
    }
    for (int a = 0; a < 3 && n_in > 0; ++a) {
      AxisTaps& t = axes[size_t(a)];
      t.lo = lo[size_t(a)];
      const int64_t s = g.stride[size_t(a)], d = g.dil[size_t(a)];
      for (int64_t p = lo[size_t(a)]; p <= hi[size_t(a)]; ++p) {
        t.first.push_back(int32_t(t.tap.size()));
        for (int kk = 0; kk < g.k[size_t(a)]; ++kk) {
          const int64_t u = p + g.pad[size_t(a)] - kk * d;
          if (u < 0 || u % s) continue;
          const int64_t q = u / s;
          if (out_extent && q >= (*out_extent)[size_t(a)]) continue;
          // q grows with p, so a q past the range here is also one of the
          // largest input's (p = hi is an input).
          if (q > kCoordMax) {
            beyond = true;
            continue;
          }
          t.tap.push_back(kk);
          t.pos.push_back(int32_t(q));
        }
      }
      t.first.push_back(int32_t(t.tap.size()));
    }
  }
  SPARTA_CHECK(!beyond, "sparse convolution (", g.str(), "): an output site would lie past coordinate ", kCoordMax,
               "; give the grid's extent or keep the sites lower");
  // Calls f(offset, output key) for each pair of input i.
  const auto each_pair = [&](int64_t i, auto f) {
    const Coord c = unpack_coord(in_keys[i]);
    const AxisTaps &ax = axes[0], &ay = axes[1], &az = axes[2];
    const int32_t *fx = ax.first.data() + (c.x - ax.lo), *fy = ay.first.data() + (c.y - ay.lo),
                  *fz = az.first.data() + (c.z - az.lo);
    for (int32_t ix = fx[0]; ix < fx[1]; ++ix)
      for (int32_t iy = fy[0]; iy < fy[1]; ++iy)
        for (int32_t iz = fz[0]; iz < fz[1]; ++iz)
          f(g.offset(ax.tap[size_t(ix)], ay.tap[size_t(iy)], az.tap[size_t(iz)]),
            pack_coord({c.b, ax.pos[size_t(ix)], ay.pos[size_t(iy)], az.pos[size_t(iz)]}));
  };
  // Two passes over each thread's range of inputs: count the pairs per
  // offset, then write them where the counts put them (offset-major, then
  // thread, then input order), each with its output key.
  std::vector<int64_t> at(size_t(nt) * size_t(V), 0);  // [thread][offset]
  parallel_parts(nt, n_in, [&](int tid, int64_t i0, int64_t i1) {
    int64_t* count = at.data() + size_t(tid) * size_t(V);
    for (int64_t i = i0; i < i1; ++i) each_pair(i, [&](int k, uint64_t) { ++count[k]; });
  });
  KernelMap m;
  m.n_in = n_in;
  m.volume = V;
  m.begin.assign(size_t(V) + 1, 0);
  int64_t total = 0;
  for (int k = 0; k < V; ++k) {
    m.begin[size_t(k)] = total;
    for (int t = 0; t < nt; ++t) {
      const int64_t here = at[size_t(t) * size_t(V) + size_t(k)];
      at[size_t(t) * size_t(V) + size_t(k)] = total;
      total += here;
    }
  }
  m.begin[size_t(V)] = total;
  SPARTA_CHECK(total < (int64_t{1} << 31) - 1, "sparse convolution (", g.str(), "): ", total,
               " pairs; at most 2^31 - 2 per layer");
  m.in.resize(size_t(total));
  m.out.resize(size_t(total));
  MapVector<uint64_t> key(static_cast<size_t>(total));
  parallel_parts(nt, n_in, [&](int tid, int64_t i0, int64_t i1) {
    int64_t* next = at.data() + size_t(tid) * size_t(V);
    for (int64_t i = i0; i < i1; ++i)
      each_pair(i, [&](int k, uint64_t out) {
        const int64_t p = next[k]++;
        m.in[size_t(p)] = int32_t(i);
        key[size_t(p)] = out;
      });
  });
  // Then the keys in coordinate order (a radix sort): each run of equal
  // keys is one output site, numbered in that order; no table at all.
  // Threads count the runs starting in their range of the order, then
  // number them.
  MapVector<int32_t> order(static_cast<size_t>(total));
  coordinate_order(key.data(), total, threads, order.data());
  const int nr = int(std::clamp<int64_t>(total / 32768, 1, std::max(1, threads)));
  std::vector<int64_t> starts(static_cast<size_t>(nr) + 1, 0);
  const auto starts_run = [&](int64_t j) { return j == 0 || key[size_t(order[size_t(j)])] != key[size_t(order[size_t(j - 1)])]; };
  parallel_parts(nr, total, [&](int t, int64_t j0, int64_t j1) {
    int64_t runs = 0;
    for (int64_t j = j0; j < j1; ++j) runs += starts_run(j);
    starts[size_t(t) + 1] = runs;
  });
  for (int t = 0; t < nr; ++t) starts[size_t(t) + 1] += starts[size_t(t)];
  out_keys.resize(size_t(starts[size_t(nr)]));
  parallel_parts(nr, total, [&](int t, int64_t j0, int64_t j1) {
    int64_t row = starts[size_t(t)] - 1;
    for (int64_t j = j0; j < j1; ++j) {
      const int32_t p = order[size_t(j)];
      if (starts_run(j)) out_keys[size_t(++row)] = key[size_t(p)];
      m.out[size_t(p)] = int32_t(row);
    }
  });
  m.n_out = int64_t(out_keys.size());
  return m;
}

KernelMap build_kernel_map(const CoordHash& in_table, int64_t n_in, const uint64_t* out_keys, int64_t n_out,
                           const SparseConvGeometry& g) {
  g.check();
  const int V = g.volume();
  const std::array<int, 3> pad = g.effective_pad();
  KernelMap m;
  m.n_in = n_in;
  m.n_out = n_out;
  m.volume = V;
  m.centre = g.subm ? V / 2 : -1;
  // Every offset probed on its own (no mirroring), output by output.
  std::vector<std::vector<int32_t>> ins(static_cast<size_t>(V)), outs(static_cast<size_t>(V));
  for (int64_t o = 0; o < n_out; ++o) {
    const Coord c = unpack_coord(out_keys[o]);
    for (int kx = 0; kx < g.k[0]; ++kx)
      for (int ky = 0; ky < g.k[1]; ++ky)
        for (int kz = 0; kz < g.k[2]; ++kz) {
          const int k = g.offset(kx, ky, kz);
          uint64_t key;
          if (k == m.centre ||
              !shifted({c.b, c.x * g.stride[0], c.y * g.stride[1], c.z * g.stride[2]}, kx * g.dil[0] - pad[0],
                       ky * g.dil[1] - pad[1], kz * g.dil[2] - pad[2], key))
            continue;
          const int32_t i = in_table.find(key);
          if (i < 0) continue;
          ins[size_t(k)].push_back(i);
          outs[size_t(k)].push_back(int32_t(o));
        }
  }
  m.begin.assign(size_t(V) + 1, 0);
  for (int k = 0; k < V; ++k) {
    m.begin[size_t(k) + 1] = m.begin[size_t(k)] + int64_t(ins[size_t(k)].size());
    m.in.insert(m.in.end(), ins[size_t(k)].begin(), ins[size_t(k)].end());
    m.out.insert(m.out.end(), outs[size_t(k)].begin(), outs[size_t(k)].end());
  }
  return m;
}

KernelMap build_subm_map(const uint64_t* keys, int64_t n, const SparseConvGeometry& g, int threads,
                         const int32_t* given_order) {
  g.check();
  SPARTA_CHECK(g.subm, "a merged map is a submanifold layer's");
  const int V = g.volume(), centre = V / 2;
  const std::array<int, 3> pad = g.effective_pad();
  std::vector<int32_t> own;
  if (!given_order) own = coordinate_order(keys, n, threads);
  const int32_t* order = given_order ? given_order : own.data();
  MapVector<uint64_t> sorted(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) sorted[size_t(i)] = keys[order[size_t(i)]];
  KernelMap m;
  m.n_in = m.n_out = n;
  m.volume = V;
  m.centre = centre;
  std::vector<MapVector<int32_t>> ins(static_cast<size_t>(centre)), outs(static_cast<size_t>(centre));
  parallel_parts(std::min(std::max(1, threads), std::max(1, centre)), centre, [&](int tid, int64_t k0, int64_t k1) {
    for (int k = int(k0); k < k1; ++k) {
      const int kx = k / (g.k[1] * g.k[2]), ky = (k / g.k[2]) % g.k[1], kz = k % g.k[2];
      const int d[3] = {kx * g.dil[0] - pad[0], ky * g.dil[1] - pad[1], kz * g.dil[2] - pad[2]};
      // Input site = output site + d: its key is the output's plus delta
      // (negative before the centre), unless a field leaves its range,
      // which the match check below catches.
      const int64_t delta = int64_t(d[0]) * (int64_t{1} << 32) + int64_t(d[1]) * (int64_t{1} << 16) + int64_t(d[2]);
      auto& in = ins[size_t(k)];
      auto& out = outs[size_t(k)];
      in.reserve(size_t(n) / 2);
      out.reserve(size_t(n) / 2);
      int64_t j = 0;
      for (int64_t i = 0; i < n; ++i) {
        const uint64_t key = sorted[size_t(i)];
        if (delta < 0 && key < uint64_t(-delta)) continue;
        const uint64_t target = key + uint64_t(delta);
        while (j < n && sorted[size_t(j)] < target) ++j;
        if (j == n) break;
        if (sorted[size_t(j)] != target) continue;
        const Coord c = unpack_coord(key), t = unpack_coord(target);
        if (t.b != c.b || t.x != c.x + d[0] || t.y != c.y + d[1] || t.z != c.z + d[2]) continue;
        in.push_back(order[size_t(j)]);
        out.push_back(order[size_t(i)]);
      }
    }
  });
  m.begin.assign(size_t(V) + 1, 0);
  for (int k = 0; k < V; ++k) {
    const int64_t len = k < centre ? int64_t(ins[size_t(k)].size()) : k > centre ? int64_t(ins[size_t(V - 1 - k)].size()) : 0;
    m.begin[size_t(k) + 1] = m.begin[size_t(k)] + len;
  }
  m.in.resize(size_t(m.begin[size_t(V)]));
  m.out.resize(m.in.size());
  for (int k = 0; k < centre; ++k) {
    const auto& in = ins[size_t(k)];
    const auto& out = outs[size_t(k)];
    std::copy(in.begin(), in.end(), m.in.begin() + m.begin[size_t(k)]);
    std::copy(out.begin(), out.end(), m.out.begin() + m.begin[size_t(k)]);
    // The mirror offset: the same pairs, roles swapped.
    std::copy(out.begin(), out.end(), m.in.begin() + m.begin[size_t(V - 1 - k)]);
    std::copy(in.begin(), in.end(), m.out.begin() + m.begin[size_t(V - 1 - k)]);
  }
  return m;
}

BlockedMap block_kernel_map(const KernelMap& m, const uint64_t* out_keys, int block, int threads,
                            const int32_t* order) {
  SPARTA_CHECK(block >= 1, "output blocks need at least one row");
  BlockedMap b;
  b.block = block;
  b.volume = m.volume;
  b.n_out = m.n_out;
  if (std::is_sorted(out_keys, out_keys + m.n_out)) {
    b.rows.resize(static_cast<size_t>(m.n_out));
    std::iota(b.rows.begin(), b.rows.end(), 0);
  } else {
    b.rows = order ? std::vector<int32_t>(order, order + m.n_out) : coordinate_order(out_keys, m.n_out, threads);
  }
  std::vector<int32_t> pos(static_cast<size_t>(m.n_out));  // output row -> position in coordinate order
  for (int64_t i = 0; i < m.n_out; ++i) pos[size_t(b.rows[size_t(i)])] = int32_t(i);
  const int V = m.volume;
  const int64_t nb = b.blocks();
  // Counting sort of the pairs by (block, offset). Each offset owns its
  // column of the counts and of the slots, so threads split the offsets.
  b.begin.assign(size_t(nb * V) + 1, 0);
  const int nt = std::min(std::max(1, threads), V);
  const auto each_pair = [&](int k, auto f) {
    if (k == m.centre) {
      for (int64_t o = 0; o < m.n_out; ++o) f(int32_t(o), int32_t(o));
      return;
    }
    for (int64_t p = m.begin[size_t(k)]; p < m.begin[size_t(k) + 1]; ++p) f(m.in[size_t(p)], m.out[size_t(p)]);
  };
  parallel_parts(nt, V, [&](int tid, int64_t k0, int64_t k1) {
    for (int k = int(k0); k < k1; ++k)
      each_pair(k, [&](int32_t, int32_t out) { ++b.begin[size_t((int64_t(pos[size_t(out)]) / block) * V + k) + 1]; });
  });
  for (size_t i = 1; i < b.begin.size(); ++i) b.begin[i] += b.begin[i - 1];
  b.in.resize(size_t(b.begin.back()));
  b.local.resize(b.in.size());
  std::vector<int64_t> fill(b.begin.begin(), b.begin.end() - 1);
  parallel_parts(nt, V, [&](int tid, int64_t k0, int64_t k1) {
    for (int k = int(k0); k < k1; ++k)
      each_pair(k, [&](int32_t in, int32_t out) {
        const int32_t q = pos[size_t(out)];
        const int64_t at = fill[size_t((int64_t(q) / block) * V + k)]++;
        b.in[size_t(at)] = in;
        b.local[size_t(at)] = q % block;
      });
  });
  return b;
}

}  // namespace sparta
