// RmsNorm: one block per row. mean(x^2) is reduced in f32 across the block;
// the gain multiplies after normalising (HF JambaRMSNorm). y may alias x:
// each thread reads its own elements before writing them.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void RmsNormKernel(RmsNormParams p) {
  const float* x = p.x + blockIdx.x * p.cols;  // [D]
  float* y = p.y + blockIdx.x * p.cols;        // [D]
  float sum = 0.0f;
  for (int64_t d = threadIdx.x; d < p.cols; d += kThreads) sum += x[d] * x[d];
  // Warp sums, then the first warp sums the warps.
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  __shared__ float warp_sums[kThreads / 32];
  __shared__ float inv_rms;
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x < 32) {
    float s = threadIdx.x < kThreads / 32 ? warp_sums[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    // PyTorch: x * torch.rsqrt(x.pow(2).mean(-1) + eps)
    if (threadIdx.x == 0) inv_rms = 1.0f / sqrtf(s / static_cast<float>(p.cols) + p.eps);
  }
  __syncthreads();
  for (int64_t d = threadIdx.x; d < p.cols; d += kThreads) y[d] = p.gain[d] * (x[d] * inv_rms);
}

}  // namespace

void LaunchRmsNorm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  RmsNormKernel<<<static_cast<unsigned>(p.rows), kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace jamba::kernels::cuda
