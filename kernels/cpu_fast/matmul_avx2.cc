// AVX2 + FMA register tiles of the fast MatMul (see matmul_tiles.h). Compiled
// with target attributes so the rest of the binary stays baseline x86-64.
#include <immintrin.h>

#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/cpu_fast/matmul_tiles.h"
#include "kernels/cpu_fast/weight_panels.h"  // LoadChunk, Transpose8

namespace jamba::kernels {
namespace {

// NR rows of w against MR rows of x: per 8 values of k, the NR rows' 8
// weights (rows past NR zero) transposed in registers, so that r[l] holds
// the NR weights at k + l, and one FMA per k in order into each row's
// accumulator of NR outputs.
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
  __m256 acc[MR];
  for (int i = 0; i < MR; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k += 8) {
    if (prefetch) {
      for (int l = 0; l < kPrefetchLines; ++l) {
        _mm_prefetch(next + ((k / 8) * kPrefetchLines + l) * 64, _MM_HINT_T0);
      }
    }
    __m256 r[8];
    for (int j = 0; j < 8; ++j)
      r[j] = j < NR ? LoadChunk(w + j * t.ldw, k, K) : _mm256_setzero_ps();
    Transpose8(r);     // r[l] = w[0..8)[k + l]
    if (k + 8 <= K) {  // a whole block: a loop of constant length, unrolled
      for (int l = 0; l < 8; ++l) {
        for (int i = 0; i < MR; ++i) {
          acc[i] = _mm256_fmadd_ps(r[l], _mm256_broadcast_ss(x + i * t.ldx + k + l), acc[i]);
        }
      }
    } else {  // the last K - k < 8 values
      for (int l = 0; l < static_cast<int>(K - k); ++l) {
        for (int i = 0; i < MR; ++i) {
          acc[i] = _mm256_fmadd_ps(r[l], _mm256_broadcast_ss(x + i * t.ldx + k + l), acc[i]);
        }
      }
    }
  }
  alignas(32) float bias[8] = {};
  if (t.bias != nullptr) {
    for (int j = 0; j < NR; ++j) bias[j] = t.bias[j * t.y_stride];
  }
  for (int i = 0; i < MR; ++i) {
    alignas(32) float out[8];
    _mm256_store_ps(out, t.bias != nullptr ? _mm256_add_ps(acc[i], _mm256_load_ps(bias)) : acc[i]);
    for (int j = 0; j < NR; ++j) t.y[i * t.ldy + j * t.y_stride] = out[j];
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
