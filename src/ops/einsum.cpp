// Einsum over one or two f32 operands, in the forms exports use: batched
// and plain products ("bij,bjk->bik", "bhqd,bhkd->bhqk"), transposes,
// reductions ("ij->i"), diagonals ("ii->i"), outer and inner products,
// ellipses ("...ij,...jk->...ik") and implicit outputs ("ij,jk"). Each
// operand is first brought to distinct letters (a repeated letter takes the
// diagonal) with letters no one else needs summed away; two operands then
// multiply as one batched GEMM [batch, m, k] x [batch, k, n] (oneDNN's
// sgemm per batch), and the result is transposed to the output's order.
#include <algorithm>
#include <cstring>
#include <map>

#include "kernels/onednn_kernels.h"
#include "ops/op_def.h"

namespace sparta {
namespace {

// A tensor whose axes are named by letters (distinct).
struct Labeled {
  Tensor t;
  std::string letters;
};

struct Equation {
  std::vector<std::string> in;
  std::string out;
};

// Parses the equation, expanding "..." into upper-case letters (the
// ellipsis dims, right-aligned across operands and broadcast-free).
Equation parse(std::string eq, const std::vector<const Tensor*>& ops, const OpCall& c) {
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  const size_t arrow = eq.find("->");
  std::string lhs = eq.substr(0, arrow);
  Equation e;
  for (size_t s = 0;;) {
    const size_t comma = lhs.find(',', s);
    e.in.push_back(lhs.substr(s, comma == std::string::npos ? std::string::npos : comma - s));
    if (comma == std::string::npos) break;
    s = comma + 1;
  }
  if (e.in.size() != ops.size()) c.fail("the equation names " + std::to_string(e.in.size()) + " operands, the node has " +
                                        std::to_string(ops.size()));
  int64_t ell = 0;
  for (size_t i = 0; i < e.in.size(); ++i) {
    const size_t dots = e.in[i].find("...");
    const int64_t named = int64_t(e.in[i].size()) - (dots == std::string::npos ? 0 : 3);
    if (dots == std::string::npos && named != ops[i]->rank())
      c.fail("operand " + std::to_string(i) + " has rank " + std::to_string(ops[i]->rank()) + ", the equation names " +
             std::to_string(named) + " axes");
    if (dots != std::string::npos) ell = std::max(ell, ops[i]->rank() - named);
  }
  std::string ell_letters;
  for (int64_t i = 0; i < ell; ++i) ell_letters.push_back(char('A' + i));
  for (size_t i = 0; i < e.in.size(); ++i) {
    const size_t dots = e.in[i].find("...");
    if (dots == std::string::npos) continue;
    const int64_t k = ops[i]->rank() - int64_t(e.in[i].size() - 3);
    if (k < 0) c.fail("operand " + std::to_string(i) + " has fewer axes than the equation names");
    e.in[i].replace(dots, 3, ell_letters.substr(size_t(ell - k)));
  }
  for (const std::string& s : e.in)
    for (char ch : s)
      if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z' && ch - 'A' < ell)) c.fail(std::string("bad letter '") + ch + "'");
  if (arrow != std::string::npos) {
    e.out = eq.substr(arrow + 2);
    const size_t dots = e.out.find("...");
    if (dots != std::string::npos) e.out.replace(dots, 3, ell_letters);
  } else {  // implicit: the ellipsis, then letters seen once, alphabetically
    std::map<char, int> count;
    for (const std::string& s : e.in)
      for (char ch : s) ++count[ch];
    e.out = ell_letters;
    for (const auto& [ch, n] : count)
      if (n == 1 && ch >= 'a') e.out.push_back(ch);
  }
  return e;
}

// Copies t into the axis order `to` (a permutation of its letters).
Labeled permute(const Labeled& x, const std::string& to) {
  if (x.letters == to) return x;
  std::vector<int64_t> dims, strides;
  const std::vector<int64_t> st = contiguous_strides(x.t.shape().dims());
  for (char ch : to) {
    const size_t a = x.letters.find(ch);
    dims.push_back(x.t.dim(int(a)));
    strides.push_back(st[a]);
  }
  Tensor y(DType::f32, Shape(dims), Uninitialized{});
  copy_view(x.t.raw(), sizeof(float), 0, dims, strides, y.raw());
  return {y, to};
}

// One operand with distinct letters (repeats: the diagonal) and the letters
// in `keep` only (others summed).
Labeled reduce_operand(const Tensor& t, const std::string& letters, const std::string& keep, const OpCall& c) {
  std::string uniq;
  std::vector<int64_t> dims, strides;
  const std::vector<int64_t> st = contiguous_strides(t.shape().dims());
  for (size_t i = 0; i < letters.size(); ++i) {
    const size_t at = uniq.find(letters[i]);
    if (at == std::string::npos) {
      uniq.push_back(letters[i]);
      dims.push_back(t.dim(int(i)));
      strides.push_back(st[i]);
    } else {
      if (dims[at] != t.dim(int(i))) c.fail(std::string("letter '") + letters[i] + "' has two extents in one operand");
      strides[at] += st[i];  // the diagonal
    }
  }
  Tensor u(DType::f32, Shape(dims), Uninitialized{});
  copy_view(t.raw(), sizeof(float), 0, dims, strides, u.raw());
  std::string kept, summed;
  for (char ch : uniq) (keep.find(ch) != std::string::npos ? kept : summed).push_back(ch);
  if (summed.empty()) return {u, uniq};
  Labeled p = permute({u, uniq}, kept + summed);  // summed letters last: rows of contiguous sums
  int64_t inner = 1;
  for (size_t i = kept.size(); i < p.letters.size(); ++i) inner *= p.t.dim(int(i));
  std::vector<int64_t> kd(p.t.shape().dims().begin(), p.t.shape().dims().begin() + int64_t(kept.size()));
  Tensor r(DType::f32, Shape(kd), Uninitialized{});
  const float* pp = p.t.data<float>();
  for (int64_t o = 0; o < r.numel(); ++o) {
    double acc = 0;
    for (int64_t i = 0; i < inner; ++i) acc += pp[o * inner + i];
    r.data<float>()[o] = float(acc);
  }
  return {r, kept};
}

void einsum(OpCall& c) {
  std::vector<const Tensor*> ops;
  for (size_t i = 0; i < c.node.inputs.size(); ++i) {
    ops.push_back(&c.input(i));
    if (ops.back()->dtype() != DType::f32) c.fail("supports f32 operands");
  }
  if (ops.empty() || ops.size() > 2) c.fail("supports one or two operands");
  const Attribute* eqa = c.node.attr("equation");
  if (!eqa) c.fail("needs the equation attribute");
  const Equation e = parse(eqa->s, ops, c);
  std::map<char, int64_t> extent;
  for (size_t i = 0; i < ops.size(); ++i)
    for (size_t a = 0; a < e.in[i].size(); ++a) {
      auto [it, fresh] = extent.emplace(e.in[i][a], ops[i]->dim(int(a)));
      if (!fresh && it->second != ops[i]->dim(int(a)))
        c.fail(std::string("letter '") + e.in[i][a] + "' has extents " + std::to_string(it->second) + " and " +
               std::to_string(ops[i]->dim(int(a))) + " (broadcasting is not supported)");
    }
  for (char ch : e.out)
    if (!extent.count(ch)) c.fail(std::string("output letter '") + ch + "' is in no operand");
  // Letters each operand must keep: the output's and the other operand's.
  const auto keep_for = [&](size_t i) {
    std::string k = e.out;
    if (ops.size() == 2) k += e.in[1 - i];
    return k;
  };
  Labeled a = reduce_operand(*ops[0], e.in[0], keep_for(0), c);
  if (ops.size() == 1) return c.out.push_back(permute(a, e.out).t);
  Labeled b = reduce_operand(*ops[1], e.in[1], keep_for(1), c);
  // Letters by role: batch (both and output), m (a and output), n (b and
  // output), k (both, not output: contracted).
  std::string batch, m, n, k;
  for (char ch : a.letters) {
    const bool in_b = b.letters.find(ch) != std::string::npos, in_out = e.out.find(ch) != std::string::npos;
    (in_b ? (in_out ? batch : k) : m).push_back(ch);
  }
  for (char ch : b.letters)
    if (a.letters.find(ch) == std::string::npos) n.push_back(ch);
  const auto size = [&](const std::string& s) {
    int64_t p = 1;
    for (char ch : s) p *= extent[ch];
    return p;
  };
  const int64_t B = size(batch), M = size(m), N = size(n), K = size(k);
  const Labeled pa = permute(a, batch + m + k), pb = permute(b, batch + k + n);
  std::vector<int64_t> rd;
  for (char ch : batch + m + n) rd.push_back(extent[ch]);
  Tensor r(DType::f32, Shape(rd), Uninitialized{});
  for (int64_t q = 0; q < B; ++q)
    onednn_sgemm(M, N, K, pa.t.data<float>() + q * M * K, K, pb.t.data<float>() + q * K * N, N, false,
                 r.data<float>() + q * M * N, N, false, c.threads);
  c.out.push_back(permute({r, batch + m + n}, e.out).t);
}

void einsum_shape(const ShapeCtx& c) {
  const Attribute* eqa = c.n.attr("equation");
  c.require(eqa != nullptr, "needs the equation attribute");
  const std::string& eq = eqa->s;
  const size_t arrow = eq.find("->");
  if (arrow == std::string::npos || eq.find("...") != std::string::npos) return c.set(0, std::nullopt, c.dtype(0));
  std::map<char, int64_t> extent;
  int op = 0, axis = 0;
  for (size_t i = 0; i < arrow; ++i) {
    const char ch = eq[i];
    if (ch == ' ') continue;
    if (ch == ',') {
      ++op, axis = 0;
      continue;
    }
    const ShapeCtx::Dims* d = c.dims(op);
    if (d && axis < int(d->size()) && (*d)[size_t(axis)] >= 0) extent[ch] = (*d)[size_t(axis)];
    ++axis;
  }
  ShapeCtx::Dims out;
  for (size_t i = arrow + 2; i < eq.size(); ++i)
    if (eq[i] != ' ') out.push_back(extent.count(eq[i]) ? extent[eq[i]] : -1);
  c.set(0, out, c.dtype(0));
}

}  // namespace

void define_einsum_ops() { define_op({"Einsum"}, {.shape = einsum_shape, .run = einsum}); }

}  // namespace sparta
