// Sparse weight formats for W[N,K] (rows = output features N, columns = the
// reduction dimension K). Each is packed from a dense tensor plus a Tesa
// (elements the Tesa prunes are dropped; kept elements are stored even when
// their value is zero) and unpacks back to the dense tensor exactly.
//
// Layouts are chosen for the kernels in kernels/: block values are stored
// column-major inside a block (for each of the c columns, r row values are
// contiguous) so that a kernel vectorizing along N reads a block column with
// one load, and one vectorizing along M reads r consecutive weights for the
// same k.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <variant>
#include <vector>

#include "core/pattern.h"
#include "core/tensor.h"
#include "core/tesa.h"

namespace sparta {

struct CsrMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> row_ptr;  // rows + 1
  std::vector<int32_t> col_idx;  // nnz, ascending within a row
  std::vector<float> values;     // nnz
  int64_t nnz() const { return static_cast<int64_t>(values.size()); }
};

struct BsrMatrix {
  int64_t rows = 0, cols = 0;
  BlockShape block;                    // r along rows (N), c along columns (K)
  std::vector<int64_t> block_row_ptr;  // rows / r + 1
  std::vector<int32_t> block_col;      // block column index (units of c), ascending
  std::vector<float> values;           // nblocks * r * c; block-internal column-major
  int64_t nblocks() const { return static_cast<int64_t>(block_col.size()); }
};

struct NmMatrix {
  int64_t rows = 0, cols = 0;
  NmShape nm;
  // rows * (cols / m) * n slots; a group with fewer than n kept elements is
  // padded with zero values (their index is any position of the group).
  std::vector<float> values;
  std::vector<uint8_t> index;  // position inside the group, [0, m)
  int64_t slots_per_row() const { return cols / nm.m * nm.n; }
};

struct TilewiseMatrix {
  int64_t rows = 0, cols = 0;
  int g = 128;                        // rows per tile (the last tile may be shorter)
  std::vector<int64_t> tile_ptr;      // ntiles + 1 offsets into kept_k
  std::vector<int32_t> kept_k;        // per tile, ascending
  std::vector<int64_t> value_ptr;     // ntiles + 1 offsets into values
  std::vector<float> values;          // per tile: for each kept k, tile_rows values (k-major)
  CsrMatrix remainder;                // kept elements outside the tiles' kept columns
  int64_t ntiles() const { return static_cast<int64_t>(tile_ptr.size()) - 1; }
};

struct StructuredMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<int32_t> kept_rows;  // ascending
  std::vector<int32_t> kept_cols;  // ascending
  std::vector<float> values;       // kept_rows x kept_cols, row-major
};

// A weight that mixes patterns, as the sum of two parts: a regular main
// part (the blocks of a BSR cover dense enough to pay, or the elements an
// N:M pattern holds) and the unstructured remainder in CSR. Kernels run
// the main part, then add the remainder.
struct DecomposedMatrix {
  int64_t rows = 0, cols = 0;
  std::variant<BsrMatrix, NmMatrix> main;
  CsrMatrix remainder;
};

// A dense W, for uniform handling in kernels and benchmarks.
struct DenseMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;  // row-major
};

using WeightFormat =
    std::variant<DenseMatrix, CsrMatrix, BsrMatrix, NmMatrix, TilewiseMatrix, StructuredMatrix, DecomposedMatrix>;

// "dense", "csr", "bsr", "nm", "tilewise", "structured", "decomposed".
std::string format_name(const WeightFormat& f);
int64_t format_rows(const WeightFormat& f);
int64_t format_cols(const WeightFormat& f);
// The format with its shape parameters: "bsr 32x1", "nm 2:4", "tilewise g128".
std::string format_label(const WeightFormat& f);
// A digest of the kept positions and the format (not the values): what a
// kernel's speed depends on, for kernel-choice keys. 0 for a dense matrix.
uint64_t format_digest(const WeightFormat& f);
// Stored (kept) elements, including explicit zeros kept inside blocks/tiles.
int64_t format_stored(const WeightFormat& f);

struct PackOptions {
  BlockShape block{32, 1};
  NmShape nm{2, 4};
  int tile = 128;
  // Tile-wise: a column is kept for a tile when at least this fraction of the
  // tile's rows keep it; other kept elements go to the remainder.
  double tile_keep_fraction = 0.5;
  // Decomposed: the main part's format ("bsr" with `block`, or "nm" with
  // `nm`), and for "bsr" the least fraction of kept elements a block needs
  // to go to the main part (the rest of its elements go to the remainder).
  std::string main = "bsr";
  double min_block_density = 0.5;
};

DenseMatrix pack_dense(const Tensor& w, const Tesa& t);
CsrMatrix pack_csr(const Tensor& w, const Tesa& t);
BsrMatrix pack_bsr(const Tensor& w, const Tesa& t, BlockShape block);
NmMatrix pack_nm(const Tensor& w, const Tesa& t, NmShape nm);
TilewiseMatrix pack_tilewise(const Tensor& w, const Tesa& t, int g, double keep_fraction = 0.5);
StructuredMatrix pack_structured(const Tensor& w, const Tesa& t);
DecomposedMatrix pack_decomposed(const Tensor& w, const Tesa& t, const PackOptions& opt);
// The decomposed matrix's main part as a format of its own (for kernels).
WeightFormat main_part(const DecomposedMatrix& d);
// By name: "dense", "csr", "bsr", "nm", "tilewise", "structured", "decomposed".
WeightFormat pack(const std::string& format, const Tensor& w, const Tesa& t, const PackOptions& opt = {});

Tensor unpack(const WeightFormat& f);

// Checks every index and offset, so that a kernel may trust the format.
// Throws sparta::Error naming the first inconsistency.
void validate(const WeightFormat& f);

// Versioned binary serialization with a checksum; load() validates.
void save(const WeightFormat& f, std::ostream& os);
WeightFormat load(std::istream& is);

}  // namespace sparta
