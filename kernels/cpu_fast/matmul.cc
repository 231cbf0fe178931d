// FastMatMul: y = x · wᵀ (+ bias) on the register tiles of matmul_tiles.h.
// Threads own disjoint blocks of w rows (output columns). Within a block of
// about 128 KiB of weights (kept in L2), every tile of x rows is run against
// every tile of w rows, so each weight is read from memory once per call.
// For M <= 2 (decode) the tile is M x 8 rows of w: a GEMV streaming w once,
// each thread reading its rows as 8 long streams (striped_rows.h).
// From M = 8 on (prefill), the AVX2 tiles run on packed copies instead
// (PackedMatMulAvx2). Weights kept in weight panels from load
// (FastCpuBackend::PrepareMatMulWeight) take PanelGemvAvx2 up to M = 2 and
// PackedMatMulAvx2 above. The arithmetic per output is the same on every path.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu_fast/fast_ops.h"
#include "kernels/cpu_fast/matmul_tiles.h"
#include "kernels/cpu_fast/striped_rows.h"
#include "kernels/cpu_fast/weight_panels.h"

namespace jamba::kernels {
namespace {

constexpr int64_t kBlockBytes = 128 << 10;  // weights per block
constexpr int64_t kGemvMaxRows = 2;         // M at or below this: GEMV tiles
constexpr int64_t kPackedMinRows = 8;       // M at or above this: PackedMatMulAvx2

void CheckArgs(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y) {
  CheckHost(x, "MatMul", "x");
  // w may be in weight panels (PrepareMatMulWeight), which CheckHost refuses.
  JAMBA_CHECK(w.defined() && w.device() == Device::kCpu)
      << "MatMul: w " << w.DebugString() << " is undefined or not in host memory";
  if (w.layout() == Layout::kBackendPacked) {
    JAMBA_CHECK(w.dim(0) % kPanelRows == 0 && w.dim(1) % 8 == 0)
        << "MatMul: w " << w.DebugString() << " cannot be in weight panels";
  }
  CheckHost(y, "MatMul", "y");
  JAMBA_CHECK(x.rank() == 2 && w.rank() == 2 && y.rank() == 2 && x.dim(1) == w.dim(1) &&
              y.dim(0) == x.dim(0) && y.dim(1) == w.dim(0) && x.dtype() == DType::kF32 &&
              y.dtype() == DType::kF32)
      << "MatMul: x " << x.DebugString() << " w " << w.DebugString() << " y " << y.DebugString()
      << " (want f32 x [M,K], w [N,K], f32 y [M,N])";
  JAMBA_CHECK(y.raw_data() != x.raw_data()) << "MatMul: y must not alias x";
  if (bias != nullptr) {
    CheckHost(*bias, "MatMul", "bias");
    JAMBA_CHECK(bias->dtype() == DType::kF32 && bias->numel() == w.dim(0))
        << "MatMul: bias " << bias->DebugString() << " for w " << w.DebugString();
  }
}

// The AVX2 GEMV (M <= kGemvMaxRows) in striped row order (striped_rows.h);
// each output's arithmetic is the tile's, as on every path.
void StripedGemvAvx2(const MatMulTile& base, int M, const char* wd, bool w_bf16, int64_t row_bytes,
                     int64_t N, const float* b, float* yd) {
  ForEachStripedTile(N, kMaxTileCols, [&](int64_t n, int64_t stride, int nr) {
    MatMulTile t = base;
    t.prefetch_next = false;
    t.ldw = stride * base.K;
    t.y_stride = stride;
    t.w = wd + n * row_bytes;
    t.y = yd + n;
    t.bias = b != nullptr ? b + n : nullptr;
    Avx2Tile(t, w_bf16, M, nr);
  });
}

}  // namespace

void FastMatMul(CpuIsa isa, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y) {
  const bool w_bf16 = w.dtype() == DType::kBF16;
  const bool panels = w.layout() == Layout::kBackendPacked;
  if (!panels && (isa == CpuIsa::kPortable || (!w_bf16 && w.dtype() != DType::kF32))) {
    CpuMatMul(x, w, bias, y);
    return;
  }
  CheckArgs(x, w, bias, *y);
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
  if (M == 0 || N == 0) return;
  if (panels) {
    JAMBA_CHECK(isa != CpuIsa::kPortable) << "MatMul: weight panels need AVX2";
    const float* b = bias != nullptr ? bias->data<float>() : nullptr;
    if (M <= kGemvMaxRows) {
      PanelGemvAvx2(x.data<float>(), M, K, w.raw_data(), w_bf16, N, b, y->data<float>());
    } else {
      PackedMatMulAvx2(x.data<float>(), M, K, w.raw_data(), w_bf16, true, N, b, y->data<float>());
    }
    return;
  }
  const bool dpbf16 = isa == CpuIsa::kAvx512Bf16 && w_bf16;
  if (!dpbf16 && M >= kPackedMinRows) {
    PackedMatMulAvx2(x.data<float>(), M, K, w.raw_data(), w_bf16, false, N,
                     bias != nullptr ? bias->data<float>() : nullptr, y->data<float>());
    return;
  }

  // x as the tiles read it: f32 rows, or hi/lo bf16 rows [M, 2, Kp].
  MatMulTile base;
  std::vector<uint16_t> split;
  if (dpbf16) {
    base.ldx = 2 * ((K + 31) / 32 * 32);
    split.resize(static_cast<size_t>(M * base.ldx));
    SplitToBf16HiLo(x.data<float>(), M, K, base.ldx, split.data());
    base.x = split.data();
  } else {
    base.ldx = K;
    base.x = x.data<float>();
  }
  base.ldw = K;
  base.K = K;
  base.ldy = N;
  const int64_t row_bytes = K * static_cast<int64_t>(DTypeSize(w.dtype()));
  const char* wd = static_cast<const char*>(w.raw_data());  // [N, K]
  const float* b = bias != nullptr ? bias->data<float>() : nullptr;
  float* yd = y->data<float>();  // [M, N]
  if (!dpbf16 && M <= kGemvMaxRows) {
    StripedGemvAvx2(base, static_cast<int>(M), wd, w_bf16, row_bytes, N, b, yd);
    return;
  }

  // Tile shape: M x 8 for the AVX-512 GEMV; 4 x 8 on AVX2 (8 outputs per
  // vector) or 4 x 4 on AVX-512 (one vector per output).
  const int tile_m = M <= kGemvMaxRows ? static_cast<int>(M) : kMaxTileRows;
  const int tile_n = M <= kGemvMaxRows || !dpbf16 ? kMaxTileCols : 4;
  // Rows of w per block: about kBlockBytes, a multiple of tile_n, and small
  // enough that every thread gets a block.
  const int64_t threads = ThreadPool::Default().num_threads();
  int64_t block = std::max<int64_t>(1, kBlockBytes / std::max<int64_t>(1, row_bytes));
  block = std::min(block, (N + threads - 1) / threads);
  block = std::max<int64_t>(tile_n, (block + tile_n - 1) / tile_n * tile_n);
  const int64_t num_blocks = (N + block - 1) / block;

  const size_t x_elem = dpbf16 ? sizeof(uint16_t) : sizeof(float);
  ThreadPool::Default().ParallelFor(num_blocks, 1, [&](int64_t b0, int64_t b1) {
    MatMulTile t = base;
    for (int64_t n0 = b0 * block; n0 < std::min(N, b1 * block); n0 += block) {
      const int64_t n1 = std::min(N, n0 + block);
      for (int64_t m = 0; m < M; m += tile_m) {
        const int mr = static_cast<int>(std::min<int64_t>(tile_m, M - m));
        t.x = static_cast<const char*>(base.x) + m * base.ldx * x_elem;
        for (int64_t n = n0; n < n1; n += tile_n) {
          const int nr = static_cast<int>(std::min<int64_t>(tile_n, n1 - n));
          t.w = wd + n * row_bytes;
          t.y = yd + m * N + n;
          t.bias = b != nullptr ? b + n : nullptr;
          if (dpbf16) {
            Avx512Bf16Tile(t, mr, nr);
          } else {
            Avx2Tile(t, w_bf16, mr, nr);
          }
        }
      }
    }
  });
}

void FastMultiMatMul(CpuIsa isa, const Tensor& x, absl::Span<const MatMulOutput> outs) {
  // One parallel pass when every output would take the packed GEMM on its
  // own (M >= 8), or every one the panel GEMV (M <= 2).
  const int64_t M = x.defined() && x.rank() == 2 ? x.dim(0) : 0;
  const bool gemv = M >= 1 && M <= kGemvMaxRows;
  bool shared = isa != CpuIsa::kPortable && !outs.empty() && (gemv || M >= kPackedMinRows);
  const DType dtype = shared ? outs[0].w->dtype() : DType::kF32;
  for (const MatMulOutput& o : outs) {
    const bool panels = o.w->layout() == Layout::kBackendPacked;
    const bool dpbf16 = isa == CpuIsa::kAvx512Bf16 && o.w->dtype() == DType::kBF16;
    shared = shared && o.w->dtype() == dtype && (dtype == DType::kF32 || dtype == DType::kBF16) &&
             (gemv ? panels : panels || !dpbf16);
  }
  if (!shared) {
    for (const MatMulOutput& o : outs) FastMatMul(isa, x, *o.w, o.bias, o.y);
    return;
  }
  std::vector<PackedMatMulJob> jobs;
  for (const MatMulOutput& o : outs) {
    CheckArgs(x, *o.w, o.bias, *o.y);
    if (o.w->dim(0) == 0) continue;
    jobs.push_back({o.w->raw_data(), o.w->layout() == Layout::kBackendPacked, o.w->dim(0),
                    o.bias != nullptr ? o.bias->data<float>() : nullptr, o.y->data<float>()});
  }
  if (jobs.empty()) return;
  const bool bf16 = dtype == DType::kBF16;
  if (gemv) {
    PanelGemvsAvx2(x.data<float>(), M, x.dim(1), bf16, jobs);
  } else {
    PackedMatMulsAvx2(x.data<float>(), M, x.dim(1), bf16, jobs);
  }
}

}  // namespace jamba::kernels
