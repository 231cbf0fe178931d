// CpuAttention: causal multi-head attention with grouped KV heads (GQA/MQA)
// over an f32 or bf16 KV cache already holding this call's keys and values. No position
// encoding. Work items are (query head, query token) pairs, each writing its
// own slice of out, so threads never share output.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {

void CheckAttention(const AttentionParams& p) {
  const char* op = "Attention";
  CheckHost(p.q, op, "q");
  CheckHost(p.k_cache, op, "k_cache");
  CheckHost(p.v_cache, op, "v_cache");
  CheckHost(p.out, op, "out");
  JAMBA_CHECK(p.n_heads > 0 && p.n_kv_heads > 0 && p.head_dim > 0 &&
              p.n_heads % p.n_kv_heads == 0 && p.past >= 0)
      << op << ": n_heads " << p.n_heads << " n_kv_heads " << p.n_kv_heads << " head_dim "
      << p.head_dim << " past " << p.past << " (want n_heads a multiple of n_kv_heads)";
  const int64_t qd = static_cast<int64_t>(p.n_heads) * p.head_dim;
  const bool ok = p.q.rank() == 2 && p.q.dim(1) == qd && p.out.shape() == p.q.shape() &&
                  p.k_cache.rank() == 3 && p.k_cache.dim(1) == p.n_kv_heads &&
                  p.k_cache.dim(2) == p.head_dim && p.v_cache.shape() == p.k_cache.shape() &&
                  p.k_cache.dim(0) >= p.past + p.q.dim(0);
  JAMBA_CHECK(ok) << op << ": q " << p.q.DebugString() << " k_cache " << p.k_cache.DebugString()
                  << " v_cache " << p.v_cache.DebugString() << " out " << p.out.DebugString()
                  << " past " << p.past << " (want q, out [L,n_heads*hd]; caches [T,n_kv_heads,hd]"
                  << " with T >= past+L)";
  for (const Tensor* t : {&p.q, &p.out}) {
    JAMBA_CHECK(t->dtype() == DType::kF32)
        << op << ": q and out must be f32, got " << t->DebugString();
  }
  JAMBA_CHECK((p.k_cache.dtype() == DType::kF32 || p.k_cache.dtype() == DType::kBF16) &&
              p.v_cache.dtype() == p.k_cache.dtype())
      << op << ": k_cache " << p.k_cache.DebugString() << " v_cache " << p.v_cache.DebugString()
      << " (want both f32 or both bf16)";
}

namespace {

// Row j of KV head kv of a cache [T, n_kv, hd] as f32: the cache itself
// when it is f32, else decoded into `scratch` [hd].
const float* KvRow(const Tensor& cache, int64_t j, int64_t kv, int64_t hd, float* scratch) {
  const int64_t offset = (j * cache.dim(1) + kv) * hd;
  if (cache.dtype() == DType::kF32) return cache.data<float>() + offset;
  RowToF32(static_cast<const uint16_t*>(cache.raw_data()) + offset, cache.dtype(), hd, scratch);
  return scratch;
}

// out for query token i and query head `head`.
// s: [past+L] scratch for scores; o, row: [hd] scratch.
void AttendOne(const AttentionParams& p, int64_t head, int64_t i, float* s, float* o, float* row) {
  const int64_t hd = p.head_dim;
  const float* q = p.q.data<float>();  // [L, n_heads * hd]
  float* out = p.out.data<float>();    // [L, n_heads * hd]
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Consecutive query heads share a KV head.  PyTorch: repeat_kv
  const int64_t kv = head / (p.n_heads / p.n_kv_heads);
  const int64_t T_i = p.past + i + 1;                 // keys 0..past+i are visible
  const float* qi = q + (i * p.n_heads + head) * hd;  // [hd]

  // s_j = q_i · k_j / sqrt(hd) for j < T_i; later keys are masked out.
  // PyTorch: attn_weights = torch.matmul(q, k.transpose(2, 3)) * scaling
  float s_max = -INFINITY;
  for (int64_t j = 0; j < T_i; ++j) {
    const float* kj = KvRow(p.k_cache, j, kv, hd, row);  // [hd]
    float dot = 0.0f;
    for (int64_t e = 0; e < hd; ++e) dot += qi[e] * kj[e];
    s[j] = dot * scale;
    s_max = std::max(s_max, s[j]);
  }
  // p_j = exp(s_j - max) / sum, in f32.
  // PyTorch: softmax(attn_weights, dim=-1, dtype=torch.float32)
  float sum = 0.0f;
  for (int64_t j = 0; j < T_i; ++j) {
    s[j] = std::exp(s[j] - s_max);
    sum += s[j];
  }
  for (int64_t j = 0; j < T_i; ++j) s[j] /= sum;
  // o = sum_j p_j v_j.  PyTorch: attn_output = torch.matmul(attn_weights, v)
  std::fill(o, o + hd, 0.0f);
  for (int64_t j = 0; j < T_i; ++j) {
    const float* vj = KvRow(p.v_cache, j, kv, hd, row);  // [hd]
    for (int64_t e = 0; e < hd; ++e) o[e] += s[j] * vj[e];
  }
  // out[i, head*hd : (head+1)*hd] = o; q's slice was fully read above.
  std::copy(o, o + hd, out + (i * p.n_heads + head) * hd);
}

}  // namespace

void CpuAttention(const AttentionParams& p) {
  CheckAttention(p);
  const int64_t L = p.q.dim(0);
  // Work item (head, i) = head * L + i.
  ThreadPool::Default().ParallelFor(p.n_heads * L, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> s(p.past + L);                   // [past+L] scores, then probs
    std::vector<float> o(p.head_dim), row(p.head_dim);  // [hd] each
    for (int64_t item = begin; item < end; ++item) {
      AttendOne(p, item / L, item % L, s.data(), o.data(), row.data());
    }
  });
}

}  // namespace jamba::kernels
