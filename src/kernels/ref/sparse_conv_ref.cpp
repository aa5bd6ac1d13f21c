#include <algorithm>
#include <vector>

#include "kernels/sparse_conv.h"

namespace sparta {

void sparse_conv_reference(const SparseConvArgs& a) {
  const KernelMap& m = *a.map;
  std::vector<double> acc(size_t(m.n_out * a.cout), 0.0);
  const auto add = [&](int64_t in, int64_t out, int k) {
    const float* xr = a.x + in * a.cin;
    const float* wk = a.w + int64_t(k) * a.cin * a.cout;
    double* yr = acc.data() + out * a.cout;
    for (int64_t ci = 0; ci < a.cin; ++ci)
      for (int64_t co = 0; co < a.cout; ++co) yr[co] += double(xr[ci]) * wk[ci * a.cout + co];
  };
  for (int k = 0; k < m.volume; ++k) {
    if (k == m.centre) {
      for (int64_t i = 0; i < m.n_in; ++i) add(i, i, k);
      continue;
    }
    for (int64_t p = m.begin[size_t(k)]; p < m.begin[size_t(k) + 1]; ++p) add(m.in[size_t(p)], m.out[size_t(p)], k);
  }
  for (int64_t o = 0; o < m.n_out; ++o)
    for (int64_t co = 0; co < a.cout; ++co) {
      double v = acc[size_t(o * a.cout + co)] + (a.bias ? a.bias[co] : 0.f);
      if (a.relu) v = std::max(v, 0.0);
      a.y[o * a.cout + co] = float(v);
    }
}

}  // namespace sparta
