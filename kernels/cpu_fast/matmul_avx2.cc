// AVX2 + FMA register tiles of the fast MatMul (see matmul_tiles.h). Compiled
// with target attributes so the rest of the binary stays baseline x86-64.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "kernels/cpu_fast/matmul_tiles.h"

namespace jamba::kernels {
namespace {

#define JAMBA_AVX2 __attribute__((target("avx2,fma")))

// 8 consecutive weights from row p at k as f32; bf16 is the top half of f32.
template <bool kBf16>
JAMBA_AVX2 inline __m256 LoadW(const void* p, int64_t k) {
  if constexpr (kBf16) {
    const __m128i h =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_loadu_ps(static_cast<const float*>(p) + k);
  }
}

// Sum of the 8 lanes in a fixed order.
JAMBA_AVX2 inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int MR, int NR, bool kBf16>
JAMBA_AVX2 void Tile(const MatMulTile& t) {
  using WType = std::conditional_t<kBf16, uint16_t, float>;
  const float* x = static_cast<const float*>(t.x);  // [MR, ldx]
  const WType* w = static_cast<const WType*>(t.w);  // [NR, ldw]
  const int64_t K = t.K;
  // When the next tile's rows follow these (ldw == K), prefetch them, spread
  // over this tile's k steps. Short rows otherwise leave the hardware
  // prefetchers too little to detect and the loop waits on memory latency.
  constexpr int kPrefetchLines = (NR * static_cast<int>(sizeof(WType)) + 7) / 8;
  const char* next = reinterpret_cast<const char*>(w + NR * t.ldw);
  const bool prefetch = t.prefetch_next;
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    if (prefetch) {
      for (int l = 0; l < kPrefetchLines; ++l) {
        _mm_prefetch(next + ((k / 8) * kPrefetchLines + l) * 64, _MM_HINT_T0);
      }
    }
    __m256 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = LoadW<kBf16>(w + j * t.ldw, k);
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * t.ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(wv[j], xv, acc[i][j]);
    }
  }
  if (k < K) {
    // The last K - k < 8 elements, zero-padded to one more vector step.
    const int r = static_cast<int>(K - k);
    alignas(32) WType wt[NR][8] = {};
    alignas(32) float xt[MR][8] = {};
    for (int j = 0; j < NR; ++j) std::memcpy(wt[j], w + j * t.ldw + k, r * sizeof(WType));
    for (int i = 0; i < MR; ++i) std::memcpy(xt[i], x + i * t.ldx + k, r * sizeof(float));
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_load_ps(xt[i]);
      for (int j = 0; j < NR; ++j)
        acc[i][j] = _mm256_fmadd_ps(LoadW<kBf16>(wt[j], 0), xv, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      const float dot = HSum(acc[i][j]);
      t.y[i * t.ldy + j * t.y_stride] = t.bias != nullptr ? dot + t.bias[j * t.y_stride] : dot;
    }
  }
}

using TileFn = void (*)(const MatMulTile&);

template <bool kBf16, int... I>
constexpr std::array<TileFn, sizeof...(I)> MakeTable(std::integer_sequence<int, I...>) {
  return {&Tile<I / kMaxTileCols + 1, I % kMaxTileCols + 1, kBf16>...};
}

constexpr auto kSeq = std::make_integer_sequence<int, kMaxTileRows * kMaxTileCols>();
constexpr auto kF32Tiles = MakeTable<false>(kSeq);
constexpr auto kBf16Tiles = MakeTable<true>(kSeq);

}  // namespace

void Avx2Tile(const MatMulTile& t, bool w_bf16, int mr, int nr) {
  const int index = (mr - 1) * kMaxTileCols + (nr - 1);
  (w_bf16 ? kBf16Tiles : kF32Tiles)[index](t);
}

}  // namespace jamba::kernels
