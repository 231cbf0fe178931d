// The decode GEMV's row order, shared by the f32/bf16 and the int8 MatMul.
// Each thread owns a contiguous range of weight rows, a multiple of `cols`,
// and reads it as `cols` long streams: tile i takes rows n0 + j * S + i for
// j < cols (S = rows / cols), so each stream runs on through consecutive rows
// whatever K is; a last tile of fewer than `cols` consecutive rows ends the
// range. Short consecutive tiles instead end each row stream before the
// hardware prefetchers ramp up (bench/results/cpu.md, "The decode GEMV on
// cold weights").
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/thread_pool.h"

namespace jamba::kernels {

// Calls tile(n, stride, nr) on ThreadPool::Default() for every tile: rows
// n + j * stride for j < nr, nr <= cols, together covering [0, N) once.
template <typename Tile>
void ForEachStripedTile(int64_t N, int cols, const Tile& tile) {
  const int64_t threads = ThreadPool::Default().num_threads();
  const int64_t part = ((N + threads - 1) / threads + cols - 1) / cols * cols;
  const int64_t parts = (N + part - 1) / part;
  ThreadPool::Default().ParallelFor(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n0 = p * part, n1 = std::min(N, n0 + part);
      const int64_t S = (n1 - n0) / cols;
      for (int64_t i = 0; i < S; ++i) tile(n0 + i, S, cols);
      if (n0 + cols * S < n1) tile(n0 + cols * S, 1, static_cast<int>(n1 - n0 - cols * S));
    }
  });
}

}  // namespace jamba::kernels
