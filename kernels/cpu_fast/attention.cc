// FastAttention: CpuAttention's maths in AVX2 vectors. For each (query head,
// query token) the scores of 8 keys at a time (their dot products in 8
// accumulators, reduced together), a softmax in f32 with the vector exp, and
// the probability-weighted sum of the values in head_dim / 8 vectors. Each
// output depends only on its query row and the cache rows it sees, so a
// token gets the same bits in a prefill and in a decode step.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu_fast/fast_ops.h"
#include "kernels/cpu_fast/vec_math_avx2.h"
#include "kernels/cpu_fast/weight_panels.h"  // Widen

namespace jamba::kernels {
namespace {

constexpr int64_t kMaxChunks = 64;  // head_dim / 8 the vector path handles

// out[j] = the sum of v[j]'s 8 lanes.
JAMBA_AVX2 inline __m256 LaneSums8(const __m256 v[8]) {
  // After two rounds of pairwise adds, lane j of the low (high) half holds
  // the sum of v[j]'s low (high) four lanes, for j < 4 in ab and j >= 4 in cd.
  const __m256 ab = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 cd = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(ab, cd, 0x20), _mm256_permute2f128_ps(ab, cd, 0x31));
}

JAMBA_AVX2 inline float HorizontalMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

JAMBA_AVX2 inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// out for query token i and query head `head`, with caches of element type
// T (float or bf16 bits). s: [past + L rounded up to 8] scratch.
template <typename T>
JAMBA_AVX2 void AttendOne(const AttentionParams& p, int64_t head, int64_t i, float* s) {
  const int64_t hd = p.head_dim, chunks = hd / 8, n_kv = p.n_kv_heads;
  const T* k = static_cast<const T*>(p.k_cache.raw_data());  // [T, n_kv, hd]
  const T* v = static_cast<const T*>(p.v_cache.raw_data());  // [T, n_kv, hd]
  // Consecutive query heads share a KV head.  PyTorch: repeat_kv
  const int64_t kv = head / (p.n_heads / p.n_kv_heads);
  const int64_t T_i = p.past + i + 1;              // keys 0..past+i are visible
  const int64_t at = (i * p.n_heads + head) * hd;  // this head's slice of q's and out's row i
  __m256 q[kMaxChunks];
  for (int64_t c = 0; c < chunks; ++c) q[c] = _mm256_loadu_ps(p.q.data<float>() + at + 8 * c);

  // s_j = q_i · k_j / sqrt(hd), 8 keys at a time.
  // PyTorch: attn_weights = torch.matmul(q, k.transpose(2, 3)) * scaling
  const __m256 scale = _mm256_set1_ps(1.0f / std::sqrt(static_cast<float>(hd)));
  __m256 s_max = _mm256_set1_ps(-INFINITY);
  for (int64_t j0 = 0; j0 < T_i; j0 += 8) {
    const int64_t n = std::min<int64_t>(8, T_i - j0);
    __m256 dots[8];
    for (int jj = 0; jj < 8; ++jj) dots[jj] = _mm256_setzero_ps();
    for (int64_t jj = 0; jj < n; ++jj) {
      const T* kj = k + ((j0 + jj) * n_kv + kv) * hd;
      for (int64_t c = 0; c < chunks; ++c) {
        dots[jj] = _mm256_fmadd_ps(q[c], Widen(kj + 8 * c), dots[jj]);
      }
    }
    __m256 sj = _mm256_mul_ps(LaneSums8(dots), scale);
    if (n < 8) {  // keys past T_i are masked out
      const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      const __m256 keep =
          _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane));
      sj = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), sj, keep);
    }
    _mm256_storeu_ps(s + j0, sj);
    s_max = _mm256_max_ps(s_max, sj);
  }
  // p_j = exp(s_j - max) / sum, in f32; masked keys give exp(-inf) = 0.
  // PyTorch: softmax(attn_weights, dim=-1, dtype=torch.float32)
  const __m256 m = _mm256_set1_ps(HorizontalMax(s_max));
  __m256 sum = _mm256_setzero_ps();
  for (int64_t j0 = 0; j0 < T_i; j0 += 8) {
    const __m256 e = avx2::Exp(_mm256_sub_ps(_mm256_loadu_ps(s + j0), m));
    _mm256_storeu_ps(s + j0, e);
    sum = _mm256_add_ps(sum, e);
  }
  const __m256 total = _mm256_set1_ps(HorizontalSum(sum));
  for (int64_t j0 = 0; j0 < T_i; j0 += 8) {
    _mm256_storeu_ps(s + j0, _mm256_div_ps(_mm256_loadu_ps(s + j0), total));
  }
  // o = sum_j p_j v_j.  PyTorch: attn_output = torch.matmul(attn_weights, v)
  __m256 o[kMaxChunks];
  for (int64_t c = 0; c < chunks; ++c) o[c] = _mm256_setzero_ps();
  for (int64_t j = 0; j < T_i; ++j) {
    const __m256 pj = _mm256_set1_ps(s[j]);
    const T* vj = v + (j * n_kv + kv) * hd;
    for (int64_t c = 0; c < chunks; ++c) o[c] = _mm256_fmadd_ps(pj, Widen(vj + 8 * c), o[c]);
  }
  // out[i, head*hd : (head+1)*hd] = o; q's slice (which out may alias) was read first.
  for (int64_t c = 0; c < chunks; ++c) _mm256_storeu_ps(p.out.data<float>() + at + 8 * c, o[c]);
}

}  // namespace

void FastAttention(CpuIsa isa, const AttentionParams& p) {
  const bool vector_ok = isa != CpuIsa::kPortable && p.head_dim > 0 && p.head_dim % 8 == 0 &&
                         p.head_dim / 8 <= kMaxChunks;
  if (!vector_ok) {
    CpuAttention(p);  // also reports bad arguments
    return;
  }
  CheckAttention(p);
  const int64_t L = p.q.dim(0);
  const bool bf16 = p.k_cache.dtype() == DType::kBF16;
  // Work item (head, i) = head * L + i, each writing its own slice of out.
  ThreadPool::Default().ParallelFor(p.n_heads * L, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> s((p.past + L + 7) / 8 * 8);  // scores, then probabilities
    for (int64_t item = begin; item < end; ++item) {
      if (bf16) {
        AttendOne<uint16_t>(p, item / L, item % L, s.data());
      } else {
        AttendOne<float>(p, item / L, item % L, s.data());
      }
    }
  });
}

}  // namespace jamba::kernels
