// FillRandom: uniform [lo, hi) values from a counter-based hash of (seed,
// index), so any size fills in one pass on the device, reproducibly.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {
namespace {

// splitmix64 finaliser.
__device__ __forceinline__ uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__global__ void FillKernel(FillRandomParams p) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < p.n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const uint64_t bits = Mix(p.seed * 0x100000001b3ull + static_cast<uint64_t>(i));
    const float u = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    const float v = p.lo + (p.hi - p.lo) * u;
    switch (p.type) {
      case WeightType::kBF16:
        static_cast<__nv_bfloat16*>(p.dst)[i] = __float2bfloat16_rn(v);
        break;
      case WeightType::kF16:
        static_cast<__half*>(p.dst)[i] = __float2half_rn(v);
        break;
      case WeightType::kI8:
        static_cast<int8_t*>(p.dst)[i] =
            static_cast<int8_t>(fmaxf(-127.0f, fminf(127.0f, rintf(v))));
        break;
      default:
        static_cast<float*>(p.dst)[i] = v;
    }
  }
}

}  // namespace

void LaunchFillRandom(const FillRandomParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  FillKernel<<<GridFor(p.n, 256), 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace jamba::kernels::cuda
