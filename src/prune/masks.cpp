#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/error.h"
#include "prune/prune.h"

namespace sparta::prune {

const char* pattern_name(Pattern p) {
  switch (p) {
    case Pattern::unstructured: return "unstructured";
    case Pattern::block: return "block";
    case Pattern::nm: return "nm";
    case Pattern::tilewise: return "tilewise";
    case Pattern::channel: return "channel";
  }
  return "?";
}

const char* scope_name(Scope s) { return s == Scope::layer ? "layer" : "global"; }

Pattern parse_pattern(const std::string& s) {
  for (Pattern p : {Pattern::unstructured, Pattern::block, Pattern::nm, Pattern::tilewise, Pattern::channel})
    if (s == pattern_name(p)) return p;
  throw Error("--pattern '" + s + "' is not one of unstructured, block, nm, tilewise, channel");
}

Scope parse_scope(const std::string& s) {
  SPARTA_CHECK(s == "layer" || s == "global", "--scope '", s, "' is not one of layer, global");
  return s == "layer" ? Scope::layer : Scope::global;
}

Norm parse_norm(const std::string& s) {
  SPARTA_CHECK(s == "l1" || s == "l2", "--norm '", s, "' is not one of l1, l2");
  return s == "l1" ? Norm::l1 : Norm::l2;
}

double Options::target() const {
  return pattern == Pattern::nm ? 1.0 - static_cast<double>(nm.n) / nm.m : sparsity.value_or(0);
}

void Options::validate() const {
  if (pattern == Pattern::nm) {
    SPARTA_CHECK(nm.n >= 1 && nm.n <= nm.m && nm.m <= 255, "--nm ", nm.str(), ": need 1 <= N <= M <= 255");
    if (sparsity)
      SPARTA_CHECK(std::abs(*sparsity - target()) < 1e-9, "--sparsity ", *sparsity, " contradicts --nm ", nm.str(),
                   ", which prunes ", target(), " (leave --sparsity out)");
  } else {
    SPARTA_CHECK(sparsity.has_value(), "--sparsity is required for --pattern ", pattern_name(pattern));
  }
  const double s = target();
  SPARTA_CHECK(std::isfinite(s) && s >= 0 && s < 1, "--sparsity ", s, " must be in [0, 1)");
  SPARTA_CHECK(block.r >= 1 && block.c >= 1, "--block ", block.str(), " must have positive sides");
  SPARTA_CHECK(tile >= 1, "--tile ", tile, " must be at least 1");
  SPARTA_CHECK(tile_row_share >= 0 && tile_row_share <= 1, "--tile-row-share ", tile_row_share, " must be in [0, 1]");
  SPARTA_CHECK(remainder >= 0 && remainder < 1 && s + remainder < 1, "--remainder ", remainder,
               " must be in [0, 1 - sparsity)");
  SPARTA_CHECK(min_density >= 0 && min_density <= 1, "--min-density ", min_density, " must be in [0, 1]");
}

bool fits(const Options& o, const Layer& l, std::string& why) {
  const std::string shape = "[" + std::to_string(l.rows) + ", " + std::to_string(l.cols) + "]";
  if (l.rows <= 0 || l.cols <= 0) return why = "an empty weight " + shape, false;
  switch (o.pattern) {
    case Pattern::block:
      if (l.rows % o.block.r || l.cols % o.block.c)
        return why = o.block.str() + " blocks do not divide " + shape, false;
      return true;
    case Pattern::nm:
      if (l.cols % o.nm.m) return why = "groups of " + std::to_string(o.nm.m) + " do not divide K = " + std::to_string(l.cols), false;
      return true;
    case Pattern::channel:
      for (int64_t u : l.channel_unit)
        if (u >= 0) return true;
      return why = "every output channel is read by an operator that mixes channels, or is a model output", false;
    default: return true;
  }
}

namespace {

// Scores of one unit's elements, normalized by their count so that units
// of different sizes compare: RMS (l2) or mean absolute value (l1).
class Acc {
 public:
  explicit Acc(Norm n) : n_(n) {}
  void add(float v) {
    s_ += n_ == Norm::l2 ? double(v) * v : std::abs(double(v));
    ++count_;
  }
  void merge(const Acc& o) { s_ += o.s_, count_ += o.count_; }
  float score() const {
    if (count_ == 0) return 0;
    const double m = s_ / double(count_);
    return static_cast<float>(n_ == Norm::l2 ? std::sqrt(m) : m);
  }
  int64_t count() const { return count_; }

 private:
  Norm n_;
  double s_ = 0;
  int64_t count_ = 0;
};

// The value an element is scored by: |w|, or |w * g| (first order).
float element(const Layer& l, int64_t i) {
  const size_t j = static_cast<size_t>(i);
  return l.grad.empty() ? l.w[j] : l.w[j] * l.grad[j];
}

// A pool's candidate units: score, size in elements, and where its elements
// are (the caller's business: an index into its own list).
struct Pool {
  std::vector<float> score;
  std::vector<int64_t> size;
  int64_t total = 0;  // elements the pool's sparsity is counted over
  int64_t cap = 0;    // at most this many elements pruned
  int64_t want = 0;   // layer scope: elements to prune
  std::vector<int64_t> order;  // units by ascending score
  std::vector<int64_t> prefix; // elements in order[0..i)

  void sort_units() {
    order.resize(score.size());
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return score[size_t(a)] < score[size_t(b)]; });
    prefix.assign(order.size() + 1, 0);
    for (size_t i = 0; i < order.size(); ++i) prefix[i + 1] = prefix[i] + size[size_t(order[i])];
  }
  // `count` units (a prefix of `order`), fewer if needed to stay within
  // `cap` elements and leave at least one unit.
  int64_t capped(int64_t count) const {
    while (count > 0 && (prefix[size_t(count)] > cap || count == int64_t(order.size()))) --count;
    return count;
  }
  // The prefix whose element count is nearest `elements`.
  int64_t nearest(int64_t elements) const {
    const auto it = std::lower_bound(prefix.begin(), prefix.end(), elements);
    int64_t c = it - prefix.begin();
    if (c > int64_t(order.size())) c = int64_t(order.size());
    if (c > 0 && elements - prefix[size_t(c - 1)] < prefix[size_t(c)] - elements) --c;
    return capped(c);
  }
};

// Chooses the units to prune in every pool: each its `want` (layer scope),
// or one threshold on the normalized score over all pools (global scope)
// reaching `global_want` elements. Returns, per pool, a 0/1 per unit.
std::vector<std::vector<uint8_t>> select(std::vector<Pool>& pools, Scope scope, int64_t global_want) {
  for (auto& p : pools) p.sort_units();
  std::vector<int64_t> counts(pools.size(), 0);
  if (scope == Scope::layer) {
    for (size_t i = 0; i < pools.size(); ++i) counts[i] = pools[i].nearest(pools[i].want);
  } else if (global_want > 0) {
    auto at = [&](float t, std::vector<int64_t>* out) {
      int64_t total = 0;
      for (size_t i = 0; i < pools.size(); ++i) {
        const Pool& p = pools[i];
        int64_t c = std::upper_bound(p.order.begin(), p.order.end(), t,
                                     [&](float v, int64_t u) { return v < p.score[size_t(u)]; }) -
                    p.order.begin();
        c = p.capped(c);
        if (out) (*out)[i] = c;
        total += p.prefix[size_t(c)];
      }
      return total;
    };
    float lo = 0, hi = 0;
    for (const auto& p : pools)
      for (float s : p.score) hi = std::max(hi, s);
    if (at(hi, nullptr) <= global_want) {
      at(hi, &counts);
    } else {
      for (int it = 0; it < 64 && lo < hi; ++it) {  // smallest t reaching the target
        const float mid = lo + (hi - lo) / 2;
        if (mid <= lo || mid >= hi) break;
        (at(mid, nullptr) >= global_want ? hi : lo) = mid;
      }
      at(at(lo, nullptr) >= global_want ? lo : hi, &counts);
    }
  }
  std::vector<std::vector<uint8_t>> out(pools.size());
  for (size_t i = 0; i < pools.size(); ++i) {
    out[i].assign(pools[i].score.size(), 0);
    for (int64_t j = 0; j < counts[i]; ++j) out[i][size_t(pools[i].order[size_t(j)])] = 1;
  }
  return out;
}

int64_t rounded(double x) { return static_cast<int64_t>(std::llround(x)); }

// A pool over `total` elements of one layer pruned to `fraction` of them,
// never below min_density.
void size_pool(Pool& p, int64_t total, double fraction, const Options& o) {
  p.total = total;
  p.want = rounded(fraction * double(total));
  p.cap = total - static_cast<int64_t>(std::ceil(o.min_density * double(total) - 1e-9));
}

int64_t global_target(const std::vector<Pool>& pools, double fraction) {
  int64_t total = 0;
  for (const auto& p : pools) total += p.total;
  return rounded(fraction * double(total));
}

// Aligned blocks of br x bc (1x1: elements) as units.
void block_masks(const std::vector<Layer>& layers, const Options& o, int br, int bc,
                 std::vector<std::vector<uint8_t>>& masks) {
  std::vector<Pool> pools(layers.size());
  for (size_t li = 0; li < layers.size(); ++li) {
    const Layer& l = layers[li];
    const int64_t nbr = l.rows / br, nbc = l.cols / bc;
    Pool& p = pools[li];
    p.score.resize(size_t(nbr * nbc));
    p.size.assign(size_t(nbr * nbc), int64_t{br} * bc);
    for (int64_t i = 0; i < nbr; ++i)
      for (int64_t j = 0; j < nbc; ++j) {
        Acc a(br * bc == 1 ? Norm::l1 : o.norm);
        for (int r = 0; r < br; ++r)
          for (int c = 0; c < bc; ++c) a.add(element(l, (i * br + r) * l.cols + j * bc + c));
        p.score[size_t(i * nbc + j)] = a.score();
      }
    size_pool(p, l.rows * l.cols, o.target(), o);
  }
  const auto pruned = select(pools, o.scope, global_target(pools, o.target()));
  for (size_t li = 0; li < layers.size(); ++li) {
    const Layer& l = layers[li];
    const int64_t nbc = l.cols / bc;
    for (size_t u = 0; u < pruned[li].size(); ++u) {
      if (!pruned[li][u]) continue;
      const int64_t i = int64_t(u) / nbc, j = int64_t(u) % nbc;
      for (int r = 0; r < br; ++r)
        for (int c = 0; c < bc; ++c) masks[li][size_t((i * br + r) * l.cols + j * bc + c)] = 0;
    }
  }
}

void nm_masks(const std::vector<Layer>& layers, const Options& o, std::vector<std::vector<uint8_t>>& masks) {
  const int m = o.nm.m, n = o.nm.n;
  std::vector<int> idx(size_t(m), 0);
  for (size_t li = 0; li < layers.size(); ++li) {
    const Layer& l = layers[li];
    for (int64_t r = 0; r < l.rows; ++r)
      for (int64_t g = 0; g < l.cols; g += m) {
        const int64_t base = r * l.cols + g;
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
          return std::abs(element(l, base + a)) > std::abs(element(l, base + b));
        });
        for (int j = n; j < m; ++j) masks[li][size_t(base + idx[size_t(j)])] = 0;
      }
  }
}

// Whole output channels; rows sharing a unit id are one unit across their
// layers, and layers joined that way are one pool (layer scope).
void channel_masks(const std::vector<Layer>& layers, const Options& o, std::vector<std::vector<uint8_t>>& masks) {
  // Layers joined by shared units: union-find.
  std::vector<size_t> parent(layers.size());
  std::iota(parent.begin(), parent.end(), size_t{0});
  auto find = [&](size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  std::map<int64_t, size_t> first_layer;
  for (size_t li = 0; li < layers.size(); ++li)
    for (int64_t u : layers[li].channel_unit)
      if (u >= 0) {
        auto [it, fresh] = first_layer.emplace(u, li);
        if (!fresh) parent[find(li)] = find(it->second);
      }
  std::map<size_t, size_t> pool_of_root;
  std::vector<Pool> pools;
  std::vector<std::vector<int64_t>> unit_ids;  // per pool, the unit id of each unit
  std::map<int64_t, std::pair<size_t, size_t>> where;  // unit id -> (pool, index)
  std::vector<std::vector<Acc>> pool_accs;
  for (size_t li = 0; li < layers.size(); ++li) {
    const size_t root = find(li);
    auto [pit, fresh] = pool_of_root.emplace(root, pools.size());
    if (fresh) pools.emplace_back(), unit_ids.emplace_back(), pool_accs.emplace_back();
    const size_t pi = pit->second;
    const Layer& l = layers[li];
    for (int64_t r = 0; r < l.rows; ++r) {
      const int64_t u = l.channel_unit[size_t(r)];
      if (u < 0) continue;
      auto [wit, wfresh] = where.emplace(u, std::make_pair(pi, unit_ids[pi].size()));
      if (wfresh) unit_ids[pi].push_back(u), pool_accs[pi].emplace_back(o.norm);
      Acc& a = pool_accs[pi][wit->second.second];
      for (int64_t c = 0; c < l.cols; ++c) a.add(element(l, r * l.cols + c));
    }
  }
  for (size_t pi = 0; pi < pools.size(); ++pi) {
    Pool& p = pools[pi];
    int64_t total = 0;
    for (const Acc& a : pool_accs[pi]) {
      p.score.push_back(a.score());
      p.size.push_back(a.count());
      total += a.count();
    }
    size_pool(p, total, o.target(), o);
  }
  // min_density holds per pool (a tied cluster prunes its layers alike).
  const auto pruned = select(pools, o.scope, global_target(pools, o.target()));
  for (size_t li = 0; li < layers.size(); ++li) {
    const Layer& l = layers[li];
    for (int64_t r = 0; r < l.rows; ++r) {
      const int64_t u = l.channel_unit[size_t(r)];
      if (u < 0) continue;
      const auto [pi, ui] = where.at(u);
      if (pruned[pi][ui]) std::fill_n(masks[li].begin() + r * l.cols, l.cols, uint8_t{0});
    }
  }
}

void tilewise_masks(const std::vector<Layer>& layers, const Options& o, std::vector<std::vector<uint8_t>>& masks) {
  const double s = o.target(), s_rows = s * o.tile_row_share, s_tiles = s + o.remainder;
  // 1. Whole rows.
  std::vector<std::vector<uint8_t>> row_pruned(layers.size());
  if (s_rows > 0) {
    std::vector<Pool> pools(layers.size());
    for (size_t li = 0; li < layers.size(); ++li) {
      const Layer& l = layers[li];
      for (int64_t r = 0; r < l.rows; ++r) {
        Acc a(o.norm);
        for (int64_t c = 0; c < l.cols; ++c) a.add(element(l, r * l.cols + c));
        pools[li].score.push_back(a.score());
        pools[li].size.push_back(l.cols);
      }
      size_pool(pools[li], l.rows * l.cols, s_rows, o);
    }
    row_pruned = select(pools, o.scope, global_target(pools, s_rows));
  }
  // 2. Tiles of G surviving rows; units are a tile's column segments.
  std::vector<std::vector<std::vector<int64_t>>> tiles(layers.size());
  std::vector<Pool> pools(layers.size());
  int64_t gone_total = 0;  // elements of the rows pruned whole
  for (size_t li = 0; li < layers.size(); ++li) {
    const Layer& l = layers[li];
    std::vector<int64_t> alive;
    for (int64_t r = 0; r < l.rows; ++r)
      if (row_pruned[li].empty() || !row_pruned[li][size_t(r)]) alive.push_back(r);
      else std::fill_n(masks[li].begin() + r * l.cols, l.cols, uint8_t{0});
    for (size_t i = 0; i < alive.size(); i += size_t(o.tile))
      tiles[li].emplace_back(alive.begin() + long(i), alive.begin() + long(std::min(alive.size(), i + size_t(o.tile))));
    Pool& p = pools[li];
    for (const auto& t : tiles[li])
      for (int64_t c = 0; c < l.cols; ++c) {
        Acc a(o.norm);
        for (int64_t r : t) a.add(element(l, r * l.cols + c));
        p.score.push_back(a.score());
        p.size.push_back(int64_t(t.size()));
      }
    const int64_t total = l.rows * l.cols, gone = (l.rows - int64_t(alive.size())) * l.cols;
    size_pool(p, total, s_tiles, o);
    p.total = total;
    p.want = std::max<int64_t>(0, p.want - gone);
    p.cap -= gone;
    gone_total += gone;
  }
  const int64_t global_want = std::max<int64_t>(0, global_target(pools, s_tiles) - gone_total);
  const auto pruned = select(pools, o.scope, global_want);
  for (size_t li = 0; li < layers.size(); ++li) {
    const Layer& l = layers[li];
    std::vector<int64_t> segment_elems;  // elements the tile stage pruned
    size_t u = 0;
    for (const auto& t : tiles[li])
      for (int64_t c = 0; c < l.cols; ++c, ++u)
        if (pruned[li][u])
          for (int64_t r : t) {
            masks[li][size_t(r * l.cols + c)] = 0;
            segment_elems.push_back(r * l.cols + c);
          }
    // 3. The remainder: the largest of them back.
    const int64_t back = std::min<int64_t>(rounded(o.remainder * double(l.rows * l.cols)), int64_t(segment_elems.size()));
    if (back <= 0) continue;
    std::nth_element(segment_elems.begin(), segment_elems.begin() + back, segment_elems.end(),
                     [&](int64_t a, int64_t b) { return std::abs(element(l, a)) > std::abs(element(l, b)); });
    for (int64_t i = 0; i < back; ++i) masks[li][size_t(segment_elems[size_t(i)])] = 1;
  }
}

}  // namespace

std::vector<std::vector<uint8_t>> compute_masks(const std::vector<Layer>& layers, const Options& o) {
  o.validate();
  std::vector<std::vector<uint8_t>> masks(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
    std::string why;
    SPARTA_CHECK(fits(o, l, why), "cannot prune '", l.name, "' as ", pattern_name(o.pattern), ": ", why);
    SPARTA_ASSERT(l.w.size() == size_t(l.rows * l.cols) && (l.grad.empty() || l.grad.size() == l.w.size()),
                  "layer data of the wrong size");
    SPARTA_ASSERT(o.pattern != Pattern::channel || l.channel_unit.size() == size_t(l.rows), "channel units per row");
    for (size_t j = 0; j < l.grad.size(); ++j)
      SPARTA_CHECK(std::isfinite(l.grad[j]), "the gradient of '", l.name, "' is not finite");
    masks[i].assign(l.w.size(), 1);
  }
  if (o.target() <= 0 && o.pattern != Pattern::nm) return masks;
  switch (o.pattern) {
    case Pattern::unstructured: block_masks(layers, o, 1, 1, masks); break;
    case Pattern::block: block_masks(layers, o, o.block.r, o.block.c, masks); break;
    case Pattern::nm: nm_masks(layers, o, masks); break;
    case Pattern::tilewise: tilewise_masks(layers, o, masks); break;
    case Pattern::channel: channel_masks(layers, o, masks); break;
  }
  return masks;
}

}  // namespace sparta::prune
