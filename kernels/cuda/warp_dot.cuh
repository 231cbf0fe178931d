// WarpDotsRows: one warp computes the dot products of M weight rows with up
// to R activation rows, reading each weight row once. Each lane loads 16 bytes
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

// The V weights of one 16-byte load as f32.
template <typename W>
__device__ __forceinline__ void VecToF32(const uint4& raw, float (&wf)[WeightVec<W>::kElems]) {
  const W* wv = reinterpret_cast<const W*>(&raw);
#pragma unroll
  for (int e = 0; e < WeightVec<W>::kElems; ++e) wf[e] = ToF32<W>(wv[e]);
}

// int8 without the int-to-float conversion unit (a quarter-rate
// instruction that bounds the int8 kernels): a biased byte b = v + 128
// placed under the exponent of 2^23 is the float 2^23 + b, exactly, so
// v = float(0x4B0000bb) - (2^23 + 128): one byte permute and one add.
template <>
__device__ __forceinline__ void VecToF32<int8_t>(const uint4& raw, float (&wf)[16]) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const uint32_t biased = words[q] ^ 0x80808080u;  // each byte v + 128
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const uint32_t bits = __byte_perm(biased, 0x4B000000u, 0x7540u + b);
      wf[4 * q + b] = __uint_as_float(bits) - 8388736.0f;
    }
  }
}

// acc[m][j] (+)= w[m][0:K] · xs[j][0:K] for m < M and j < nr (nr <= R),
// summed over the warp; every lane gets the totals. The M weight rows are
// read once and each activation load serves all M of them. kVec: K is a
// multiple of the vector width and w, xs are 16-byte aligned. With
// parts > 1 the warp sums only its share `part` of the K vectors (every
// parts-th one), for kernels that spread one row over several warps.
template <typename W, int M, int R, bool kVec>
__device__ __forceinline__ void WarpDotsRows(const W* const (&w)[M], int64_t K,
                                             const float* const (&xs)[R], int nr,
                                             float (&acc)[M][R], int part = 0, int parts = 1) {
  constexpr int V = WeightVec<W>::kElems;
  const int lane = threadIdx.x % 32 + 32 * part;
  const int64_t lanes = 32 * int64_t{parts};
#pragma unroll
  for (int m = 0; m < M; ++m) {
#pragma unroll
    for (int j = 0; j < R; ++j) acc[m][j] = 0.0f;
  }
  int64_t k0 = 0;
  if (kVec) {
    constexpr int kUnroll = M == 1 ? 4 : 2;
#pragma unroll kUnroll
    for (int64_t k = int64_t{lane} * V; k < K; k += lanes * V) {
      uint4 raw[M];
#pragma unroll
      for (int m = 0; m < M; ++m) raw[m] = __ldg(reinterpret_cast<const uint4*>(w[m] + k));
      float wf[M][V];
#pragma unroll
      for (int m = 0; m < M; ++m) VecToF32<W>(raw[m], wf[m]);
#pragma unroll
      for (int j = 0; j < R; ++j) {
        if (j >= nr) break;
        const float4* xv = reinterpret_cast<const float4*>(xs[j] + k);
#pragma unroll
        for (int q = 0; q < V / 4; ++q) {
          const float4 x4 = __ldg(xv + q);
#pragma unroll
          for (int m = 0; m < M; ++m) {
            acc[m][j] += wf[m][4 * q] * x4.x + wf[m][4 * q + 1] * x4.y + wf[m][4 * q + 2] * x4.z +
                         wf[m][4 * q + 3] * x4.w;
          }
        }
      }
    }
    k0 = K;
  }
  for (int64_t k = k0 + lane; k < K; k += lanes) {
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float wk = ToF32<W>(w[m][k]);
#pragma unroll
      for (int j = 0; j < R; ++j) {
        if (j < nr) acc[m][j] += wk * xs[j][k];
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
#pragma unroll
    for (int j = 0; j < R; ++j) {
      for (int o = 16; o > 0; o >>= 1) acc[m][j] += __shfl_xor_sync(0xffffffffu, acc[m][j], o);
    }
  }
}

}  // namespace jamba::kernels::cuda
