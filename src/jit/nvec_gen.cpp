#include "jit/nvec_gen.h"

#include "core/error.h"

namespace sparta::jit {

using namespace Xbyak;

namespace {

// Written once over the vector register type (Ymm: AVX2, Zmm: AVX-512).
// Arguments (System V): rdi xb, rsi koffs, rdx nk, rcx w, r8 wstride, r9 tile.
template <class Vmm>
void emit_nvec(Code& a, const NvecShape& s) {
  constexpr bool kZmm = std::is_same_v<Vmm, Zmm>;
  const int W = s.width(), MR = s.mr, NV = s.nv;
  const bool masked = s.nw < W;
  const int nacc = MR * NV;
  auto acc = [&](int r, int v) { return Vmm(r * NV + v); };
  auto wv = [&](int v) { return Vmm(nacc + v); };
  const Vmm xb(nacc + NV), mask(nacc + NV + 1);  // broadcast X; the AVX2 load mask
  SPARTA_ASSERT(nacc + NV + 1 + (masked && !kZmm ? 1 : 0) <= (kZmm ? 32 : 16), "nvec tile needs too many registers");
  Label mask_data, loop, store;
  if (masked) {
    if constexpr (kZmm) {
      a.mov(a.eax, (1u << s.nw) - 1);
      a.kmovw(a.k1, a.eax);
    } else {
      a.vmovups(mask, a.ptr[a.rip + mask_data]);
    }
  }
  for (int q = 0; q < nacc; ++q) {
    if constexpr (kZmm) a.vpxord(Vmm(q), Vmm(q), Vmm(q));
    else a.vxorps(Vmm(q), Vmm(q), Vmm(q));
  }
  a.test(a.rdx, a.rdx);
  a.jz(store, CodeGenerator::T_NEAR);
  a.L(loop);
  a.movsxd(a.rax, a.dword[a.rsi]);
  a.add(a.rax, a.rdi);
  for (int v = 0; v < NV; ++v) {
    const Address src = a.ptr[a.rcx + v * W * 4];
    if (masked && v + 1 == NV) {
      if constexpr (kZmm) a.vmovups(wv(v) | a.k1 | a.T_z, src);
      else a.vmaskmovps(wv(v), mask, src);
    } else {
      a.vmovups(wv(v), src);
    }
  }
  for (int r = 0; r < MR; ++r) {
    if (kZmm && NV == 1) {
      a.vfmadd231ps(acc(r, 0), wv(0), a.ptr_b[a.rax + r * 4]);
      continue;
    }
    a.vbroadcastss(xb, a.ptr[a.rax + r * 4]);
    for (int v = 0; v < NV; ++v) a.vfmadd231ps(acc(r, v), wv(v), xb);
  }
  // The weights of the k 8 ahead: on the first block of M they come from
  // memory (bsr 32x1 90% at 128x768x3072, timed after other work: 0.33-0.40
  // ms with, 0.36-0.43 without).
  for (int line = 0; line < NV * W * 4; line += 64) a.prefetcht0(a.ptr[a.rcx + a.r8 * 8 + line]);
  // And the packed X of the k 8 ahead (the offset tables carry 8 entries
  // past their end): with K = 3072 a packed block of 14 rows is 172 KiB,
  // read at random k from L2 (BERT-base's second FFN linear in 32x1 blocks:
  // 0.35 ms with, 0.38-0.39 without).
  a.movsxd(a.r10, a.dword[a.rsi + 32]);
  a.prefetcht0(a.ptr[a.rdi + a.r10]);
  a.prefetcht0(a.ptr[a.rdi + a.r10 + s.ld * 4 - 4]);
  a.add(a.rsi, 4);
  a.add(a.rcx, a.r8);
  a.dec(a.rdx);
  a.jnz(loop, CodeGenerator::T_NEAR);
  a.L(store);
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) a.vmovups(a.ptr[a.r9 + (r * NV + v) * W * 4], acc(r, v));
  a.vzeroupper();
  a.ret();
  if (masked && !kZmm) {
    a.align(32);
    a.L(mask_data);
    for (int i = 0; i < W; ++i) a.dd(i < s.nw ? 0xffffffffu : 0u);
  }
}

}  // namespace

NvecCode::NvecCode(const std::vector<NvecShape>& shapes) {
  for (const NvecShape& s : shapes) {
    SPARTA_ASSERT(s.nw >= 1 && s.nw <= s.width() && s.mr >= 1 && s.mr <= s.ld && s.nv >= 1, "bad nvec shape");
    code_.align(16);
    entries_.push_back(code_.getSize());
    if (s.avx512) emit_nvec<Zmm>(code_, s);
    else emit_nvec<Ymm>(code_, s);
  }
  code_.finish();
}

}  // namespace sparta::jit
