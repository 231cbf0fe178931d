// PackedMatMulAvx2 (matmul_tiles.h): the prefill GEMM, a 6 x 16 register
// tile (6 x rows broadcast, 16 w rows in two vectors, 12 accumulators) on
// packed panels, with the arithmetic of Avx2Tile.
//
// Avx2Tile gives each output 8 lane sums, lane l over k = 8c + l for c in
// order (one FMA each, K zero-padded to Kp = 8 * K8), then adds the lanes as
// ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)) and the bias. Here the panels are
// packed lane-major, [8 lanes][K8][rows], so for each lane the tile is an
// ordinary outer-product GEMM over c; the 8 lane results of the tile are
// then added in that same order. Every output is therefore bit-identical to
// the GEMV path, whatever M: a row's result does not depend on its batch.
//
// x is packed once into strips of 6 rows, also when several weights share it
// (PackedMatMulsAvx2: q, k and v; then the blocks of all of them share one
// parallel pass); each thread packs its blocks of w rows (about kBlockBytes,
// kept in L2; bf16 widened exactly) into strips of 16 rows, unless w is
// already in lane panels (lane_panels.h): then f32 panels are read in place
// and bf16 ones only widened. Lanes double as K blocks: a group of x
// strips runs against one w strip lane by lane, and each lane in pieces of kSteps values of c, so
// the piece of w and the group's pieces of x stay in L1; the lane sums wait in a small buffer until
// the group's tiles are combined.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu_fast/lane_panels.h"
#include "kernels/cpu_fast/matmul_tiles.h"

namespace jamba::kernels {
namespace {

constexpr int kMR = kPackedTileRows;        // x rows per strip
constexpr int kNR = kPanelRows;             // w rows per strip
constexpr int64_t kBlockBytes = 256 << 10;  // packed w per block
constexpr int64_t kMaxGroup = 8;            // x strips per pass over a w strip
constexpr int64_t kGroupBytes = 160 << 10;  // their packed x, beside the w block in L2
constexpr int64_t kSteps = 64;              // c values per pass: 4 KiB of w, 12 of x

// nr <= 16 rows of w[*, K] (ld apart) -> dst [8][K8][16] f32, zero-padded,
// the 8 lane sections lane_w floats apart.
template <typename T>
JAMBA_AVX2 void PackW(const T* w, int64_t ld, int nr, int64_t K, int64_t K8, int64_t lane_w,
                      float* dst) {
  if (nr == kNR && K % 8 == 0) {
    // A full strip with no K tail: no bounds checks, eight row pointers
    // walked in step (the general loop below spills them and branches per load).
    for (int half = 0; half < 2; ++half) {
      const T* r0 = w + half * 8 * ld;
      for (int64_t c = 0; c < K8; ++c) {
        __m256 r[8];
        for (int j = 0; j < 8; ++j) r[j] = Widen(r0 + j * ld + 8 * c);
        Transpose8(r);
        for (int l = 0; l < 8; ++l) _mm256_storeu_ps(dst + l * lane_w + c * kNR + half * 8, r[l]);
      }
    }
    return;
  }
  for (int64_t c = 0; c < K8; ++c) {
    for (int half = 0; half < 2; ++half) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) {
        const int row = half * 8 + j;
        r[j] = row < nr ? LoadChunk(w + row * ld, 8 * c, K) : _mm256_setzero_ps();
      }
      Transpose8(r);  // r[l] = lane l of rows half*8 .. half*8+7
      for (int l = 0; l < 8; ++l) _mm256_storeu_ps(dst + l * lane_w + c * kNR + half * 8, r[l]);
    }
  }
}

// mr <= 6 rows of x[*, K] (ld apart) -> dst [8][K8][6], zero-padded, the 8
// lane sections lane_x >= K8 * 6 + 2 floats apart: an 8 x 8 transpose per c
// (rows past mr are zero) whose 8-float stores spill 2 floats into the next
// entry (written after) or the lane's padding.
JAMBA_AVX2 void PackX(const float* x, int64_t ld, int mr, int64_t K, int64_t K8, int64_t lane_x,
                      float* dst) {
  for (int64_t c = 0; c < K8; ++c) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i)
      r[i] = i < mr ? LoadChunk(x + i * ld, 8 * c, K) : _mm256_setzero_ps();
    Transpose8(r);  // r[l] = x[0..8)[8c + l]
    for (int l = 0; l < 8; ++l) _mm256_storeu_ps(dst + l * lane_x + c * kMR, r[l]);
  }
}

// part[6][16] = lane l's sums of a 6 x 16 tile over `steps` values of c: a
// [steps][6] piece of an x lane section against a [steps][16] piece of a w
// lane section, one FMA per c in order, continuing the sums in part when
// `resume` (an f32 stored and loaded back is exact) or from zero.
// (Named accumulators: GCC spills an indexed __m256 array to the stack.)
JAMBA_AVX2 void LaneTile(const float* a, const float* b, int64_t steps, bool resume, float* part) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  if (resume) {
    c00 = _mm256_loadu_ps(part), c01 = _mm256_loadu_ps(part + 8);
    c10 = _mm256_loadu_ps(part + 16), c11 = _mm256_loadu_ps(part + 24);
    c20 = _mm256_loadu_ps(part + 32), c21 = _mm256_loadu_ps(part + 40);
    c30 = _mm256_loadu_ps(part + 48), c31 = _mm256_loadu_ps(part + 56);
    c40 = _mm256_loadu_ps(part + 64), c41 = _mm256_loadu_ps(part + 72);
    c50 = _mm256_loadu_ps(part + 80), c51 = _mm256_loadu_ps(part + 88);
  }
  for (int64_t c = 0; c < steps; ++c, a += kMR, b += kNR) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
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
  const __m256 rows[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                               {c30, c31}, {c40, c41}, {c50, c51}};
  for (int i = 0; i < kMR; ++i) {
    _mm256_storeu_ps(part + i * kNR, rows[i][0]);
    _mm256_storeu_ps(part + i * kNR + 8, rows[i][1]);
  }
}

// This thread's grow-only buffer for scratch slot `slot` (0: packed x,
// 1: packed w, 2: lane sums, 3: staged w rows). Fresh large allocations are
// new mappings, page-faulted in and zeroed by the kernel on every call; these
// stay as large as the largest call so far (packed x: M x K floats).
template <typename T>
T* Scratch(int slot, int64_t n) {
  thread_local std::vector<T> buffers[4];
  std::vector<T>& buffer = buffers[slot];
  if (buffer.size() < static_cast<size_t>(n)) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

// n (a multiple of 8) bf16 values to f32, in place order.
JAMBA_AVX2 void WidenRun(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; i += 8) _mm256_storeu_ps(dst + i, Widen(src + i));
}

// One strip of w (nr <= 16 rows from `rows`) as f32 panels [8][lane_w] in
// dst: bf16 lane panels widened; row-major rows copied in order through
// `staged` ([16][K]: they then stream at the memory's pace, where the
// transpose's 16 short row streams would wait on its latency) and
// transposed. (f32 lane panels need neither and are read in place.)
template <typename WType>
void StripToF32Panels(const WType* rows, bool panels, int nr, int64_t K, int64_t K8, int64_t lane_w,
                      WType* staged, float* dst) {
  if constexpr (sizeof(WType) == sizeof(uint16_t)) {
    if (panels) {
      WidenRun(rows, kNR * K, dst);
      return;
    }
  }
  std::memcpy(staged, rows, nr * K * sizeof(WType));
  PackW(staged, K, nr, K, K8, lane_w, dst);
}

// What every block of a call shares: x packed into strips, and its shape.
struct PackedX {
  int64_t M, K, K8, lane_x, strip_x, x_strips, group;
  const float* xp;  // [x_strips][8][lane_x]
};

// A strip packed here has its lane sections one cache line more than
// K8 * 16 floats apart: at a power-of-two stride (K = 256, 512, 2048...) the
// transpose's 8 stores per step all fall in one L1 set and evict each other.
// Lane panels made at load time are read as they are.
int64_t LaneWidth(int64_t K8, bool panels) { return panels ? K8 * kNR : K8 * kNR + 16; }

// Rows [n0, n1) of job's w against all of x. wp: scratch for the block's
// f32 panels unless they are read in place; [ahead, ahead_end): the next
// block's weights, read ahead.
template <typename WType>
void RunBlock(const PackedX& px, const PackedMatMulJob& job, int64_t n0, int64_t n1, float* wp,
              float* part, WType* staged, const char* ahead, const char* ahead_end) {
  const int64_t K = px.K, K8 = px.K8, N = job.N;
  const int64_t lane_w = LaneWidth(K8, job.w_panels), strip_w = 8 * lane_w;
  const WType* w = static_cast<const WType*>(job.w);
  // The f32 panels of the block's strips: [strips][8][lane_w]. f32 lane
  // panels are read in place; anything else is put in f32 panels first.
  const float* block_panels = wp;
  if (job.w_panels && sizeof(WType) == sizeof(float)) {
    block_panels = reinterpret_cast<const float*>(w + n0 * K);  // WType is float
  } else {
    for (int64_t n = n0; n < n1; n += kNR) {
      const int nr = static_cast<int>(std::min<int64_t>(kNR, n1 - n));
      StripToF32Panels(w + n * K, job.w_panels, nr, K, K8, lane_w, staged,
                       wp + (n - n0) / kNR * strip_w);
    }
  }
  // Groups of x strips against one w strip, lane by lane: the w lane section
  // stays in L1 across the group, the group's x in L2. While the first group
  // runs, the next block's rows are read ahead, spread evenly over its
  // tiles, so that the copy above (or, in place, the first group) finds them
  // in cache.
  const int64_t first_tiles = (n1 - n0 + kNR - 1) / kNR * 8 * ((K8 + kSteps - 1) / kSteps) *
                              std::min(px.group, px.x_strips);
  const int64_t ahead_per_tile =
      ahead != nullptr ? ((ahead_end - ahead) / 64 + first_tiles - 1) / first_tiles : 0;
  for (int64_t g0 = 0; g0 < px.x_strips; g0 += px.group) {
    const int64_t g1 = std::min(px.x_strips, g0 + px.group);
    for (int64_t n = n0; n < n1; n += kNR) {
      const float* ws = block_panels + (n - n0) / kNR * strip_w;
      for (int l = 0; l < 8; ++l) {
        for (int64_t c0 = 0; c0 < K8; c0 += kSteps) {
          const int64_t steps = std::min(kSteps, K8 - c0);
          for (int64_t g = g0; g < g1; ++g) {
            for (int64_t i = 0; i < ahead_per_tile && ahead < ahead_end; ++i, ahead += 64) {
              _mm_prefetch(ahead, _MM_HINT_T1);
            }
            LaneTile(px.xp + g * px.strip_x + l * px.lane_x + c0 * kMR, ws + l * lane_w + c0 * kNR,
                     steps, c0 > 0, part + ((g - g0) * 8 + l) * kMR * kNR);
          }
        }
      }
      const int nr = static_cast<int>(std::min<int64_t>(kNR, n1 - n));
      for (int64_t g = g0; g < g1; ++g) {
        const int mr = static_cast<int>(std::min<int64_t>(kMR, px.M - g * kMR));
        CombineLaneSums(part + (g - g0) * 8 * kMR * kNR,
                        job.bias != nullptr ? job.bias + n : nullptr, job.y + g * kMR * N + n, N,
                        mr, nr);
      }
    }
  }
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
  px.K8 = (K + 7) / 8;
  px.lane_x = px.K8 * kMR + 2;
  px.strip_x = 8 * px.lane_x;
  px.x_strips = (M + kMR - 1) / kMR;
  px.group = std::clamp<int64_t>(kGroupBytes / (px.strip_x * 4), 1, kMaxGroup);
  float* const xp = Scratch<float>(0, px.x_strips * px.strip_x);
  px.xp = xp;
  ThreadPool& pool = ThreadPool::Default();
  pool.ParallelFor(px.x_strips, 4, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, M - s * kMR));
      PackX(x + s * kMR * K, K, mr, K, px.K8, px.lane_x, xp + s * px.strip_x);
    }
  });

  // Each job's w in blocks: whole strips, about kBlockBytes packed, and
  // small enough that every thread gets one of each job.
  const int64_t threads = pool.num_threads();
  std::vector<Block> blocks;
  int64_t wp_floats = 0;   // the largest block that is not read in place
  bool row_major = false;  // some w is row-major, so strips are staged
  for (size_t j = 0; j < jobs.size(); ++j) {
    const int64_t N = jobs[j].N, strip_w = 8 * LaneWidth(px.K8, jobs[j].w_panels);
    int64_t strips = std::max<int64_t>(1, kBlockBytes / (strip_w * 4));
    strips = std::min(strips, ((N + kNR - 1) / kNR + threads - 1) / threads);
    const int64_t block = std::max<int64_t>(1, strips) * kNR;
    for (int64_t n0 = 0; n0 < N; n0 += block) {
      blocks.push_back({static_cast<int64_t>(j), n0, std::min(N, n0 + block)});
    }
    row_major = row_major || !jobs[j].w_panels;
    if (!(jobs[j].w_panels && sizeof(WType) == sizeof(float))) {
      wp_floats = std::max(wp_floats, block / kNR * strip_w);
    }
  }
  auto rows_of = [&](const Block& b, int64_t n) {
    return reinterpret_cast<const char*>(static_cast<const WType*>(jobs[b.job].w) + n * K);
  };
  pool.ParallelFor(static_cast<int64_t>(blocks.size()), 1, [&](int64_t b0, int64_t b1) {
    // Every thread's own; each is written before it is read.
    float* const wp = wp_floats > 0 ? Scratch<float>(1, wp_floats) : nullptr;
    float* const part = Scratch<float>(2, px.group * 8 * kMR * kNR);         // [group][8][6][16]
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
