// Register tiles of the fast MatMul, one set per CPU tier. A tile computes
// y[i, j] = sum_k x[i, k] * w[j, k] (+ bias[j]) for i < mr, j < nr, with an
// order of operations fixed per tier that depends only on K, not on mr, nr
// or the thread split: a token's result does not depend on the other rows
// of the batch. AVX2: one FMA chain per output over k in ascending order
// from zero, then the bias (every f32/bf16 path of the tier: these tiles,
// the packed GEMM, the panel GEMV). AVX-512 BF16: a vector accumulator per
// output over k, then a fixed horizontal sum. Pure functions; thread-safe.
#pragma once

#include <cstdint>

#include "absl/types/span.h"

namespace jamba::kernels {

struct MatMulTile {
  const void* x = nullptr;      // prepared rows of x, see each tier
  int64_t ldx = 0;              // elements between x rows
  const void* w = nullptr;      // first w row, F32 or BF16
  int64_t ldw = 0;              // elements between w rows
  int64_t K = 0;                // reduction length
  float* y = nullptr;           // y[0, 0]
  int64_t ldy = 0;              // elements between y rows
  int64_t y_stride = 1;         // elements between outputs j of a y row (AVX2)
  const float* bias = nullptr;  // [nr], y_stride apart, or null
  // The next tile's rows follow these (ldw == K): read them ahead. False
  // when the tile's rows are far apart (the strided GEMV of matmul.cc).
  bool prefetch_next = true;
};

// Largest tile any tier accepts.
constexpr int kMaxTileRows = 4;  // mr
constexpr int kMaxTileCols = 8;  // nr

// AVX2 + FMA. x: f32 rows. w: F32 (kBf16 false) or BF16, converted exactly.
// Per 8 values of k, the nr rows' weights are transposed in registers so
// that one vector holds the 8 outputs' weights at one k. Honours y_stride
// and prefetch_next.
// REQUIRES: 1 <= mr <= 4, 1 <= nr <= 8, the CPU has AVX2 and FMA.
void Avx2Tile(const MatMulTile& t, bool w_bf16, int mr, int nr);

// AVX512_BF16, BF16 w only. x: per row, Kp = ldx / 2 bf16 values of
// hi = bf16(x) then Kp of lo = bf16(x - hi), zero-padded to Kp, a multiple
// of 32; x ≈ hi + lo to about 2^-17 relative, products are exact in f32.
// REQUIRES: 1 <= mr <= 4, 1 <= nr <= 8, y_stride == 1, the CPU has
// AVX512F/BW/BF16.
void Avx512Bf16Tile(const MatMulTile& t, int mr, int nr);

// y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias): a 6 x 16 outer-product tile on packed
// panels with, for every output, exactly Avx2Tile's arithmetic (see
// matmul_packed.cc), so results equal the GEMV path bit for bit. Threads own
// blocks of w rows. x, y, bias: f32; w F32 or BF16, row-major or, when
// w_panels, in weight panels (weight_panels.h). REQUIRES: AVX2 + FMA.
void PackedMatMulAvx2(const float* x, int64_t M, int64_t K, const void* w, bool w_bf16,
                      bool w_panels, int64_t N, const float* bias, float* y);

// One weight of PackedMatMulsAvx2: y[M,N] = x · w[N,K]ᵀ (+ bias).
struct PackedMatMulJob {
  const void* w;  // F32 or BF16 (as the call says), row-major or in weight panels
  bool w_panels;
  int64_t N;
  const float* bias;  // [N] or nullptr
  float* y;           // [M, N]
};

// PackedMatMulAvx2 for several weights of one dtype against the same x: x
// is packed once and the blocks of all of them run in one parallel pass.
// Each y is bit-identical to a PackedMatMulAvx2 call of its own.
void PackedMatMulsAvx2(const float* x, int64_t M, int64_t K, bool w_bf16,
                       absl::Span<const PackedMatMulJob> jobs);

// The same for M <= 2 rows and w in weight panels: a GEMV reading each
// thread's strips as a few streams side by side (panel_gemv.cc). REQUIRES: AVX2 + FMA,
// 1 <= M <= 2, K % 8 == 0, N % kPanelRows == 0.
void PanelGemvAvx2(const float* x, int64_t M, int64_t K, const void* w, bool w_bf16, int64_t N,
                   const float* bias, float* y);

// PanelGemvAvx2 for several weights of one dtype, all in weight panels,
// against the same x: their strips in one parallel pass. Each y is
// bit-identical to a PanelGemvAvx2 call of its own.
void PanelGemvsAvx2(const float* x, int64_t M, int64_t K, bool w_bf16,
                    absl::Span<const PackedMatMulJob> jobs);

// x[M, K] f32 -> the hi/lo rows Avx512Bf16Tile reads; ldx = 2 * Kp.
void SplitToBf16HiLo(const float* x, int64_t M, int64_t K, int64_t ldx, uint16_t* out);

}  // namespace jamba::kernels
