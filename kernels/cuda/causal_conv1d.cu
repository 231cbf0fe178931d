// CausalConv1d: Mamba's depthwise causal conv + SiLU continuing from
// conv_state. With xx = concat(conv_state [K-1, Di], x [L, Di]):
//   y[t, d] = silu(b[d] + sum_k w[d, k] * xx[t + k, d])
// One thread per (t, d) for any L (L = 1 is the decode update), then one
// thread per channel moves the last K-1 rows of xx into conv_state.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {
namespace {

// xx[j, d]: the state's rows first, then x's.
__device__ __forceinline__ float Xx(const Conv1dParams& p, int64_t j, int64_t d) {
  return j < p.K - 1 ? p.conv_state[j * p.Di + d] : p.x[(j - (p.K - 1)) * p.Di + d];
}

__global__ void ConvKernel(Conv1dParams p) {
  const int64_t n = p.L * p.Di;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = i / p.Di, d = i % p.Di;
    // PyTorch: act(conv1d(x)[..., :L]) with the state as left padding.
    float c = p.bias != nullptr ? p.bias[d] : 0.0f;
    for (int k = 0; k < p.K; ++k) c += p.weight[d * p.K + k] * Xx(p, t + k, d);
    p.y[i] = Silu(c);
  }
}

// conv_state[k] = xx[L + k] for k < K-1, ascending k: xx rows of the old
// state that are read (index L + k > k) have not been overwritten yet.
__global__ void StateKernel(Conv1dParams p) {
  for (int64_t d = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; d < p.Di;
       d += int64_t{gridDim.x} * blockDim.x) {
    for (int k = 0; k < p.K - 1; ++k) p.conv_state[k * p.Di + d] = Xx(p, p.L + k, d);
  }
}

}  // namespace

void LaunchCausalConv1d(const Conv1dParams& p, cudaStream_t stream) {
  if (p.L == 0 || p.Di == 0) return;
  ConvKernel<<<GridFor(p.L * p.Di, 256), 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
  if (p.K > 1) {
    StateKernel<<<GridFor(p.Di, 256), 256, 0, stream>>>(p);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace jamba::kernels::cuda
