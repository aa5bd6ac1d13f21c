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

// The sites' smallest and largest x, y, z (lo > hi when there are none).
struct CoordRange {
  std::array<int64_t, 3> lo{kCoordMax, kCoordMax, kCoordMax}, hi{kCoordMin, kCoordMin, kCoordMin};
};
CoordRange coord_range(const uint64_t* keys, int64_t n) {
  CoordRange r;
  for (int64_t i = 0; i < n; ++i) {
    const Coord c = unpack_coord(keys[i]);
    const int64_t p[3] = {c.x, c.y, c.z};
    for (size_t a = 0; a < 3; ++a) r.lo[a] = std::min(r.lo[a], p[a]), r.hi[a] = std::max(r.hi[a], p[a]);
  }
  return r;
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
    std::vector<char> beyond;  // [p - lo]: a tap of p lands past coordinate kCoordMax
  };
  std::array<AxisTaps, 3> axes;
  {
    const auto [lo, hi] = coord_range(in_keys, n_in);
    for (int a = 0; a < 3 && n_in > 0; ++a) {
      AxisTaps& t = axes[size_t(a)];
      t.lo = lo[size_t(a)];
      const int64_t s = g.stride[size_t(a)], d = g.dil[size_t(a)];
      for (int64_t p = lo[size_t(a)]; p <= hi[size_t(a)]; ++p) {
        t.first.push_back(int32_t(t.tap.size()));
        t.beyond.push_back(0);
        for (int kk = 0; kk < g.k[size_t(a)]; ++kk) {
          const int64_t u = p + g.pad[size_t(a)] - kk * d;
          if (u < 0 || u % s) continue;
          const int64_t q = u / s;
          if (out_extent && q >= (*out_extent)[size_t(a)]) continue;
          if (q > kCoordMax) {
            t.beyond.back() = 1;  // an error if an input has this p
            continue;
          }
          t.tap.push_back(kk);
          t.pos.push_back(int32_t(q));
        }
      }
      t.first.push_back(int32_t(t.tap.size()));
    }
  }
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
  std::vector<char> beyond(static_cast<size_t>(nt), 0);
  parallel_parts(nt, n_in, [&](int tid, int64_t i0, int64_t i1) {
    int64_t* count = at.data() + size_t(tid) * size_t(V);
    char past = 0;
    for (int64_t i = i0; i < i1; ++i) {
      const Coord c = unpack_coord(in_keys[i]);
      past |= axes[0].beyond[size_t(c.x - axes[0].lo)] | axes[1].beyond[size_t(c.y - axes[1].lo)] |
              axes[2].beyond[size_t(c.z - axes[2].lo)];
      each_pair(i, [&](int k, uint64_t) { ++count[k]; });
    }
    beyond[size_t(tid)] = past;
  });
  SPARTA_CHECK(std::find(beyond.begin(), beyond.end(), 1) == beyond.end(), "sparse convolution (", g.str(),
               "): an output site would lie past coordinate ", kCoordMax, "; give the grid's extent or keep the sites lower");
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
  // The keys in coordinate order, then a sentinel above every key (batch
  // <= 65534 keeps key + any offset below it), so merges need no bounds
  // check.
  MapVector<uint64_t> sorted(static_cast<size_t>(n) + 1);
  for (int64_t i = 0; i < n; ++i) sorted[size_t(i)] = keys[order[size_t(i)]];
  sorted[size_t(n)] = ~uint64_t{0};
  // A key plus an offset's delta is the shifted site's key unless a field
  // leaves 0..65535 and carries into the next; when no site is within the
  // padding of a field's ends, no match needs checking field by field.
  bool may_carry = false;
  const CoordRange range = coord_range(keys, n);
  for (size_t a = 0; a < 3 && n > 0; ++a)
    may_carry = may_carry || range.lo[a] - pad[a] < kCoordMin || range.hi[a] + pad[a] > kCoordMax;
  KernelMap m;
  m.n_in = m.n_out = n;
  m.volume = V;
  m.centre = centre;
  // Offsets before the centre, merged; the rest are their mirrors. Offsets
  // along z share one merge per (x, y) column: once the first's target is
  // found in the sorted keys, the next along z are a step or two further.
  // Threads split the outputs; each offset's pairs of outputs [i0, i1) go
  // to slots [i0, i0 + count) of its buffers (at most one pair per output).
  // [offset][n] each, from the block cache and not zeroed (every slot kept
  // is written).
  Tensor ins(DType::i32, Shape{centre, n}, Uninitialized{}), outs(DType::i32, Shape{centre, n}, Uninitialized{});
  const int nt = int(std::clamp<int64_t>(n / 16384, 1, std::max(1, threads)));
  std::vector<int64_t> count(size_t(nt) * size_t(std::max(1, centre)), 0);  // [thread][offset]
  std::vector<int64_t> first(static_cast<size_t>(nt) + 1, 0);
  parallel_parts(nt, n, [&](int tid, int64_t i0, int64_t i1) {
    first[size_t(tid)] = i0;
    for (int kx = 0; kx < g.k[0]; ++kx)
      for (int ky = 0; ky < g.k[1]; ++ky) {
        const int k0 = g.offset(kx, ky, 0);
        if (k0 >= centre) continue;
        const int kz_end = std::min(g.k[2], centre - k0);  // this column's offsets before the centre
        const int d[3] = {kx * g.dil[0] - pad[0], ky * g.dil[1] - pad[1], -pad[2]};
        const int64_t delta = int64_t(d[0]) * (int64_t{1} << 32) + int64_t(d[1]) * (int64_t{1} << 16) + int64_t(d[2]);
        const int64_t step = g.dil[2];
        int64_t c[15] = {};
        int32_t* in[15];
        int32_t* out[15];
        for (int kz = 0; kz < kz_end; ++kz) in[kz] = ins.data<int32_t>() + (k0 + kz) * n + i0, out[kz] = outs.data<int32_t>() + (k0 + kz) * n + i0;
        // The first key at or above the first output's target.
        const uint64_t t_first = delta < 0 && sorted[size_t(i0)] < uint64_t(-delta) ? 0 : sorted[size_t(i0)] + uint64_t(delta);
        int64_t j = std::lower_bound(sorted.begin(), sorted.begin() + n, t_first) - sorted.begin();
        for (int64_t i = i0; i < i1; ++i) {
          const uint64_t key = sorted[size_t(i)];
          uint64_t t;
          int kz = 0;
          int64_t jj;
          if (delta < 0 && key < uint64_t(-delta)) {
            // Targets below key 0 (a site at the range's low end): from the
            // first offset of the column at or above it, searched apart
            // (j stays where the later outputs need it).
            const uint64_t below = uint64_t(-delta) - key;
            if (below > uint64_t(kz_end - 1) * uint64_t(step)) continue;
            kz = int((below + uint64_t(step) - 1) / uint64_t(step));
            t = key + uint64_t(delta + kz * step);
            jj = std::lower_bound(sorted.begin(), sorted.begin() + n, t) - sorted.begin();
          } else {
            t = key + uint64_t(delta);
            while (sorted[size_t(j)] < t) ++j;
            jj = j;
          }
          const int32_t o = order[i];
          for (; kz < kz_end; ++kz, t += uint64_t(step)) {
            while (sorted[size_t(jj)] < t) ++jj;
            bool hit = sorted[size_t(jj)] == t;
            if (may_carry && hit) {
              const Coord a = unpack_coord(key), b = unpack_coord(t);
              hit = b.b == a.b && b.x == a.x + d[0] && b.y == a.y + d[1] && b.z == a.z + d[2] + int(kz * step);
            }
            // Written always, kept when a hit (no branch on the match).
            in[kz][c[kz]] = jj < n ? order[jj] : 0;
            out[kz][c[kz]] = o;
            c[kz] += hit;
          }
        }
        for (int kz = 0; kz < kz_end; ++kz) count[size_t(tid) * size_t(centre) + size_t(k0 + kz)] = c[kz];
      }
  });
  m.begin.assign(size_t(V) + 1, 0);
  std::vector<int64_t> pairs(static_cast<size_t>(std::max(1, centre)), 0);
  for (int k = 0; k < centre; ++k)
    for (int t = 0; t < nt; ++t) pairs[size_t(k)] += count[size_t(t) * size_t(centre) + size_t(k)];
  for (int k = 0; k < V; ++k) {
    const int64_t len = k < centre ? pairs[size_t(k)] : k > centre ? pairs[size_t(V - 1 - k)] : 0;
    m.begin[size_t(k) + 1] = m.begin[size_t(k)] + len;
  }
  m.in.resize(size_t(m.begin[size_t(V)]));
  m.out.resize(m.in.size());
  parallel_parts(std::min(std::max(1, threads), std::max(1, centre)), centre, [&](int, int64_t k0, int64_t k1) {
    for (int k = int(k0); k < k1; ++k) {
      int64_t at = m.begin[size_t(k)], mirror = m.begin[size_t(V - 1 - k)];
      for (int t = 0; t < nt; ++t) {
        const int64_t len = count[size_t(t) * size_t(centre) + size_t(k)];
        const int32_t* in = ins.data<int32_t>() + k * n + first[size_t(t)];
        const int32_t* out = outs.data<int32_t>() + k * n + first[size_t(t)];
        std::copy(in, in + len, m.in.begin() + at);
        std::copy(out, out + len, m.out.begin() + at);
        // The mirror offset: the same pairs, roles swapped.
        std::copy(out, out + len, m.in.begin() + mirror);
        std::copy(in, in + len, m.out.begin() + mirror);
        at += len, mirror += len;
      }
    }
  });
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
  // Output row -> its block and its position in the block, once per row
  // (not two divisions per pair).
  MapVector<int32_t> blk(static_cast<size_t>(m.n_out)), local(static_cast<size_t>(m.n_out));
  for (int64_t i = 0; i < m.n_out; ++i) {
    blk[size_t(b.rows[size_t(i)])] = int32_t(i / block);
    local[size_t(b.rows[size_t(i)])] = int32_t(i % block);
  }
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
  int64_t* const count = b.begin.data() + 1;
  parallel_parts(nt, V, [&](int, int64_t k0, int64_t k1) {
    for (int k = int(k0); k < k1; ++k)
      each_pair(k, [&](int32_t, int32_t out) { ++count[int64_t(blk[size_t(out)]) * V + k]; });
  });
  for (size_t i = 1; i < b.begin.size(); ++i) b.begin[i] += b.begin[i - 1];
  b.in.resize(size_t(b.begin.back()));
  b.local.resize(b.in.size());
  std::vector<int64_t> fill(b.begin.begin(), b.begin.end() - 1);
  parallel_parts(nt, V, [&](int, int64_t k0, int64_t k1) {
    for (int k = int(k0); k < k1; ++k)
      each_pair(k, [&](int32_t in, int32_t out) {
        const int64_t at = fill[size_t(int64_t(blk[size_t(out)]) * V + k)]++;
        b.in[size_t(at)] = in;
        b.local[size_t(at)] = local[size_t(out)];
      });
  });
  return b;
}

}  // namespace sparta
