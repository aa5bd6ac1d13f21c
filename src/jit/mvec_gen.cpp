#include "jit/mvec_gen.h"

#include "core/error.h"

namespace sparta::jit {

using namespace Xbyak;

int MvecShape::registers() const { return sets * r * mv + (r > 1 ? mv : 0) + 1; }

namespace {

constexpr int kPrefetchBytes = 2048;

// Written once over the vector register type: Ymm for AVX2, Zmm for
// AVX-512. Arguments (System V): rdi xt, rsi yt, rdx counts | vals
// (baked), rcx offs, r8 vals, r9 groups.
template <class Vmm>
class MvecEmitter {
 public:
  MvecEmitter(Code& c, const MvecShape& s) : a_(c), s_(s), W_(s.width()), MT_(s.mt()) {
    nacc_ = s.sets * s.r * s.mv;
    SPARTA_ASSERT(s.registers() <= (s.avx512 ? 32 : 16), "mvec shape needs too many registers");
  }

  Vmm acc(int set, int i, int v) const { return Vmm((set * s_.r + i) * s_.mv + v); }
  Vmm xr(int v) const { return Vmm(nacc_ + v); }
  Vmm wr() const { return Vmm(nacc_ + (s_.r > 1 ? s_.mv : 0)); }

  // Accumulators zeroed, or set 0 loaded from the group's rows at yt.
  void init(bool accumulate, const RegExp& yt) {
    for (int set = 0; set < s_.sets; ++set)
      for (int i = 0; i < s_.r; ++i)
        for (int v = 0; v < s_.mv; ++v) {
          const Vmm q = acc(set, i, v);
          if (accumulate && set == 0) a_.vmovups(q, a_.ptr[yt + (i * MT_ + v * W_) * 4]);
          else if constexpr (std::is_same_v<Vmm, Zmm>) a_.vpxord(q, q, q);
          else a_.vxorps(q, q, q);
        }
  }

  // One item: X at xb (+ j * MT floats for its k), values at wb in [j][i]
  // order; k j of item u goes to set (u + j) % sets.
  void item(const RegExp& xb, const RegExp& wb, int u) {
    const int R = s_.r;
    for (int j = 0; j < s_.c; ++j) {
      const int set = (u + j) % s_.sets;
      const RegExp xj = xb + j * MT_ * 4;
      if (R == 1) {
        a_.vbroadcastss(wr(), a_.ptr[wb + j * 4]);
        for (int v = 0; v < s_.mv; ++v) a_.vfmadd231ps(acc(set, 0, v), wr(), a_.ptr[xj + v * W_ * 4]);
        continue;
      }
      for (int v = 0; v < s_.mv; ++v) a_.vmovups(xr(v), a_.ptr[xj + v * W_ * 4]);
      for (int i = 0; i < R; ++i) {
        const RegExp wi = wb + (j * R + i) * 4;
        if constexpr (std::is_same_v<Vmm, Zmm>) {
          if (s_.mv == 1) {
            a_.vfmadd231ps(acc(set, i, 0), xr(0), a_.ptr_b[wi]);
            continue;
          }
        }
        a_.vbroadcastss(wr(), a_.ptr[wi]);
        for (int v = 0; v < s_.mv; ++v) a_.vfmadd231ps(acc(set, i, v), xr(v), wr());
      }
    }
  }

  // Sums the sets into set 0 and writes the group's rows to yt + off bytes.
  void store(const RegExp& yt) {
    for (int set = 1; set < s_.sets; ++set)
      for (int i = 0; i < s_.r; ++i)
        for (int v = 0; v < s_.mv; ++v) a_.vaddps(acc(0, i, v), acc(0, i, v), acc(set, i, v));
    for (int i = 0; i < s_.r; ++i)
      for (int v = 0; v < s_.mv; ++v) a_.vmovups(a_.ptr[yt + (i * MT_ + v * W_) * 4], acc(0, i, v));
  }

  int entry_bytes() const { return s_.paired ? 8 : 4; }

  // Item u of the unrolled step from the tables at rcx (and r8).
  void load_item(int u, int per_item) {
    if (!s_.paired) {
      a_.movsxd(a_.rax, a_.dword[a_.rcx + u * 4]);
      item(a_.rdi + a_.rax, a_.r8 + u * per_item, u);
      return;
    }
    a_.mov(a_.rax, a_.qword[a_.rcx + u * 8]);
    if constexpr (std::is_same_v<Vmm, Zmm>) {
      a_.vpbroadcastd(wr(), a_.eax);
    } else {
      a_.vmovd(Xmm(wr().getIdx()), a_.eax);
      a_.vbroadcastss(wr(), Xmm(wr().getIdx()));
    }
    a_.shr(a_.rax, 32);
    for (int v = 0; v < s_.mv; ++v) a_.vfmadd231ps(acc(u % s_.sets, 0, v), wr(), a_.ptr[a_.rdi + a_.rax + v * W_ * 4]);
  }

  void table_function(bool accumulate) {
    const int per_item = s_.r * s_.c * 4;  // value bytes per item
    const int U = s_.c == 1 ? s_.sets : 1; // items per unrolled step
    Label group, main, tail, end, done;
    a_.test(a_.r9, a_.r9);
    a_.jz(done, CodeGenerator::T_NEAR);
    a_.L(group);
    init(accumulate, a_.rsi);
    a_.movsxd(a_.r10, a_.dword[a_.rdx]);
    a_.add(a_.rdx, 4);
    a_.cmp(a_.r10, U);
    a_.jl(tail, CodeGenerator::T_NEAR);
    a_.L(main);
    // The weight stream 2 KiB ahead: a weight is read from memory once per
    // chunk (csr 90% at 128x768x3072, timed after other work: 0.58-0.59 ms
    // with, 0.62-0.66 without; 256 B ahead did not help).
    {
      const Reg64& stream = s_.paired ? a_.rcx : a_.r8;
      const int step_bytes = U * (s_.paired ? 8 : per_item);
      for (int line = 0; line < step_bytes; line += 64) a_.prefetcht0(a_.ptr[stream + kPrefetchBytes + line]);
    }
    for (int u = 0; u < U; ++u) load_item(u, per_item);
    a_.add(a_.rcx, U * entry_bytes());
    if (!s_.paired) a_.add(a_.r8, U * per_item);
    a_.sub(a_.r10, U);
    a_.cmp(a_.r10, U);
    a_.jge(main, CodeGenerator::T_NEAR);
    a_.L(tail);
    a_.test(a_.r10, a_.r10);
    a_.jz(end, CodeGenerator::T_NEAR);
    load_item(0, 0);
    a_.add(a_.rcx, entry_bytes());
    if (!s_.paired) a_.add(a_.r8, per_item);
    a_.dec(a_.r10);
    a_.jmp(tail, CodeGenerator::T_NEAR);
    a_.L(end);
    store(a_.rsi);
    a_.add(a_.rsi, s_.r * MT_ * 4);
    a_.dec(a_.r9);
    a_.jnz(group, CodeGenerator::T_NEAR);
    a_.L(done);
    a_.vzeroupper();
    a_.ret();
  }

  // Groups [g0, g1) with item i0 first: offsets and value positions as
  // displacements (vals in rdx points at the chunk's first value).
  void baked_function(const MvecProgram& p, int64_t g0, int64_t g1, int64_t i0, bool accumulate) {
    const int64_t per_item = int64_t{s_.r} * s_.c;
    int64_t item_i = i0;
    for (int64_t g = g0; g < g1; ++g) {
      const int32_t yoff = static_cast<int32_t>((g - g0) * s_.r * MT_ * 4);
      init(accumulate, a_.rsi + yoff);
      const int32_t n = p.counts[static_cast<size_t>(g)];
      for (int32_t u = 0; u < n; ++u, ++item_i) {
        const int64_t vbytes = (item_i - i0) * per_item * 4;
        SPARTA_ASSERT(vbytes < (int64_t{1} << 31) - 4096, "baked value offset out of range");
        item(a_.rdi + p.offs[static_cast<size_t>(item_i)], a_.rdx + static_cast<int32_t>(vbytes), u);
      }
      store(a_.rsi + yoff);
    }
    a_.vzeroupper();
    a_.ret();
  }

 private:
  Code& a_;
  MvecShape s_;
  int W_, MT_, nacc_;
};

template <class F>
void with_emitter(Code& c, const MvecShape& s, F&& f) {
  if (s.avx512) {
    MvecEmitter<Zmm> e(c, s);
    f(e);
  } else {
    MvecEmitter<Ymm> e(c, s);
    f(e);
  }
}

}  // namespace

std::unique_ptr<MvecCode> MvecCode::table(const MvecShape& s) {
  auto out = std::unique_ptr<MvecCode>(new MvecCode);
  out->code_ = std::make_unique<Code>();
  with_emitter(*out->code_, s, [&](auto& e) {
    for (bool accumulate : {false, true}) {
      out->code_->align(16);
      out->entries_.push_back(out->code_->getSize());
      e.table_function(accumulate);
    }
  });
  out->code_->finish();
  return out;
}

size_t MvecCode::baked_bytes(const MvecShape& s, size_t items, size_t groups) {
  // Upper bounds of the encodings: a broadcast or load with disp32 is at
  // most 11 bytes (EVEX), an FMA with a memory operand 11, with registers 6.
  const size_t per_k = s.r == 1 ? 11 + size_t(s.mv) * 11 : size_t(s.mv) * 11 + size_t(s.r) * (11 + size_t(s.mv) * 6);
  const size_t per_group = size_t(s.sets * s.r * s.mv) * 6 * 2 + size_t(s.r * s.mv) * 11;
  return items * size_t(s.c) * per_k + groups * per_group + 64;
}

std::unique_ptr<MvecCode> MvecCode::baked(const MvecShape& s, const MvecProgram& p, const std::vector<int64_t>& slices,
                                           const std::vector<bool>& accumulate) {
  auto out = std::unique_ptr<MvecCode>(new MvecCode);
  out->code_ = std::make_unique<Code>();
  int64_t item = 0;
  with_emitter(*out->code_, s, [&](auto& e) {
    for (size_t si = 0; si + 1 < slices.size(); ++si) {
      out->entries_.push_back(out->code_->getSize());
      e.baked_function(p, slices[si], slices[si + 1], item, accumulate[si]);
      for (int64_t g = slices[si]; g < slices[si + 1]; ++g) item += p.counts[static_cast<size_t>(g)];
    }
  });
  out->code_->finish();
  return out;
}

}  // namespace sparta::jit
