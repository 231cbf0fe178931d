// Gemv: y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias) for small M (decode steps), one
// warp per output column n reading w's row once for all M rows of x, in f32
// on the widened weights. Memory-bound: the weights are read once, at full
// width, with no activation rounding and no conversion kernel.
//   PyTorch: y = F.linear(x, w, bias)
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/warp_dot.cuh"

namespace jamba::kernels::cuda {
namespace {

constexpr int kWarps = 8;

template <typename W, bool kVec>
__global__ void __launch_bounds__(kWarps * 32) GemvKernel(GemvParams p) {
  const int64_t n = blockIdx.x * int64_t{kWarps} + threadIdx.x / 32;
  if (n >= p.N) return;
  const float* xs[kGemvMaxRows];
#pragma unroll
  for (int j = 0; j < kGemvMaxRows; ++j) xs[j] = p.x + (j < p.M ? j : 0) * p.K;
  float acc[kGemvMaxRows];
  WarpDots<W, kGemvMaxRows, kVec>(static_cast<const W*>(p.w) + n * p.K, p.K, xs,
                                  static_cast<int>(p.M), acc);
  if (threadIdx.x % 32 != 0) return;
  const float b = p.bias != nullptr ? p.bias[n] : 0.0f;
#pragma unroll
  for (int j = 0; j < kGemvMaxRows; ++j) {
    if (j < p.M) p.y[j * p.N + n] = acc[j] + b;
  }
}

template <typename W>
void Launch(const GemvParams& p, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((p.N + kWarps - 1) / kWarps);
  const bool vec = CanVectorize(p.w, sizeof(W), p.K) && CanVectorize(p.x, 4, p.K);
  if (vec) {
    GemvKernel<W, true><<<blocks, kWarps * 32, 0, stream>>>(p);
  } else {
    GemvKernel<W, false><<<blocks, kWarps * 32, 0, stream>>>(p);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void LaunchGemv(const GemvParams& p, cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return;
  switch (p.w_type) {
    case WeightType::kBF16:
      return Launch<__nv_bfloat16>(p, stream);
    case WeightType::kF16:
      return Launch<__half>(p, stream);
    case WeightType::kI8:
      return Launch<int8_t>(p, stream);
    default:
      return Launch<float>(p, stream);
  }
}

}  // namespace jamba::kernels::cuda
