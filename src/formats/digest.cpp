// What a kernel's speed depends on in a packed weight: its format, block
// shape and where the kept elements are, not their values.
#include "core/hash.h"
#include "formats/formats.h"

namespace sparta {
namespace {

template <typename T>
void feed(Hasher& h, const std::vector<T>& v) {
  const uint64_t n = v.size();
  h.feed(&n, sizeof n);
  if (!v.empty()) h.feed(v.data(), v.size() * sizeof(T));
}

struct Digest {
  Hasher& h;
  void operator()(const DenseMatrix&) const {}
  void operator()(const CsrMatrix& m) const {
    feed(h, m.row_ptr);
    feed(h, m.col_idx);
  }
  void operator()(const BsrMatrix& m) const {
    const int b[2] = {m.block.r, m.block.c};
    h.feed(b, sizeof b);
    feed(h, m.block_row_ptr);
    feed(h, m.block_col);
  }
  void operator()(const NmMatrix& m) const {
    const int nm[2] = {m.nm.n, m.nm.m};
    h.feed(nm, sizeof nm);
    feed(h, m.index);
  }
  void operator()(const TilewiseMatrix& m) const {
    h.feed(&m.g, sizeof m.g);
    feed(h, m.tile_ptr);
    feed(h, m.kept_k);
    (*this)(m.remainder);
  }
  void operator()(const StructuredMatrix& m) const {
    feed(h, m.kept_rows);
    feed(h, m.kept_cols);
  }
  void operator()(const DecomposedMatrix& m) const {
    const int64_t kind = static_cast<int64_t>(m.main.index());
    h.feed(&kind, sizeof kind);
    std::visit(*this, m.main);
    (*this)(m.remainder);
  }
};

}  // namespace

uint64_t format_digest(const WeightFormat& f) {
  if (std::holds_alternative<DenseMatrix>(f)) return 0;
  Hasher h(0x5350415254412d31ull);  // "SPARTA-1"
  const int64_t head[3] = {static_cast<int64_t>(f.index()), format_rows(f), format_cols(f)};
  h.feed(head, sizeof head);
  std::visit(Digest{h}, f);
  return h.value();
}

std::string format_label(const WeightFormat& f) {
  std::string s = format_name(f);
  if (const auto* b = std::get_if<BsrMatrix>(&f)) s += " " + b->block.str();
  if (const auto* n = std::get_if<NmMatrix>(&f)) s += " " + n->nm.str();
  if (const auto* t = std::get_if<TilewiseMatrix>(&f)) s += " g" + std::to_string(t->g);
  if (const auto* d = std::get_if<DecomposedMatrix>(&f)) s += " " + format_label(main_part(*d)) + " + csr";
  return s;
}

}  // namespace sparta
