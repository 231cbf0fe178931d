// Int8MatMul: the blocking and threading over the tiles of
// int8_matmul_tiles.h, and the portable tile.
#include "kernels/cpu_fast/int8_matmul.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/cpu_fast/int8_matmul_tiles.h"
#include "kernels/cpu_fast/striped_rows.h"

namespace jamba::kernels {
namespace {

// Weights per thread block: small enough to stay in L2 while every tile of
// x rows passes over them.
constexpr int64_t kInt8BlockBytes = 96 << 10;

// Decode (M <= 2) on AVX2 in striped row order (striped_rows.h), 4 streams
// per thread, as FastMatMul's GEMV.
void StripedInt8Gemv(const float* x, int M, int64_t K, const int8_t* q, const float* scale,
                     int64_t N, float* y) {
  ForEachStripedTile(N, kInt8TileCols, [&](int64_t n, int64_t stride, int nr) {
    Int8Tile t;
    t.x = x;
    t.ldx = K;
    t.K = K;
    t.ldy = N;
    t.prefetch_next = false;
    t.ldq = stride * K;
    t.y_stride = stride;
    t.q = q + n * K;
    t.scale = scale + n;
    t.y = y + n;
    Avx2Int8Tile(t, M, nr);
  });
}

}  // namespace

void PortableInt8Tile(const Int8Tile& t, int mr, int nr) {
  for (int i = 0; i < mr; ++i) {
    const float* x = t.x + i * t.ldx;  // [K]
    for (int j = 0; j < nr; ++j) {
      const int8_t* q = t.q + j * t.ldq;  // [K]
      std::array<float, 8> lanes{};       // eight partial sums, as the AVX2 tile
      for (int64_t k = 0; k < t.K; ++k) lanes[k % 8] += x[k] * static_cast<float>(q[k]);
      float dot = 0;
      for (const float lane : lanes) dot += lane;
      t.y[i * t.ldy + j * t.y_stride] = dot * t.scale[j * t.y_stride];
    }
  }
}

void Int8MatMul(CpuIsa isa, const float* x, int64_t M, int64_t K, const int8_t* q,
                const float* scale, int64_t N, float* y) {
  if (M == 0 || N == 0) return;
  const bool avx2 = isa != CpuIsa::kPortable;
  if (avx2 && M <= 2) {
    StripedInt8Gemv(x, static_cast<int>(M), K, q, scale, N, y);
    return;
  }
  // Decode (M <= 2, portable): a 1-2 x 4 tile; otherwise 4 x 3 (12
  // accumulators, 3 weight vectors and one x vector fill AVX2's 16 registers).
  const int tile_m = static_cast<int>(std::min<int64_t>(M, kInt8TileRows));
  const int tile_n = M <= 2 ? kInt8TileCols : 3;
  const int64_t threads = ThreadPool::Default().num_threads();
  // q rows per block: about kInt8BlockBytes, at least one block per thread,
  // a multiple of tile_n.
  int64_t rows = std::max<int64_t>(1, kInt8BlockBytes / std::max<int64_t>(1, K));
  rows = std::min(rows, (N + threads - 1) / threads);
  rows = (rows + tile_n - 1) / tile_n * tile_n;
  const int64_t blocks = (N + rows - 1) / rows;
  ThreadPool::Default().ParallelFor(blocks, 1, [&](int64_t b0, int64_t b1) {
    Int8Tile t;
    t.ldx = K;
    t.ldq = K;
    t.K = K;
    t.ldy = N;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n_end = std::min(N, (b + 1) * rows);
      for (int64_t m = 0; m < M; m += tile_m) {
        const int mr = static_cast<int>(std::min<int64_t>(tile_m, M - m));
        t.x = x + m * K;
        for (int64_t n = b * rows; n < n_end; n += tile_n) {
          const int nr = static_cast<int>(std::min<int64_t>(tile_n, n_end - n));
          t.q = q + n * K;
          t.scale = scale + n;
          t.y = y + m * N + n;
          if (avx2) {
            Avx2Int8Tile(t, mr, nr);
          } else {
            PortableInt8Tile(t, mr, nr);
          }
        }
      }
    }
  });
}

}  // namespace jamba::kernels
