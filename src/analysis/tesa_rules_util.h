// Helpers shared by the TeSA rule families (tesa_rules*.cpp): broadcast
// iteration over an output and its operands, and liveness shorthands.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "analysis/tesa_rules.h"
#include "core/error.h"

namespace sparta::tesa_rules {

// Strides of `in` aligned right against an output of rank r, 0 where it
// broadcasts.
inline std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in, size_t r) {
  SPARTA_CHECK(in.size() <= r, "an operand of higher rank than the output");
  std::vector<int64_t> st(r, 0);
  int64_t s = 1;
  for (size_t i = in.size(); i-- > 0;) {
    st[r - in.size() + i] = in[i] == 1 ? 0 : s;
    s *= in[i];
  }
  return st;
}

// Calls f(out_index, offsets) for every element of `out`, with each
// operand's broadcast offset.
template <typename F>
void for_each_output(const std::vector<int64_t>& out, const std::vector<Facts>& ops, F f) {
  const size_t r = out.size(), k = ops.size();
  std::vector<std::vector<int64_t>> st(k);
  for (size_t j = 0; j < k; ++j)
    if (ops[j].present) st[j] = broadcast_strides(ops[j].dims, r);
  int64_t total = 1;
  for (int64_t d : out) total *= d;
  std::vector<int64_t> idx(r, 0), off(k, 0);
  for (int64_t e = 0; e < total; ++e) {
    f(e, off);
    for (size_t d = r; d-- > 0;) {
      ++idx[d];
      for (size_t j = 0; j < k; ++j)
        if (!st[j].empty()) off[j] += st[j][d];
      if (idx[d] < out[d]) break;
      for (size_t j = 0; j < k; ++j)
        if (!st[j].empty()) off[j] -= st[j][d] * out[d];
      idx[d] = 0;
    }
  }
}

inline ElemCode bits_code(int b) { return static_cast<ElemCode>(b); }

// Every input wholly needed when any output element is (arguments, and the
// conservative rule).
inline void all_needed_if_any(TesaBackward& b, size_t from) {
  bool any = false;
  for (const LiveMask* l : b.out_live) any = any || !l || l->any();
  if (!any) return;
  for (size_t i = from; i < b.in_live.size(); ++i) b.in_live[i].fill();
}

// Every element needed (null: no liveness known, so all).
inline bool all_live(const LiveMask* l) { return !l || l->all(); }

inline bool live_at(const LiveMask* l, int64_t i) { return !l || (*l)[i]; }

}  // namespace sparta::tesa_rules
