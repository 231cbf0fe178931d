// Gemv: y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias) for small M (decode steps), one
// warp per two output columns reading their rows of w once for all M rows of x, in f32
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
  // A warp per pair of columns n0, n0 + 1 (the second may not exist): two
  // weight rows in flight per lane.
  const int64_t n0 = 2 * (blockIdx.x * int64_t{kWarps} + threadIdx.x / 32);
  if (n0 >= p.N) return;
  const bool pair = n0 + 1 < p.N;
  const W* w = static_cast<const W*>(p.w);  // [N, K]
  const W* const rows[2] = {w + n0 * p.K, w + (pair ? n0 + 1 : n0) * p.K};
  const float* xs[kGemvMaxRows];
#pragma unroll
  for (int j = 0; j < kGemvMaxRows; ++j) xs[j] = p.x + (j < p.M ? j : 0) * p.K;
  float acc[2][kGemvMaxRows];
  WarpDotsRows<W, 2, kGemvMaxRows, kVec>(rows, p.K, xs, static_cast<int>(p.M), acc);
  if (threadIdx.x % 32 != 0) return;
#pragma unroll
  for (int m = 0; m < 2; ++m) {
    const int64_t n = n0 + m;
    if (m == 1 && !pair) break;
    const float b = p.bias != nullptr ? p.bias[n] : 0.0f;
#pragma unroll
    for (int j = 0; j < kGemvMaxRows; ++j) {
      if (j < p.M) p.y[j * p.N + n] = acc[m][j] + b;
    }
  }
}

// Few columns (x_proj's B and C, the MoE router): a block per column n,
// its kWarps warps each summing every kWarps-th vector of the row, then
// the warps' sums added in warp order (deterministic), so the row is read
// by a whole block instead of half a warp and more multiprocessors work.
template <typename W, bool kVec>
__global__ void __launch_bounds__(kWarps * 32) GemvColumnKernel(GemvParams p) {
  __shared__ float partial[kWarps][kGemvMaxRows];
  const int64_t n = blockIdx.x;
  const int warp = threadIdx.x / 32;
  const W* const rows[1] = {static_cast<const W*>(p.w) + n * p.K};  // [K]
  const float* xs[kGemvMaxRows];
#pragma unroll
  for (int j = 0; j < kGemvMaxRows; ++j) xs[j] = p.x + (j < p.M ? j : 0) * p.K;
  float acc[1][kGemvMaxRows];
  WarpDotsRows<W, 1, kGemvMaxRows, kVec>(rows, p.K, xs, static_cast<int>(p.M), acc, warp, kWarps);
  if (threadIdx.x % 32 == 0) {
#pragma unroll
    for (int j = 0; j < kGemvMaxRows; ++j) partial[warp][j] = acc[0][j];
  }
  __syncthreads();
  if (threadIdx.x >= kGemvMaxRows || threadIdx.x >= p.M) return;
  const int j = threadIdx.x;
  float sum = 0.0f;
  for (int w = 0; w < kWarps; ++w) sum += partial[w][j];
  p.y[j * p.N + n] = sum + (p.bias != nullptr ? p.bias[n] : 0.0f);
}

template <typename W>
void Launch(const GemvParams& p, cudaStream_t stream) {
  const bool vec = CanVectorize(p.w, sizeof(W), p.K) && CanVectorize(p.x, 4, p.K);
  // Two columns per warp fill the device once there are enough of them.
  if (p.N < p.column_blocks_below) {
    const unsigned blocks = static_cast<unsigned>(p.N);
    if (vec) {
      GemvColumnKernel<W, true><<<blocks, kWarps * 32, 0, stream>>>(p);
    } else {
      GemvColumnKernel<W, false><<<blocks, kWarps * 32, 0, stream>>>(p);
    }
    CUDA_CHECK_LAUNCH();
    return;
  }
  const unsigned blocks = static_cast<unsigned>((p.N + 2 * kWarps - 1) / (2 * kWarps));
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
