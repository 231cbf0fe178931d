// Register tiles of the int8-weight MatMul (Int8MatMul): y[i, j] =
// scale[j] * sum_k x[i, k] * q[j, k] for i < mr, j < nr, with x in f32 and
// q int8 read as stored (never widened to a matrix). Each output has its own
// accumulator over k in ascending order, then a fixed horizontal sum and one
// multiply by the row scale, so its arithmetic depends only on K, not on mr,
// nr or the thread split. Pure functions; thread-safe.
#pragma once

#include <cstdint>

namespace jamba::kernels {

struct Int8Tile {
  const float* x = nullptr;  // x[0, 0]; rows ldx floats apart
  int64_t ldx = 0;
  const int8_t* q = nullptr;  // q[0, 0]; rows ldq bytes apart
  int64_t ldq = 0;
  const float* scale = nullptr;  // [nr]: one per q row
  int64_t K = 0;                 // reduction length
  float* y = nullptr;            // y[0, 0]; rows ldy floats apart
  int64_t ldy = 0;
  int64_t y_stride = 1;  // floats between outputs j of a y row; scale entries as far apart
  // The next tile's q rows follow these (ldq == K): read them ahead. False
  // when the tile's rows are far apart (Int8MatMul's striped decode).
  bool prefetch_next = true;
};

// Largest tile any tier accepts.
constexpr int kInt8TileRows = 4;  // mr
constexpr int kInt8TileCols = 4;  // nr

// Plain C++ (any CPU). REQUIRES: 1 <= mr <= 4, 1 <= nr <= 4.
void PortableInt8Tile(const Int8Tile& t, int mr, int nr);

// AVX2 + FMA: 8 int8 weights per step sign-extended to i32 and converted to
// f32 (exact), FMA into f32. REQUIRES: as above and the CPU has AVX2 and FMA.
void Avx2Int8Tile(const Int8Tile& t, int mr, int nr);

}  // namespace jamba::kernels
