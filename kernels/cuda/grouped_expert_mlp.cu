// GroupedExpertMlp: the MoE experts of a whole batch in three launches with
// no host round trip, for the few rows per expert of a decode step:
//   1. one block sorts the routes by expert (stable: route order within an
//      expert) into order[] and offsets[E+1], flagging bad indices;
//   2. grid (I/8, E): a warp per row i of gate and up of expert e reads both
//      weight rows once for all the expert's routes (8 per pass), each
//      activation load serving both, and writes
//      act[r, i] = silu(scale_g[i] gate_i·x_r) * (scale_u[i] up_i·x_r);
//   3. grid (H/16, E): a warp per two rows h of down writes
//      y[r, h] = scale_d[h] down_h·act[r].
// Experts with no routes exit at once, so only routed weights are read.
//   PyTorch: y[r] = expert.down_proj(F.silu(expert.gate_proj(x)) * expert.up_proj(x))
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/warp_dot.cuh"

namespace jamba::kernels::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kRowsPerPass = 8;

__device__ __forceinline__ bool ValidRoute(const GroupedMlpParams& p, int64_t r) {
  const int32_t row = p.rows[r], e = p.experts[r];
  return row >= 0 && row < p.T && e >= 0 && e < p.E && p.table[e].gate != nullptr;
}

__global__ void SortRoutesKernel(GroupedMlpParams p) {
  extern __shared__ int32_t offsets[];  // [E + 1]
  for (int e = threadIdx.x; e < p.E; e += blockDim.x) {
    int32_t count = 0;
    for (int64_t r = 0; r < p.n; ++r) count += ValidRoute(p, r) && p.experts[r] == e;
    offsets[e + 1] = count;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    offsets[0] = 0;
    for (int e = 0; e < p.E; ++e) offsets[e + 1] += offsets[e];
  }
  __syncthreads();
  for (int e = threadIdx.x; e <= p.E; e += blockDim.x) p.offsets[e] = offsets[e];
  for (int e = threadIdx.x; e < p.E; e += blockDim.x) {
    int32_t k = offsets[e];
    for (int64_t r = 0; r < p.n; ++r) {
      if (ValidRoute(p, r) && p.experts[r] == e) p.order[k++] = static_cast<int32_t>(r);
    }
  }
  // A bad route is flagged and its output row zeroed.
  for (int64_t r = threadIdx.x; r < p.n; r += blockDim.x) {
    if (ValidRoute(p, r)) continue;
    atomicOr(p.error, kExpertRouteOutOfRange);
    for (int64_t h = 0; h < p.H; ++h) p.y[r * p.H + h] = 0.0f;
  }
}

template <typename W, bool kVec>
__global__ void __launch_bounds__(kWarps * 32) GateUpKernel(GroupedMlpParams p) {
  const int e = blockIdx.y;
  const int32_t begin = p.offsets[e], end = p.offsets[e + 1];
  const int64_t i = blockIdx.x * int64_t{kWarps} + threadIdx.x / 32;
  if (begin == end || i >= p.I) return;
  const ExpertPtrs w = p.table[e];
  const W* gate = static_cast<const W*>(w.gate) + i * p.H;  // [H]
  const W* up = static_cast<const W*>(w.up) + i * p.H;      // [H]
  const float sg = w.gate_scale != nullptr ? w.gate_scale[i] : 1.0f;
  const float su = w.up_scale != nullptr ? w.up_scale[i] : 1.0f;
  for (int32_t c = begin; c < end; c += kRowsPerPass) {
    const int nr = min(kRowsPerPass, end - c);
    const float* xs[kRowsPerPass];
#pragma unroll
    for (int j = 0; j < kRowsPerPass; ++j) {
      xs[j] = p.x + int64_t{p.rows[p.order[c + (j < nr ? j : 0)]]} * p.H;
    }
    // Gate and up in one pass: each activation load serves both.
    const W* const rows[2] = {gate, up};
    float gu[2][kRowsPerPass];
    WarpDotsRows<W, 2, kRowsPerPass, kVec>(rows, p.H, xs, nr, gu);
    if (threadIdx.x % 32 != 0) continue;
#pragma unroll
    for (int j = 0; j < kRowsPerPass; ++j) {
      if (j < nr) p.act[int64_t{p.order[c + j]} * p.I + i] = Silu(gu[0][j] * sg) * (gu[1][j] * su);
    }
  }
}

template <typename W, bool kVec>
__global__ void __launch_bounds__(kWarps * 32) DownKernel(GroupedMlpParams p) {
  const int e = blockIdx.y;
  const int32_t begin = p.offsets[e], end = p.offsets[e + 1];
  // A warp per pair of rows h0, h0 + 1 of down (the second may not exist).
  const int64_t h0 = 2 * (blockIdx.x * int64_t{kWarps} + threadIdx.x / 32);
  if (begin == end || h0 >= p.H) return;
  const bool pair = h0 + 1 < p.H;
  const ExpertPtrs w = p.table[e];
  const W* down = static_cast<const W*>(w.down);  // [H, I]
  const W* const rows[2] = {down + h0 * p.I, down + (pair ? h0 + 1 : h0) * p.I};
  float sd[2];
  for (int m = 0; m < 2; ++m)
    sd[m] = w.down_scale != nullptr ? w.down_scale[h0 + (pair ? m : 0)] : 1.0f;
  for (int32_t c = begin; c < end; c += kRowsPerPass) {
    const int nr = min(kRowsPerPass, end - c);
    const float* as[kRowsPerPass];
#pragma unroll
    for (int j = 0; j < kRowsPerPass; ++j)
      as[j] = p.act + int64_t{p.order[c + (j < nr ? j : 0)]} * p.I;
    float acc[2][kRowsPerPass];
    WarpDotsRows<W, 2, kRowsPerPass, kVec>(rows, p.I, as, nr, acc);
    if (threadIdx.x % 32 != 0) continue;
#pragma unroll
    for (int j = 0; j < kRowsPerPass; ++j) {
      if (j >= nr) continue;
      float* y = p.y + int64_t{p.order[c + j]} * p.H + h0;  // [2] of row r
      y[0] = acc[0][j] * sd[0];
      if (pair) y[1] = acc[1][j] * sd[1];
    }
  }
}

template <typename W>
void LaunchTyped(const GroupedMlpParams& p, cudaStream_t stream) {
  const dim3 gate_grid(static_cast<unsigned>((p.I + kWarps - 1) / kWarps), p.E);
  const dim3 down_grid(static_cast<unsigned>((p.H + 2 * kWarps - 1) / (2 * kWarps)), p.E);
  if (p.vec_h) {
    GateUpKernel<W, true><<<gate_grid, kWarps * 32, 0, stream>>>(p);
  } else {
    GateUpKernel<W, false><<<gate_grid, kWarps * 32, 0, stream>>>(p);
  }
  CUDA_CHECK_LAUNCH();
  if (p.vec_i) {
    DownKernel<W, true><<<down_grid, kWarps * 32, 0, stream>>>(p);
  } else {
    DownKernel<W, false><<<down_grid, kWarps * 32, 0, stream>>>(p);
  }
  CUDA_CHECK_LAUNCH();
}

__global__ void DequantI8Kernel(DequantI8Params p) {
  const int64_t n = p.rows * p.cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    static_cast<__nv_bfloat16*>(p.dst)[i] =
        __float2bfloat16_rn(static_cast<float>(p.q[i]) * p.scale[i / p.cols]);
  }
}

}  // namespace

void LaunchGroupedExpertMlp(const GroupedMlpParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  SortRoutesKernel<<<1, 256, (p.E + 1) * sizeof(int32_t), stream>>>(p);
  CUDA_CHECK_LAUNCH();
  if (p.I == 0) return;  // no expert has weights: every route was flagged and zeroed
  switch (p.w_type) {
    case WeightType::kBF16:
      return LaunchTyped<__nv_bfloat16>(p, stream);
    case WeightType::kF16:
      return LaunchTyped<__half>(p, stream);
    case WeightType::kI8:
      return LaunchTyped<int8_t>(p, stream);
    default:
      return LaunchTyped<float>(p, stream);
  }
}

void LaunchDequantI8(const DequantI8Params& p, cudaStream_t stream) {
  if (p.rows * p.cols == 0) return;
  DequantI8Kernel<<<GridFor(p.rows * p.cols, 256), 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace jamba::kernels::cuda
