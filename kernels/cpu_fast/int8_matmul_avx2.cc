// AVX2 + FMA register tiles of Int8MatMul (see int8_matmul_tiles.h),
// compiled with target attributes so the rest of the binary stays baseline
// x86-64. A step reads 8 weights of each of NR rows (vpmovsxbd + vcvtdq2ps)
// and 8 floats of each of MR rows of x.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "kernels/cpu_fast/int8_matmul_tiles.h"
#include "kernels/cpu_fast/vec_math_avx2.h"

namespace jamba::kernels {
namespace {

// 8 int8 weights at p as f32 (exact).
JAMBA_AVX2 inline __m256 LoadQ(const int8_t* p) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
}

// Sum of the 8 lanes, pairwise in a fixed order.
JAMBA_AVX2 inline float LaneSum(__m256 v) {
  const __m128 quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
  return _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)));
}

template <int MR, int NR>
JAMBA_AVX2 void Tile(const Int8Tile& t) {
  const int64_t K = t.K;
  // The next tile's q rows follow these when ldq == K: fetch them ahead,
  // NR bytes per weight column, spread over this tile's k steps.
  const char* next = reinterpret_cast<const char*>(t.q + NR * t.ldq);
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    if (t.prefetch_next) _mm_prefetch(next + k * NR, _MM_HINT_T0);
    __m256 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = LoadQ(t.q + j * t.ldq + k);
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_loadu_ps(t.x + i * t.ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(wv[j], xv, acc[i][j]);
    }
  }
  if (k < K) {
    // The last K - k < 8 columns, zero-padded to one more step.
    const int r = static_cast<int>(K - k);
    alignas(16) int8_t qt[NR][16] = {};
    alignas(32) float xt[MR][8] = {};
    for (int j = 0; j < NR; ++j) std::memcpy(qt[j], t.q + j * t.ldq + k, r);
    for (int i = 0; i < MR; ++i) std::memcpy(xt[i], t.x + i * t.ldx + k, r * sizeof(float));
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_load_ps(xt[i]);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(LoadQ(qt[j]), xv, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      t.y[i * t.ldy + j * t.y_stride] = LaneSum(acc[i][j]) * t.scale[j * t.y_stride];
    }
}

using TileFn = void (*)(const Int8Tile&);

template <int... I>
constexpr std::array<TileFn, sizeof...(I)> MakeTable(std::integer_sequence<int, I...>) {
  return {&Tile<I / kInt8TileCols + 1, I % kInt8TileCols + 1>...};
}

constexpr auto kTiles = MakeTable(std::make_integer_sequence<int, kInt8TileRows * kInt8TileCols>());

}  // namespace

void Avx2Int8Tile(const Int8Tile& t, int mr, int nr) {
  kTiles[(mr - 1) * kInt8TileCols + (nr - 1)](t);
}

}  // namespace jamba::kernels
