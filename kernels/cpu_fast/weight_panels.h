// Weight panels: the weight layout of the fast CPU MatMul, and the AVX2
// helpers the GEMM and the GEMV on it share.
//
// Every fast f32/bf16 MatMul output on AVX2 is one FMA chain over k in
// ascending order from zero, then the bias added (matmul_tiles.h). Weight
// panels store w [N, K] in the order that chain reads it for 16 outputs at
// once: strips of kPanelRows rows, each as [K][kPanelRows]:
//
//   panels[s][k][j] = w[kPanelRows * s + j][k]           (F32)
//   panels[s][k][j] = w[kPanelRows * s + kBf16Row[j]][k]  (BF16)
//
// so a strip's 16 weights for one k are one cache line (f32) or half of one
// (bf16) and a whole strip is one contiguous run. BF16 panels hold rows 0-3,
// 8-11, 4-7, 12-15 in that order for each k: one 32-byte load unpacked with
// zeros, low and high words of each 128-bit half, then gives rows 0-7 and
// 8-15 as f32, exactly and in order (LoadPanelStep). The prefill GEMM packs
// row-major w into f32 panels per call, in scratch; FastCpuBackend can also
// keep a weight in panels from load (Backend::PrepareMatMulWeight), in its
// own dtype and in the same number of bytes, which spares the GEMM that work
// and lets the GEMV read each thread's rows as one stream.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "kernels/cpu_fast/vec_math_avx2.h"  // JAMBA_AVX2

namespace jamba::kernels {

constexpr int kPanelRows = 16;      // w rows per strip: two 8-float vectors
constexpr int kPackedTileRows = 6;  // x rows per GEMM tile

// The w row at position j of a BF16 panel step.
constexpr int kBf16Row[kPanelRows] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};

// True when w [N, K] (F32 or BF16) can be kept in weight panels: N a multiple
// of kPanelRows (the panels hold exactly w's elements) and K of 8 (the
// packing transposes 8 x 8 blocks).
bool FitsWeightPanels(const Tensor& w);

// w in weight panels, in fresh host memory of w's dtype, marked
// Layout::kBackendPacked; 8 x 8 blocks transposed in AVX2 registers, on
// ThreadPool::Default(). REQUIRES: FitsWeightPanels(w), the CPU has AVX2.
absl::StatusOr<Tensor> ToWeightPanels(const Tensor& w);

// p[0, 8) as f32 (bf16 is the top half of an f32: exact).
template <typename T>
JAMBA_AVX2 inline __m256 Widen(const T* p) {
  if constexpr (sizeof(T) == 2) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_loadu_ps(p);
  }
}

// One k of a panel strip (16 weights at p) as f32 rows 0-7 and 8-15.
JAMBA_AVX2 inline void LoadPanelStep(const float* p, __m256* rows0, __m256* rows8) {
  *rows0 = _mm256_loadu_ps(p);
  *rows8 = _mm256_loadu_ps(p + 8);
}
JAMBA_AVX2 inline void LoadPanelStep(const uint16_t* p, __m256* rows0, __m256* rows8) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i zero = _mm256_setzero_si256();
  *rows0 = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, v));  // bf16 << 16: exact
  *rows8 = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, v));
}

// row[k, k + 8) as f32, zero past K.
template <typename T>
JAMBA_AVX2 inline __m256 LoadChunk(const T* row, int64_t k, int64_t K) {
  if (k + 8 <= K) return Widen(row + k);
  alignas(32) T tmp[8] = {};
  std::memcpy(tmp, row + k, (K - k) * sizeof(T));
  return Widen(tmp);
}

// r[i][j] <- r[j][i] for the 8 x 8 block in r.
JAMBA_AVX2 inline void Transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
  }
}

}  // namespace jamba::kernels
