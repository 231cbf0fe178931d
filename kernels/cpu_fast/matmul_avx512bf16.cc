// AVX512_BF16 register tiles of the fast MatMul for BF16 weights (see
// matmul_tiles.h): vdpbf16ps multiplies bf16 pairs exactly and accumulates
// in f32. x is split into hi + lo bf16 halves so that only the weights, not
// the activations, are limited to bf16 precision.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "core/dtype.h"
#include "kernels/cpu_fast/matmul_tiles.h"

namespace jamba::kernels {
namespace {

// (A verification build on a CPU without AVX512_BF16 force-includes
// tests/kernels/avx512bf16_emulation.h, which defines this and the
// intrinsics used below.)
#ifndef JAMBA_AVX512BF16
#define JAMBA_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
#endif

// Sum of the 16 lanes in a fixed order (through memory: GCC 12 warns about
// the undefined upper halves in the 512-bit extract intrinsics).
JAMBA_AVX512BF16 inline float HSum(__m512 v) {
  alignas(64) float lane[16];
  _mm512_store_ps(lane, v);
  for (int width = 8; width >= 1; width /= 2) {
    for (int i = 0; i < width; ++i) lane[i] += lane[i + width];
  }
  return lane[0];
}

template <int MR, int NR>
JAMBA_AVX512BF16 void Tile(const MatMulTile& t) {
  const uint16_t* x = static_cast<const uint16_t*>(t.x);  // [MR, 2, Kp]
  const uint16_t* w = static_cast<const uint16_t*>(t.w);  // [NR, ldw]
  const int64_t K = t.K, lo = t.ldx / 2;
  // Prefetch the next tile's rows (they follow these), spread over k steps.
  constexpr int kPrefetchLines = NR;
  const char* next = reinterpret_cast<const char*>(w + NR * t.ldw);
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 32) {
    // Weights past K read as zero; x is zero-padded to Kp.
    const __mmask32 mask = K - k >= 32 ? ~__mmask32{0} : (__mmask32{1} << (K - k)) - 1;
    for (int l = 0; l < kPrefetchLines; ++l) {
      _mm_prefetch(next + ((k / 32) * kPrefetchLines + l) * 64, _MM_HINT_T0);
    }
    __m512bh wv[NR];
    for (int j = 0; j < NR; ++j) {
      wv[j] = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, w + j * t.ldw + k));
    }
    for (int i = 0; i < MR; ++i) {
      const __m512bh xh = reinterpret_cast<__m512bh>(_mm512_loadu_si512(x + i * t.ldx + k));
      const __m512bh xl = reinterpret_cast<__m512bh>(_mm512_loadu_si512(x + i * t.ldx + lo + k));
      for (int j = 0; j < NR; ++j) {
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv[j], xh);
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv[j], xl);
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      const float dot = HSum(acc[i][j]);
      t.y[i * t.ldy + j] = t.bias != nullptr ? dot + t.bias[j] : dot;
    }
  }
}

using TileFn = void (*)(const MatMulTile&);

template <int... I>
constexpr std::array<TileFn, sizeof...(I)> MakeTable(std::integer_sequence<int, I...>) {
  return {&Tile<I / kMaxTileCols + 1, I % kMaxTileCols + 1>...};
}

constexpr auto kTiles = MakeTable(std::make_integer_sequence<int, kMaxTileRows * kMaxTileCols>());

}  // namespace

void Avx512Bf16Tile(const MatMulTile& t, int mr, int nr) {
  kTiles[(mr - 1) * kMaxTileCols + (nr - 1)](t);
}

void SplitToBf16HiLo(const float* x, int64_t M, int64_t K, int64_t ldx, uint16_t* out) {
  const int64_t Kp = ldx / 2;
  for (int64_t m = 0; m < M; ++m) {
    uint16_t* hi = out + m * ldx;  // [Kp]
    uint16_t* lo = hi + Kp;        // [Kp]
    for (int64_t k = 0; k < K; ++k) {
      const float v = x[m * K + k];
      hi[k] = F32ToBf16(v);
      lo[k] = F32ToBf16(v - Bf16ToF32(hi[k]));
    }
    for (int64_t k = K; k < Kp; ++k) hi[k] = lo[k] = 0;
  }
}

}  // namespace jamba::kernels
