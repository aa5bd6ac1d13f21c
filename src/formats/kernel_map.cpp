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
    SPARTA_CHECK(k[size_t(a)] >= 1 && k[size_t(a)] <= 15, "sparse convolution: kernel extents must be 1..15, got ", str());
    SPARTA_CHECK(stride[size_t(a)] >= 1, "sparse convolution: strides must be >= 1, got ", str());
    SPARTA_CHECK(pad[size_t(a)] >= 0, "sparse convolution: padding must be >= 0, got ", str());
    SPARTA_CHECK(dil[size_t(a)] >= 1, "sparse convolution: dilations must be >= 1, got ", str());
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

std::vector<uint64_t> conv_output_keys(const uint64_t* in_keys, int64_t n, const SparseConvGeometry& g,
                                       const std::array<int64_t, 3>* out_extent, int threads) {
  g.check();
  SPARTA_CHECK(!g.subm, "a submanifold layer's output sites are its input sites");
  // Every candidate, deduplicated in a table sized for the worst case of
  // all distinct (bounded by the candidates an input can make).
  int64_t per_input = 1;
  for (int a = 0; a < 3; ++a)
    per_input *= std::min<int64_t>(g.k[size_t(a)], (int64_t(g.k[size_t(a)] - 1) * g.dil[size_t(a)]) / g.stride[size_t(a)] + 1);
  CoordHash table(std::min<int64_t>(n * per_input, (int64_t{1} << 30)));
  const int nt = int(std::clamp<int64_t>(n / 8192, 1, std::max(1, threads)));
  parallel_run(nt, [&](int tid, int parts) {
    for (int64_t i = n * tid / parts; i < n * (tid + 1) / parts; ++i) {
      const Coord c = unpack_coord(in_keys[i]);
      const int64_t p[3] = {int64_t(c.x), int64_t(c.y), int64_t(c.z)};
      // Per axis, the output positions o = (p + pad - k * dil) / stride
      // that are integers, >= 0 and inside the extent.
      int64_t pos[3][15];
      int cnt[3] = {0, 0, 0};
      for (int a = 0; a < 3; ++a)
        for (int kk = 0; kk < g.k[size_t(a)]; ++kk) {
          const int64_t t = p[a] + g.pad[size_t(a)] - int64_t(kk) * g.dil[size_t(a)];
          if (t < 0 || t % g.stride[size_t(a)]) continue;
          const int64_t o = t / g.stride[size_t(a)];
          if (out_extent && o >= (*out_extent)[size_t(a)]) continue;
          if (o > kCoordMax) continue;
          pos[a][cnt[a]++] = o;
        }
      for (int ix = 0; ix < cnt[0]; ++ix)
        for (int iy = 0; iy < cnt[1]; ++iy)
          for (int iz = 0; iz < cnt[2]; ++iz)
            table.insert(pack_coord({c.b, int32_t(pos[0][ix]), int32_t(pos[1][iy]), int32_t(pos[2][iz])}), 0);
    }
  });
  std::vector<uint64_t> out;
  out.reserve(size_t(table.size()));
  table.for_each_key([&out](uint64_t k) { out.push_back(k); });
  std::sort(out.begin(), out.end());
  return out;
}

KernelMap build_kernel_map(const CoordHash& in_table, int64_t n_in, const uint64_t* out_keys, int64_t n_out,
                           const SparseConvGeometry& g, int threads) {
  g.check();
  const int V = g.volume();
  const std::array<int, 3> pad = g.effective_pad();
  KernelMap m;
  m.n_in = n_in;
  m.n_out = n_out;
  m.volume = V;
  // A submanifold map is symmetric: offset k pairs (i, o) exactly when its
  // mirror V - 1 - k pairs (o, i). The offsets before the centre are
  // searched; the centre is the identity; the rest are mirrored.
  const int centre = g.subm ? V / 2 : -1;
  const int searched = g.subm ? centre : V;
  m.centre = centre;
  std::vector<std::array<int, 3>> delta(static_cast<size_t>(V));  // input site = o * stride - pad + delta
  for (int kx = 0; kx < g.k[0]; ++kx)
    for (int ky = 0; ky < g.k[1]; ++ky)
      for (int kz = 0; kz < g.k[2]; ++kz)
        delta[size_t(g.offset(kx, ky, kz))] = {kx * g.dil[0] - pad[0], ky * g.dil[1] - pad[1], kz * g.dil[2] - pad[2]};
  const int nt = int(std::clamp<int64_t>(n_out / 4096, 1, std::max(1, threads)));
  // Per thread and offset, the pairs of the thread's range of output rows;
  // concatenated in thread order, each offset's pairs come sorted by output.
  std::vector<std::vector<std::vector<int32_t>>> ins(static_cast<size_t>(nt),
                                                     std::vector<std::vector<int32_t>>(static_cast<size_t>(searched)));
  std::vector<std::vector<std::vector<int32_t>>> outs = ins;
  parallel_run(nt, [&](int tid, int parts) {
    auto& ti = ins[size_t(tid)];
    auto& to = outs[size_t(tid)];
    // Lookups are software-pipelined: the keys of output o + kAhead are
    // computed and their buckets prefetched while output o is looked up.
    constexpr int64_t kAhead = 3;
    std::vector<uint64_t> keys(size_t((kAhead + 1) * searched));
    std::vector<uint8_t> valid(keys.size());
    const int64_t o_begin = n_out * tid / parts, o_end = n_out * (tid + 1) / parts;
    const auto stage = [&](int64_t o) {
      const size_t slot = size_t(o % (kAhead + 1)) * size_t(searched);
      const Coord c = unpack_coord(out_keys[o]);
      const Coord base{c.b, c.x * g.stride[0], c.y * g.stride[1], c.z * g.stride[2]};
      for (int k = 0; k < searched; ++k) {
        const auto& d = delta[size_t(k)];
        valid[slot + size_t(k)] = shifted(base, d[0], d[1], d[2], keys[slot + size_t(k)]);
        if (valid[slot + size_t(k)]) in_table.prefetch(keys[slot + size_t(k)]);
      }
    };
    for (int k = 0; k < searched; ++k) {  // about half the neighbours exist in a typical scan
      ti[size_t(k)].reserve(size_t(o_end - o_begin) / 2);
      to[size_t(k)].reserve(size_t(o_end - o_begin) / 2);
    }
    for (int64_t o = o_begin; o < std::min(o_begin + kAhead, o_end); ++o) stage(o);
    for (int64_t o = o_begin; o < o_end; ++o) {
      if (o + kAhead < o_end) stage(o + kAhead);
      const size_t slot = size_t(o % (kAhead + 1)) * size_t(searched);
      for (int k = 0; k < searched; ++k) {
        if (!valid[slot + size_t(k)]) continue;
        const int32_t i = in_table.find(keys[slot + size_t(k)]);
        if (i < 0) continue;
        ti[size_t(k)].push_back(i);
        to[size_t(k)].push_back(int32_t(o));
      }
    }
  });
  m.begin.assign(size_t(V) + 1, 0);
  std::vector<int64_t> count(size_t(V), 0);
  for (int k = 0; k < searched; ++k)
    for (int t = 0; t < nt; ++t) count[size_t(k)] += int64_t(ins[size_t(t)][size_t(k)].size());
  if (g.subm)
    for (int k = 0; k < centre; ++k) count[size_t(V - 1 - k)] = count[size_t(k)];
  for (int k = 0; k < V; ++k) m.begin[size_t(k) + 1] = m.begin[size_t(k)] + count[size_t(k)];
  m.in.resize(size_t(m.begin[size_t(V)]));
  m.out.resize(m.in.size());
  parallel_run(std::min(std::max(1, threads), searched), [&](int tid, int parts) {
    for (int k = searched * tid / parts; k < searched * (tid + 1) / parts; ++k) {
      int64_t p = m.begin[size_t(k)];
      for (int t = 0; t < nt; ++t) {
        const auto& a = ins[size_t(t)][size_t(k)];
        const auto& b = outs[size_t(t)][size_t(k)];
        std::copy(a.begin(), a.end(), m.in.begin() + p);
        std::copy(b.begin(), b.end(), m.out.begin() + p);
        p += int64_t(a.size());
      }
      if (g.subm) {  // the mirror offset: the same pairs, roles swapped
        const int64_t q = m.begin[size_t(V - 1 - k)], len = m.pairs(k);
        std::copy(m.out.begin() + m.begin[size_t(k)], m.out.begin() + m.begin[size_t(k)] + len, m.in.begin() + q);
        std::copy(m.in.begin() + m.begin[size_t(k)], m.in.begin() + m.begin[size_t(k)] + len, m.out.begin() + q);
      }
    }
  });
  return m;
}

BlockedMap block_kernel_map(const KernelMap& m, const uint64_t* out_keys, int block, int threads) {
  SPARTA_CHECK(block >= 1, "output blocks need at least one row");
  BlockedMap b;
  b.block = block;
  b.volume = m.volume;
  b.n_out = m.n_out;
  b.rows.resize(static_cast<size_t>(m.n_out));
  std::iota(b.rows.begin(), b.rows.end(), 0);
  if (!std::is_sorted(out_keys, out_keys + m.n_out))
    std::sort(b.rows.begin(), b.rows.end(), [out_keys](int32_t p, int32_t q) { return out_keys[p] < out_keys[q]; });
  std::vector<int32_t> pos(static_cast<size_t>(m.n_out));  // output row -> position in coordinate order
  for (int64_t i = 0; i < m.n_out; ++i) pos[size_t(b.rows[size_t(i)])] = int32_t(i);
  const int V = m.volume;
  const int64_t nb = b.blocks();
  // Counting sort of the pairs by (block, offset).
  b.begin.assign(size_t(nb * V) + 1, 0);
  for (int k = 0; k < V; ++k) {
    if (k == m.centre) {
      for (int64_t o = 0; o < m.n_out; ++o) ++b.begin[size_t((pos[size_t(o)] / block) * V + k) + 1];
      continue;
    }
    for (int64_t p = m.begin[size_t(k)]; p < m.begin[size_t(k) + 1]; ++p)
      ++b.begin[size_t((pos[size_t(m.out[size_t(p)])] / block) * V + k) + 1];
  }
  for (size_t i = 1; i < b.begin.size(); ++i) b.begin[i] += b.begin[i - 1];
  b.in.resize(size_t(b.begin.back()));
  b.local.resize(b.in.size());
  std::vector<int64_t> fill(b.begin.begin(), b.begin.end() - 1);
  const auto put = [&](int k, int32_t in, int32_t out) {
    const int32_t q = pos[size_t(out)];
    const int64_t at = fill[size_t((q / block) * V + k)]++;
    b.in[size_t(at)] = in;
    b.local[size_t(at)] = q % block;
  };
  (void)threads;
  for (int k = 0; k < V; ++k) {
    if (k == m.centre) {
      for (int64_t o = 0; o < m.n_out; ++o) put(k, int32_t(o), int32_t(o));
      continue;
    }
    for (int64_t p = m.begin[size_t(k)]; p < m.begin[size_t(k) + 1]; ++p) put(k, m.in[size_t(p)], m.out[size_t(p)]);
  }
  return b;
}

}  // namespace sparta
