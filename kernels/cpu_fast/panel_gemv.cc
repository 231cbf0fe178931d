// PanelGemvAvx2 (matmul_tiles.h): the decode GEMV on weights kept in weight
// panels (weight_panels.h), with the arithmetic of Avx2Tile.
//
// For one strip of 16 w rows, the outputs are an axpy over k: the 16 rows'
// weights at k (two vectors, LoadPanelStep) times x[k], accumulated in k
// order from zero, then the bias, so each output equals the row-major
// GEMV's and the packed GEMM's bit for bit. Each thread owns one contiguous run of strips and
// reads it as several streams (one stream alone leaves the memory idle:
// cold weights came at 12-20 GB/s instead of 21-26), each through its own
// part of the run, several strips side by side.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu_fast/matmul_tiles.h"
#include "kernels/cpu_fast/weight_panels.h"

namespace jamba::kernels {
namespace {

constexpr int kNR = kPanelRows;

// y[i][16 s_g, 16 s_g + 16) (+ bias) for rows i < MR of x [MR, K] and each
// of G strips [K][16] (strip[g], its outputs at y[g] and bias[g], rows ldy
// apart). The G strips are read side by side: G streams, 2 * MR * G FMA
// chains.
template <int MR, int G, typename T>
JAMBA_AVX2 void StripDots(const float* x, int64_t K, const T* const* strip,
                          const float* const* bias, float* const* y, int64_t ldy) {
  __m256 acc[G][MR][2];
  for (int g = 0; g < G; ++g) {
    for (int i = 0; i < MR; ++i) acc[g][i][0] = acc[g][i][1] = _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < K; ++k) {
    __m256 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm256_broadcast_ss(x + i * K + k);
    for (int g = 0; g < G; ++g) {
      __m256 lo, hi;
      LoadPanelStep(strip[g] + k * kNR, &lo, &hi);
      for (int i = 0; i < MR; ++i) {
        acc[g][i][0] = _mm256_fmadd_ps(lo, xv[i], acc[g][i][0]);
        acc[g][i][1] = _mm256_fmadd_ps(hi, xv[i], acc[g][i][1]);
      }
    }
  }
  // The sums go through `sums`, stored in one fully unrolled loop, to y
  // plus the bias: anything less and GCC keeps acc on the stack, storing it
  // on every step above.
  alignas(32) float sums[G][MR][kNR];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 2
    for (int i = 0; i < MR; ++i) {
      _mm256_store_ps(sums[g][i], acc[g][i][0]);
      _mm256_store_ps(sums[g][i] + 8, acc[g][i][1]);
    }
  }
  for (int g = 0; g < G; ++g) {
    for (int i = 0; i < MR; ++i) {
      for (int h = 0; h < kNR; h += 8) {
        __m256 v = _mm256_load_ps(sums[g][i] + h);
        if (bias[g] != nullptr) v = _mm256_add_ps(v, _mm256_loadu_ps(bias[g] + h));
        _mm256_storeu_ps(y[g] + i * ldy + h, v);
      }
    }
  }
}

// Strips [s0, s1) of w, kStreams at a time, each from its own equal part of
// the range so that every stream runs on through consecutive strips; the
// few left over one at a time.
template <int MR, typename T>
void GemvStrips(const float* x, int64_t K, const T* w, int64_t N, int64_t s0, int64_t s1,
                const float* bias, float* y) {
  constexpr int kStreams = MR == 1 ? 4 : 2;  // 8 accumulators
  const int64_t q = (s1 - s0) / kStreams;    // strips per stream
  auto run = [&](auto streams, int64_t first, int64_t step) {
    constexpr int kG = decltype(streams)::value;
    const T* strip[kG];
    const float* b[kG];
    float* out[kG];
    for (int g = 0; g < kG; ++g) {
      const int64_t s = first + g * step;
      strip[g] = w + s * kNR * K;
      b[g] = bias != nullptr ? bias + s * kNR : nullptr;
      out[g] = y + s * kNR;
    }
    StripDots<MR, kG>(x, K, strip, b, out, N);
  };
  for (int64_t i = 0; i < q; ++i) run(std::integral_constant<int, kStreams>(), s0 + i, q);
  for (int64_t s = s0 + kStreams * q; s < s1; ++s) run(std::integral_constant<int, 1>(), s, 0);
}

// The strips of all jobs' weights, in order, as one run cut into a
// contiguous part per thread; a part may span several weights.
template <typename T>
void Run(const float* x, int M, int64_t K, absl::Span<const PackedMatMulJob> jobs) {
  int64_t strips = 0;
  for (const PackedMatMulJob& job : jobs) strips += job.N / kNR;
  const int64_t threads = ThreadPool::Default().num_threads();
  const int64_t per_part = std::max<int64_t>(1, (strips + threads - 1) / threads);
  const int64_t parts = (strips + per_part - 1) / per_part;
  ThreadPool::Default().ParallelFor(parts, 1, [&](int64_t p0, int64_t p1) {
    const int64_t g0 = p0 * per_part, g1 = std::min(strips, p1 * per_part);
    int64_t first = 0;  // the first strip of the job below, in the whole run
    for (const PackedMatMulJob& job : jobs) {
      const int64_t s0 = std::max<int64_t>(g0 - first, 0);
      const int64_t s1 = std::min<int64_t>(g1 - first, job.N / kNR);
      const T* w = static_cast<const T*>(job.w);
      if (s0 < s1 && M == 1) GemvStrips<1>(x, K, w, job.N, s0, s1, job.bias, job.y);
      if (s0 < s1 && M == 2) GemvStrips<2>(x, K, w, job.N, s0, s1, job.bias, job.y);
      first += job.N / kNR;
    }
  });
}

}  // namespace

void PanelGemvsAvx2(const float* x, int64_t M, int64_t K, bool w_bf16,
                    absl::Span<const PackedMatMulJob> jobs) {
  for (const PackedMatMulJob& job : jobs) {
    JAMBA_CHECK(M >= 1 && M <= 2 && K % 8 == 0 && job.N % kNR == 0 && job.w_panels)
        << "PanelGemvAvx2: M " << M << " K " << K << " N " << job.N;
  }
  if (w_bf16) {
    Run<uint16_t>(x, static_cast<int>(M), K, jobs);
  } else {
    Run<float>(x, static_cast<int>(M), K, jobs);
  }
}

void PanelGemvAvx2(const float* x, int64_t M, int64_t K, const void* w, bool w_bf16, int64_t N,
                   const float* bias, float* y) {
  const PackedMatMulJob job = {w, true, N, bias, y};
  PanelGemvsAvx2(x, M, K, w_bf16, {&job, 1});
}

}  // namespace jamba::kernels
