// PackedMatMulAvx2 (matmul_tiles.h): the prefill GEMM, a 6 x 16 register
// tile (6 x rows broadcast, 16 w rows in two vectors, 12 accumulators) on
// packed panels, with the arithmetic of Avx2Tile.
//
// Avx2Tile gives each output one FMA chain over k in ascending order from
// zero, then adds the bias. Here x and w are packed k-major, x as strips of
// 6 rows [K][6] and w as weight panels (weight_panels.h) [K][16], so the tile
// is an ordinary outer-product GEMM over k whose every accumulator is such
// a chain. A chain cut into pieces of kSteps values of k, so that the piece
// of w and the group's pieces of x stay in L1, resumes exactly: an f32
// stored and loaded back is the same f32. Every output is therefore
// bit-identical to the GEMV paths', whatever M: a row's result does not
// depend on its batch.
//
// x is packed once, also when several weights share it (PackedMatMulsAvx2:
// q, k and v; then the blocks of all of them share one parallel pass); each
// thread packs its blocks of w rows (about kBlockBytes, kept in L2; bf16
// widened exactly) into f32 strips of 16 rows, unless w is already in
// weight panels: those are read in place, bf16 ones widened in the tile.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu_fast/matmul_tiles.h"
#include "kernels/cpu_fast/weight_panels.h"

namespace jamba::kernels {
namespace {

constexpr int kMR = kPackedTileRows;        // x rows per strip
constexpr int kNR = kPanelRows;             // w rows per strip
constexpr int64_t kBlockBytes = 256 << 10;  // packed w per block
constexpr int64_t kMaxGroup = 8;            // x strips per pass over a w strip
constexpr int64_t kGroupBytes = 160 << 10;  // their packed x, beside the w block in L2
constexpr int64_t kSteps = 256;             // k per pass: 16 KiB of w, 6 of each x strip

// nr <= 16 rows of w[*, K] (ld apart) -> dst [K][16] f32, rows past nr
// zero: 8 x 8 blocks transposed in registers.
template <typename T>
JAMBA_AVX2 void PackW(const T* w, int64_t ld, int nr, int64_t K, float* dst) {
  if (nr == kNR && K % 8 == 0) {
    // A full strip with no K tail: no bounds checks, eight row pointers
    // walked in step (the general loop below spills them and branches per load).
    for (int half = 0; half < 2; ++half) {
      const T* r0 = w + half * 8 * ld;
      for (int64_t k = 0; k < K; k += 8) {
        __m256 r[8];
        for (int j = 0; j < 8; ++j) r[j] = Widen(r0 + j * ld + k);
        Transpose8(r);
        for (int l = 0; l < 8; ++l) _mm256_storeu_ps(dst + (k + l) * kNR + half * 8, r[l]);
      }
    }
    return;
  }
  for (int64_t k = 0; k < K; k += 8) {
    const int64_t valid = std::min<int64_t>(8, K - k);
    for (int half = 0; half < 2; ++half) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) {
        const int row = half * 8 + j;
        r[j] = row < nr ? LoadChunk(w + row * ld, k, K) : _mm256_setzero_ps();
      }
      Transpose8(r);  // r[l] = rows half*8 .. half*8+7 at k + l
      for (int l = 0; l < valid; ++l) _mm256_storeu_ps(dst + (k + l) * kNR + half * 8, r[l]);
    }
  }
}

// mr <= 6 rows of x[*, K] (ld apart) -> dst [K][6], rows past mr zero, with
// room for 2 floats after: an 8 x 8 transpose per 8 values of k (rows past
// mr are zero) whose 8-float stores spill 2 floats into the next entry
// (written after) or that room.
JAMBA_AVX2 void PackX(const float* x, int64_t ld, int mr, int64_t K, float* dst) {
  for (int64_t k = 0; k < K; k += 8) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = i < mr ? LoadChunk(x + i * ld, k, K) : _mm256_setzero_ps();
    Transpose8(r);  // r[l] = x[0..8)[k + l]
    const int64_t valid = std::min<int64_t>(8, K - k);
    for (int l = 0; l < valid; ++l) _mm256_storeu_ps(dst + (k + l) * kMR, r[l]);
  }
}

// to[0, 16) = (lo, hi) plus bias[0, 16) if given.
JAMBA_AVX2 inline void PutTileRow(__m256 lo, __m256 hi, const float* bias, float* to) {
  if (bias != nullptr) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(bias));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(bias + 8));
  }
  _mm256_storeu_ps(to, lo);
  _mm256_storeu_ps(to + 8, hi);
}

// A 6 x 16 tile over `steps` values of k: a [steps][6] piece of an x strip
// against a [steps][16] piece of a w strip (f32, or bf16 weight panels
// widened here, LoadPanelStep), one FMA per k in order into
// each accumulator, which starts from `from` (rows 16 apart: a chain cut
// short by the previous piece) or from zero. The sums, plus bias[0, 16) if
// given, go to `to`, rows ldt apart. (Named accumulators: GCC spills an
// indexed __m256 array to the stack.)
template <typename T>
JAMBA_AVX2 void PanelTile(const float* a, const T* b, int64_t steps, const float* from, float* to,
                          int64_t ldt, const float* bias) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  if (from != nullptr) {
    c00 = _mm256_loadu_ps(from), c01 = _mm256_loadu_ps(from + 8);
    c10 = _mm256_loadu_ps(from + 16), c11 = _mm256_loadu_ps(from + 24);
    c20 = _mm256_loadu_ps(from + 32), c21 = _mm256_loadu_ps(from + 40);
    c30 = _mm256_loadu_ps(from + 48), c31 = _mm256_loadu_ps(from + 56);
    c40 = _mm256_loadu_ps(from + 64), c41 = _mm256_loadu_ps(from + 72);
    c50 = _mm256_loadu_ps(from + 80), c51 = _mm256_loadu_ps(from + 88);
  }
  for (int64_t k = 0; k < steps; ++k, a += kMR, b += kNR) {
    __m256 b0, b1;
    LoadPanelStep(b, &b0, &b1);
    __m256 ai = _mm256_broadcast_ss(a);
    c00 = _mm256_fmadd_ps(b0, ai, c00);
    c01 = _mm256_fmadd_ps(b1, ai, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(b0, ai, c10);
    c11 = _mm256_fmadd_ps(b1, ai, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(b0, ai, c20);
    c21 = _mm256_fmadd_ps(b1, ai, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(b0, ai, c30);
    c31 = _mm256_fmadd_ps(b1, ai, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(b0, ai, c40);
    c41 = _mm256_fmadd_ps(b1, ai, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(b0, ai, c50);
    c51 = _mm256_fmadd_ps(b1, ai, c51);
  }
  // Row by row, not through an array: GCC would put the accumulators on
  // the stack.
  PutTileRow(c00, c01, bias, to);
  PutTileRow(c10, c11, bias, to + ldt);
  PutTileRow(c20, c21, bias, to + 2 * ldt);
  PutTileRow(c30, c31, bias, to + 3 * ldt);
  PutTileRow(c40, c41, bias, to + 4 * ldt);
  PutTileRow(c50, c51, bias, to + 5 * ldt);
}

// y[i, j] = sums[i][j] (+ bias[j]) for i < mr, j < nr: a tile on the edge
// of y (the same f32 add as the tile's).
void StoreEdgeTile(const float* sums, const float* bias, float* y, int64_t ldy, int mr, int nr) {
  for (int i = 0; i < mr; ++i) {
    for (int j = 0; j < nr; ++j) {
      y[i * ldy + j] = bias != nullptr ? sums[i * kNR + j] + bias[j] : sums[i * kNR + j];
    }
  }
}

// This thread's grow-only buffer for scratch slot `slot` (0: packed x,
// 1: packed w, 2: partial sums, 3: staged w rows). Fresh large allocations
// are new mappings, page-faulted in and zeroed by the kernel on every call;
// these stay as large as the largest call so far (packed x: M x K floats).
template <typename T>
T* Scratch(int slot, int64_t n) {
  thread_local std::vector<T> buffers[4];
  std::vector<T>& buffer = buffers[slot];
  if (buffer.size() < static_cast<size_t>(n)) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

// What every block of a call shares: x packed into strips, and its shape.
struct PackedX {
  int64_t M, K, strip_x, x_strips, group;
  const float* xp;  // [x_strips][strip_x]: [K][6] and room
};

// Rows [n0, n1) of a job's w, as panels [strips][K][16] of T, against all
// of x: groups of x strips against one w strip, piece by piece of k, so the
// w piece stays in L1 across the group and the group's x in L2. While the
// first group runs, [ahead, ahead_end) (the next block's weights) is read
// ahead, spread evenly over its tiles, so that the next block finds them in
// cache. part: [group][6][16].
template <typename T>
void RunTiles(const PackedX& px, const PackedMatMulJob& job, int64_t n0, int64_t n1,
              const T* panels, float* part, const char* ahead, const char* ahead_end) {
  const int64_t K = px.K, N = job.N, strip_w = kNR * K;
  const int64_t first_tiles =
      (n1 - n0 + kNR - 1) / kNR * ((K + kSteps - 1) / kSteps) * std::min(px.group, px.x_strips);
  const int64_t ahead_per_tile =
      ahead != nullptr ? ((ahead_end - ahead) / 64 + first_tiles - 1) / first_tiles : 0;
  for (int64_t g0 = 0; g0 < px.x_strips; g0 += px.group) {
    const int64_t g1 = std::min(px.x_strips, g0 + px.group);
    for (int64_t n = n0; n < n1; n += kNR) {
      const T* ws = panels + (n - n0) / kNR * strip_w;
      const int nr = static_cast<int>(std::min<int64_t>(kNR, n1 - n));
      const float* bias = job.bias != nullptr ? job.bias + n : nullptr;
      for (int64_t k0 = 0; k0 < K; k0 += kSteps) {
        const int64_t steps = std::min(kSteps, K - k0);
        const bool last = k0 + steps == K;
        for (int64_t g = g0; g < g1; ++g) {
          for (int64_t i = 0; i < ahead_per_tile && ahead < ahead_end; ++i, ahead += 64) {
            _mm_prefetch(ahead, _MM_HINT_T1);
          }
          const float* a = px.xp + g * px.strip_x + k0 * kMR;
          float* sums = part + (g - g0) * kMR * kNR;
          const float* from = k0 > 0 ? sums : nullptr;
          const int mr = static_cast<int>(std::min<int64_t>(kMR, px.M - g * kMR));
          float* y = job.y + g * kMR * N + n;
          if (last && mr == kMR && nr == kNR) {
            PanelTile(a, ws + k0 * kNR, steps, from, y, N, bias);
          } else {
            PanelTile(a, ws + k0 * kNR, steps, from, sums, kNR, nullptr);
            if (last) StoreEdgeTile(sums, bias, y, N, mr, nr);
          }
        }
      }
    }
  }
}

// Rows [n0, n1) of job's w against all of x. Weight panels are read in
// place; row-major rows are first put in f32 panels in wp, each strip
// copied in order through `staged` ([16][K]: the rows then stream at the
// memory's pace, where the transpose's 16 short row streams would wait on
// its latency) and transposed.
template <typename WType>
void RunBlock(const PackedX& px, const PackedMatMulJob& job, int64_t n0, int64_t n1, float* wp,
              float* part, WType* staged, const char* ahead, const char* ahead_end) {
  const int64_t K = px.K;
  const WType* w = static_cast<const WType*>(job.w);
  if (job.w_panels) {
    RunTiles(px, job, n0, n1, w + n0 * K, part, ahead, ahead_end);
    return;
  }
  for (int64_t n = n0; n < n1; n += kNR) {
    const int nr = static_cast<int>(std::min<int64_t>(kNR, n1 - n));
    std::memcpy(staged, w + n * K, nr * K * sizeof(WType));
    PackW(staged, K, nr, K, wp + (n - n0) * K);
  }
  RunTiles<float>(px, job, n0, n1, wp, part, ahead, ahead_end);
}

// Rows [n0, n1) of jobs[job]'s w.
struct Block {
  int64_t job, n0, n1;
};

// x packed once, then every job's blocks of w rows in one parallel pass.
template <typename WType>
void Run(const float* x, int64_t M, int64_t K, absl::Span<const PackedMatMulJob> jobs) {
  PackedX px;
  px.M = M;
  px.K = K;
  px.strip_x = (K * kMR + 2 + 15) / 16 * 16;  // whole cache lines
  px.x_strips = (M + kMR - 1) / kMR;
  px.group = std::clamp<int64_t>(kGroupBytes / (px.strip_x * 4), 1, kMaxGroup);
  float* const xp = Scratch<float>(0, px.x_strips * px.strip_x);
  px.xp = xp;
  ThreadPool& pool = ThreadPool::Default();
  pool.ParallelFor(px.x_strips, 4, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, M - s * kMR));
      PackX(x + s * kMR * K, K, mr, K, xp + s * px.strip_x);
    }
  });

  // Each job's w in blocks: whole strips, about kBlockBytes packed, and
  // small enough that every thread gets one of each job.
  const int64_t threads = pool.num_threads(), strip_w = kNR * K;
  std::vector<Block> blocks;
  int64_t wp_floats = 0;   // the largest row-major block, packed in f32 panels
  bool row_major = false;  // some w is row-major, so strips are staged
  for (size_t j = 0; j < jobs.size(); ++j) {
    const int64_t N = jobs[j].N;
    int64_t strips = std::max<int64_t>(1, kBlockBytes / (strip_w * 4));
    strips = std::min(strips, ((N + kNR - 1) / kNR + threads - 1) / threads);
    const int64_t block = std::max<int64_t>(1, strips) * kNR;
    for (int64_t n0 = 0; n0 < N; n0 += block) {
      blocks.push_back({static_cast<int64_t>(j), n0, std::min(N, n0 + block)});
    }
    if (!jobs[j].w_panels) {
      row_major = true;
      wp_floats = std::max(wp_floats, block / kNR * strip_w);
    }
  }
  auto rows_of = [&](const Block& b, int64_t n) {
    return reinterpret_cast<const char*>(static_cast<const WType*>(jobs[b.job].w) + n * K);
  };
  pool.ParallelFor(static_cast<int64_t>(blocks.size()), 1, [&](int64_t b0, int64_t b1) {
    // Every thread's own; each is written before it is read.
    float* const wp = wp_floats > 0 ? Scratch<float>(1, wp_floats) : nullptr;
    float* const part = Scratch<float>(2, px.group * kMR * kNR);             // [group][6][16]
    WType* const staged = row_major ? Scratch<WType>(3, kNR * K) : nullptr;  // [16][K]
    for (int64_t b = b0; b < b1; ++b) {
      const Block& blk = blocks[b];
      const char* ahead = b + 1 < b1 ? rows_of(blocks[b + 1], blocks[b + 1].n0) : nullptr;
      const char* ahead_end = b + 1 < b1 ? rows_of(blocks[b + 1], blocks[b + 1].n1) : nullptr;
      RunBlock<WType>(px, jobs[blk.job], blk.n0, blk.n1, wp, part, staged, ahead, ahead_end);
    }
  });
}

}  // namespace

void PackedMatMulsAvx2(const float* x, int64_t M, int64_t K, bool w_bf16,
                       absl::Span<const PackedMatMulJob> jobs) {
  if (w_bf16) {
    Run<uint16_t>(x, M, K, jobs);
  } else {
    Run<float>(x, M, K, jobs);
  }
}

void PackedMatMulAvx2(const float* x, int64_t M, int64_t K, const void* w, bool w_bf16,
                      bool w_panels, int64_t N, const float* bias, float* y) {
  const PackedMatMulJob job = {w, w_panels, N, bias, y};
  PackedMatMulsAvx2(x, M, K, w_bf16, {&job, 1});
}

}  // namespace jamba::kernels
