#include "formats/kernel_map.h"

#include <algorithm>
#include <atomic>
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
  // Per thread and offset, the candidates (input row, output key) of its
  // range of inputs, in input order.
  struct Cand {
    MapVector<int32_t> in;
    MapVector<uint64_t> key;
  };
  std::vector<std::vector<Cand>> cand(static_cast<size_t>(nt), std::vector<Cand>(static_cast<size_t>(V)));
  std::atomic<bool> beyond{false};
  parallel_run(nt, [&](int tid, int parts) {
    auto& mine = cand[size_t(tid)];
    for (int64_t i = n_in * tid / parts; i < n_in * (tid + 1) / parts; ++i) {
      const Coord c = unpack_coord(in_keys[i]);
      const int64_t p[3] = {int64_t(c.x), int64_t(c.y), int64_t(c.z)};
      // Per axis, the kernel taps kk whose output o = (p + pad - kk * dil)
      // / stride is an integer, >= 0 and inside the extent.
      int64_t pos[3][15];
      int tap[3][15];
      int cnt[3] = {0, 0, 0};
      for (int a = 0; a < 3; ++a) {
        // t = p + pad - kk * dil as quotient and remainder by the stride,
        // stepped along kk (one division per axis, not two per tap).
        const int64_t s = g.stride[size_t(a)], dq = g.dil[size_t(a)] / s, dr = g.dil[size_t(a)] % s;
        const int64_t t0 = p[a] + g.pad[size_t(a)];
        if (t0 < 0) continue;
        int64_t q = t0 / s, r = t0 % s;
        for (int kk = 0; kk < g.k[size_t(a)]; ++kk) {
          if (kk) {
            q -= dq, r -= dr;
            if (r < 0) r += s, --q;
          }
          if (q < 0) break;  // t < 0 from here on
          if (r) continue;
          if (out_extent && q >= (*out_extent)[size_t(a)]) continue;
          if (q > kCoordMax) {
            beyond.store(true);  // reported after the threads join
            continue;
          }
          pos[a][cnt[a]] = q;
          tap[a][cnt[a]++] = kk;
        }
      }
      for (int ix = 0; ix < cnt[0]; ++ix)
        for (int iy = 0; iy < cnt[1]; ++iy)
          for (int iz = 0; iz < cnt[2]; ++iz) {
            Cand& q = mine[size_t(g.offset(tap[0][ix], tap[1][iy], tap[2][iz]))];
            q.in.push_back(int32_t(i));
            q.key.push_back(pack_coord({c.b, int32_t(pos[0][ix]), int32_t(pos[1][iy]), int32_t(pos[2][iz])}));
          }
    }
  });
  SPARTA_CHECK(!beyond.load(), "sparse convolution (", g.str(), "): an output site would lie past coordinate ", kCoordMax,
               "; give the grid's extent or keep the sites lower");
  // The pairs laid out by offset, each with its output key; then the keys
  // in coordinate order (a radix sort): each run of equal keys is one
  // output site, numbered in that order. No table at all.
  KernelMap m;
  m.n_in = n_in;
  m.volume = V;
  m.begin.assign(size_t(V) + 1, 0);
  for (int k = 0; k < V; ++k) {
    int64_t count = 0;
    for (int t = 0; t < nt; ++t) count += int64_t(cand[size_t(t)][size_t(k)].in.size());
    m.begin[size_t(k) + 1] = m.begin[size_t(k)] + count;
  }
  const int64_t total = m.begin[size_t(V)];
  SPARTA_CHECK(total < (int64_t{1} << 31) - 1, "sparse convolution (", g.str(), "): ", total,
               " pairs; at most 2^31 - 2 per layer");
  m.in.resize(size_t(total));
  m.out.resize(size_t(total));
  MapVector<uint64_t> key(static_cast<size_t>(total));
  parallel_run(std::min(std::max(1, threads), V), [&](int tid, int parts) {
    for (int k = V * tid / parts; k < V * (tid + 1) / parts; ++k) {
      int64_t p = m.begin[size_t(k)];
      for (int t = 0; t < nt; ++t) {
        const Cand& q = cand[size_t(t)][size_t(k)];
        std::copy(q.in.begin(), q.in.end(), m.in.begin() + p);
        std::copy(q.key.begin(), q.key.end(), key.begin() + p);
        p += int64_t(q.in.size());
      }
    }
  });
  const std::vector<int32_t> order = coordinate_order(key.data(), total);
  out_keys.clear();
  int32_t row = -1;
  for (int64_t j = 0; j < total; ++j) {
    const uint64_t k = key[size_t(order[size_t(j)])];
    if (row < 0 || k != out_keys.back()) {
      out_keys.push_back(k);
      ++row;
    }
    m.out[size_t(order[size_t(j)])] = row;
  }
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

std::vector<int32_t> coordinate_order(const uint64_t* keys, int64_t n) {
  std::vector<int32_t> order(static_cast<size_t>(n)), tmp(order.size());
  std::iota(order.begin(), order.end(), 0);
  // LSD radix sort on 16-bit digits; a digit every key shares is skipped.
  std::vector<int64_t> count(size_t{1} << 16);
  for (int shift = 0; shift < 64; shift += 16) {
    std::fill(count.begin(), count.end(), 0);
    for (int64_t i = 0; i < n; ++i) ++count[size_t((keys[i] >> shift) & 0xFFFF)];
    if (n == 0 || count[size_t((keys[0] >> shift) & 0xFFFF)] == n) continue;
    int64_t sum = 0;
    for (auto& c : count) {
      const int64_t here = c;
      c = sum;
      sum += here;
    }
    for (int32_t r : order) tmp[size_t(count[size_t((keys[r] >> shift) & 0xFFFF)]++)] = r;
    order.swap(tmp);
  }
  return order;
}

KernelMap build_subm_map(const uint64_t* keys, int64_t n, const SparseConvGeometry& g, int threads,
                         const int32_t* given_order) {
  g.check();
  SPARTA_CHECK(g.subm, "a merged map is a submanifold layer's");
  const int V = g.volume(), centre = V / 2;
  const std::array<int, 3> pad = g.effective_pad();
  std::vector<int32_t> own;
  if (!given_order) own = coordinate_order(keys, n);
  const int32_t* order = given_order ? given_order : own.data();
  MapVector<uint64_t> sorted(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) sorted[size_t(i)] = keys[order[size_t(i)]];
  KernelMap m;
  m.n_in = m.n_out = n;
  m.volume = V;
  m.centre = centre;
  std::vector<MapVector<int32_t>> ins(static_cast<size_t>(centre)), outs(static_cast<size_t>(centre));
  parallel_run(std::min(std::max(1, threads), std::max(1, centre)), [&](int tid, int parts) {
    for (int k = centre * tid / parts; k < centre * (tid + 1) / parts; ++k) {
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
    b.rows = order ? std::vector<int32_t>(order, order + m.n_out) : coordinate_order(out_keys, m.n_out);
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
  parallel_run(nt, [&](int tid, int parts) {
    for (int k = V * tid / parts; k < V * (tid + 1) / parts; ++k)
      each_pair(k, [&](int32_t, int32_t out) { ++b.begin[size_t((int64_t(pos[size_t(out)]) / block) * V + k) + 1]; });
  });
  for (size_t i = 1; i < b.begin.size(); ++i) b.begin[i] += b.begin[i - 1];
  b.in.resize(size_t(b.begin.back()));
  b.local.resize(b.in.size());
  std::vector<int64_t> fill(b.begin.begin(), b.begin.end() - 1);
  parallel_run(nt, [&](int tid, int parts) {
    for (int k = V * tid / parts; k < V * (tid + 1) / parts; ++k)
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
