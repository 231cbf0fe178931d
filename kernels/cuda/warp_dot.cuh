// WarpDots: one warp computes the dot products of one weight row with up to
// R activation rows, reading the weight row once. Each lane loads 16 bytes
// of weights per step (8 bf16/f16, 4 f32 or 16 int8) and the matching f32
// activations (cached: they are small and shared by every warp), with f32
// accumulation; the lanes' sums are reduced by shuffles at the end.
// Shared by the small-M GEMV (gemv.cu) and the grouped expert MLP.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {

template <typename W>
struct WeightVec {
  static constexpr int kElems = 16 / sizeof(W);
};

// f32 value of weight element w[i] for the element types the kernels take.
template <typename W>
__device__ __forceinline__ float ToF32(W v);
template <>
__device__ __forceinline__ float ToF32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float ToF32<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
__device__ __forceinline__ float ToF32<__half>(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float ToF32<int8_t>(int8_t v) {
  return static_cast<float>(v);
}

// acc[j] (+)= w[0:K] · xs[j][0:K] for j < nr (nr <= R), summed over the
// warp; every lane gets the totals. kVec: K is a multiple of the vector
// width and w, xs are 16-byte aligned.
template <typename W, int R, bool kVec>
__device__ __forceinline__ void WarpDots(const W* __restrict__ w, int64_t K,
                                         const float* const (&xs)[R], int nr, float (&acc)[R]) {
  constexpr int V = WeightVec<W>::kElems;
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int j = 0; j < R; ++j) acc[j] = 0.0f;
  int64_t k0 = 0;
  if (kVec) {
#pragma unroll 4
    for (int64_t k = int64_t{lane} * V; k < K; k += 32 * V) {
      const uint4 raw = __ldg(reinterpret_cast<const uint4*>(w + k));
      const W* wv = reinterpret_cast<const W*>(&raw);
      float wf[V];
#pragma unroll
      for (int e = 0; e < V; ++e) wf[e] = ToF32<W>(wv[e]);
#pragma unroll
      for (int j = 0; j < R; ++j) {
        if (j >= nr) break;
        const float4* xv = reinterpret_cast<const float4*>(xs[j] + k);
#pragma unroll
        for (int q = 0; q < V / 4; ++q) {
          const float4 x4 = __ldg(xv + q);
          acc[j] +=
              wf[4 * q] * x4.x + wf[4 * q + 1] * x4.y + wf[4 * q + 2] * x4.z + wf[4 * q + 3] * x4.w;
        }
      }
    }
    k0 = K;
  }
  for (int64_t k = k0 + lane; k < K; k += 32) {
    const float wk = ToF32<W>(w[k]);
#pragma unroll
    for (int j = 0; j < R; ++j) {
      if (j < nr) acc[j] += wk * xs[j][k];
    }
  }
#pragma unroll
  for (int j = 0; j < R; ++j) {
    for (int o = 16; o > 0; o >>= 1) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
  }
}

}  // namespace jamba::kernels::cuda
