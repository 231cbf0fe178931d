// Device helpers shared by the .cu kernels: activations with the reference
// formulas, weight-element loads, grid sizing.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace jamba::kernels::cuda {

__device__ __forceinline__ float Silu(float x) { return x / (1.0f + expf(-x)); }

// torch softplus with threshold 20.
__device__ __forceinline__ float Softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

// Element i of a weight array of the given type, as f32.
__device__ __forceinline__ float LoadWeight(const void* p, WeightType t, int64_t i) {
  switch (t) {
    case WeightType::kBF16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case WeightType::kF16:
      return __half2float(static_cast<const __half*>(p)[i]);
    default:
      return static_cast<const float*>(p)[i];
  }
}

// Blocks of `threads` covering n work items, capped for grid-stride loops.
inline unsigned GridFor(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > 65535LL * 16) blocks = 65535LL * 16;
  return static_cast<unsigned>(blocks);
}

}  // namespace jamba::kernels::cuda
