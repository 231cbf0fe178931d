// Attention: causal GQA attention over an f32 or bf16 KV cache, flash-decoding
// style. Block (query token i, kv head, split s) handles the G query heads
// that share the KV head over keys [s*chunk, (s+1)*chunk) ∩ [0, past+i]:
// each warp walks its keys with an online softmax (lane r holds elements
// lane + 32r of the head vector), the block merges its warps, and when the
// keys are split a second kernel merges the splits (log-sum-exp rescale).
//   S = q k^T / sqrt(hd), key pos <= query pos;  out = softmax(S) v
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kMinKeysPerSplit = 128;

// Partial results of one (token, head, split): m, l, then acc[hd].
__device__ __forceinline__ float* Partial(const AttnParams& p, int64_t i, int head, int s) {
  return p.workspace + ((i * p.n_heads + head) * p.num_splits + s) * (p.head_dim + 2);
}

__device__ __forceinline__ float KvToF32(float v) { return v; }
__device__ __forceinline__ float KvToF32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename KV, int kPerLane, int kMaxG>
__global__ void __launch_bounds__(kWarps * 32) AttnKernel(AttnParams p) {
  extern __shared__ float smem[];  // [kWarps][2 + hd] per head g, see below
  const int kv = blockIdx.y, s = blockIdx.z;
  const int64_t i = blockIdx.x;
  const int G = p.n_heads / p.n_kv_heads, hd = p.head_dim;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t T = p.past + p.L, Ti = p.past + i + 1;  // keys 0..past+i visible
  const int64_t chunk = (T + p.num_splits - 1) / p.num_splits;
  const int64_t begin = s * chunk, end = min(Ti, begin + chunk);
  const float scale = 1.0f / sqrtf(static_cast<float>(hd));
  const int64_t kv_stride = int64_t{p.n_kv_heads} * hd;

  float q[kMaxG][kPerLane], acc[kMaxG][kPerLane], m[kMaxG], l[kMaxG];
#pragma unroll
  for (int g = 0; g < kMaxG; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      const int e = lane + 32 * r;
      const bool ok = g < G && e < hd;
      q[g][r] = ok ? p.q[(i * p.n_heads + kv * G + g) * hd + e] * scale : 0.0f;
      acc[g][r] = 0.0f;
    }
  }
  for (int64_t j = begin + warp; j < end; j += kWarps) {
    const KV* kj = static_cast<const KV*>(p.k_cache) + j * kv_stride + int64_t{kv} * hd;  // [hd]
    const KV* vj = static_cast<const KV*>(p.v_cache) + j * kv_stride + int64_t{kv} * hd;  // [hd]
    float k[kPerLane], v[kPerLane];
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      const int e = lane + 32 * r;
      k[r] = e < hd ? KvToF32(kj[e]) : 0.0f;
      v[r] = e < hd ? KvToF32(vj[e]) : 0.0f;
    }
#pragma unroll
    for (int g = 0; g < kMaxG; ++g) {
      if (g >= G) break;
      float dot = 0.0f;
#pragma unroll
      for (int r = 0; r < kPerLane; ++r) dot += q[g][r] * k[r];
      for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      // Online softmax: rescale what was summed so far to the new maximum.
      const float m_new = fmaxf(m[g], dot);
      const float corr = expf(m[g] - m_new), pj = expf(dot - m_new);
      l[g] = l[g] * corr + pj;
#pragma unroll
      for (int r = 0; r < kPerLane; ++r) acc[g][r] = acc[g][r] * corr + pj * v[r];
      m[g] = m_new;
    }
  }
  // Merge the warps: smem[(g * kWarps + w) * (hd + 2) + {0: m, 1: l, 2..: acc}].
  const int row = hd + 2;
#pragma unroll
  for (int g = 0; g < kMaxG; ++g) {
    if (g >= G) break;
    float* w_row = smem + (g * kWarps + warp) * row;
    if (lane == 0) {
      w_row[0] = m[g];
      w_row[1] = l[g];
    }
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      if (lane + 32 * r < hd) w_row[2 + lane + 32 * r] = acc[g][r];
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * hd; idx += kWarps * 32) {
    const int g = idx / hd, e = idx % hd;
    const float* rows = smem + g * kWarps * row;
    float m_all = -INFINITY;
    for (int w = 0; w < kWarps; ++w) m_all = fmaxf(m_all, rows[w * row]);
    float l_all = 0.0f, a_all = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      if (rows[w * row + 1] == 0.0f) continue;  // a warp with no keys
      const float c = expf(rows[w * row] - m_all);
      l_all += rows[w * row + 1] * c;
      a_all += rows[w * row + 2 + e] * c;
    }
    const int head = kv * G + g;
    if (p.num_splits == 1) {
      p.out[(i * p.n_heads + head) * hd + e] = a_all / l_all;
    } else {
      float* part = Partial(p, i, head, s);
      if (e == 0) {
        part[0] = m_all;
        part[1] = l_all;
      }
      part[2 + e] = a_all;
    }
  }
}

// out[i, head, e] = sum_s acc_s[e] e^(m_s - M) / sum_s l_s e^(m_s - M).
__global__ void MergeSplitsKernel(AttnParams p) {
  const int64_t i = blockIdx.x / p.n_heads;
  const int head = blockIdx.x % p.n_heads;
  for (int e = threadIdx.x; e < p.head_dim; e += blockDim.x) {
    float m_all = -INFINITY;
    for (int s = 0; s < p.num_splits; ++s) {
      const float* part = Partial(p, i, head, s);
      if (part[1] > 0.0f) m_all = fmaxf(m_all, part[0]);
    }
    float l_all = 0.0f, a_all = 0.0f;
    for (int s = 0; s < p.num_splits; ++s) {
      const float* part = Partial(p, i, head, s);
      if (part[1] == 0.0f) continue;  // a split past this token's keys
      const float c = expf(part[0] - m_all);
      l_all += part[1] * c;
      a_all += part[2 + e] * c;
    }
    p.out[(i * p.n_heads + head) * p.head_dim + e] = a_all / l_all;
  }
}

template <typename KV, int kPerLane, int kMaxG>
void LaunchKv(const AttnParams& p, cudaStream_t stream) {
  const int G = p.n_heads / p.n_kv_heads;
  const size_t smem = sizeof(float) * G * kWarps * (p.head_dim + 2);
  if (smem > 48 * 1024) {
    CUDA_CHECK(cudaFuncSetAttribute(AttnKernel<KV, kPerLane, kMaxG>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
  }
  const dim3 grid(static_cast<unsigned>(p.L), p.n_kv_heads, p.num_splits);
  AttnKernel<KV, kPerLane, kMaxG><<<grid, kWarps * 32, smem, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

template <int kPerLane, int kMaxG>
void LaunchFor(const AttnParams& p, cudaStream_t stream) {
  if (p.kv_bf16) return LaunchKv<__nv_bfloat16, kPerLane, kMaxG>(p, stream);
  LaunchKv<float, kPerLane, kMaxG>(p, stream);
}

template <int kPerLane>
void LaunchForLane(const AttnParams& p, cudaStream_t stream) {
  const int G = p.n_heads / p.n_kv_heads;
  if (G <= 1) return LaunchFor<kPerLane, 1>(p, stream);
  if (G <= 2) return LaunchFor<kPerLane, 2>(p, stream);
  if (G <= 4) return LaunchFor<kPerLane, 4>(p, stream);
  LaunchFor<kPerLane, 8>(p, stream);
}

}  // namespace

int AttentionNumSplits(int64_t L, int64_t past, int n_kv_heads, int num_sms) {
  const int64_t blocks = L * n_kv_heads;
  const int64_t target = 4 * int64_t{num_sms};
  if (blocks >= target) return 1;
  const int64_t by_keys = (past + L + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  const int64_t want = (target + blocks - 1) / blocks;
  const int64_t splits = want < by_keys ? want : by_keys;
  return static_cast<int>(splits < 1 ? 1 : (splits > 1024 ? 1024 : splits));
}

int64_t AttentionWorkspaceFloats(const AttnParams& p) {
  if (p.num_splits <= 1) return 0;
  return p.L * p.n_heads * p.num_splits * (p.head_dim + 2);
}

void LaunchAttention(const AttnParams& p, cudaStream_t stream) {
  if (p.L == 0) return;
  const int per_lane = (p.head_dim + 31) / 32;
  if (per_lane <= 1) {
    LaunchForLane<1>(p, stream);
  } else if (per_lane <= 2) {
    LaunchForLane<2>(p, stream);
  } else if (per_lane <= 4) {
    LaunchForLane<4>(p, stream);
  } else {
    LaunchForLane<8>(p, stream);
  }
  if (p.num_splits > 1) {
    MergeSplitsKernel<<<static_cast<unsigned>(p.L * p.n_heads), 128, 0, stream>>>(p);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace jamba::kernels::cuda
