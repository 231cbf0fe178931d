// GatherRows and ScatterAddRows: moving token rows to and from expert
// batches. ScatterAddRows is deterministic without atomics: a first kernel
// links each index i to the next index with the same destination row (a
// segment per row), a second walks each segment in index order per column,
// so duplicates accumulate exactly as the CPU reference does.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int32_t kEnd = -1;  // link of the last index of a segment

__global__ void GatherKernel(GatherRowsParams p) {
  const int64_t n = p.n * p.D;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < n;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx / p.D, c = idx % p.D;
    const int32_t r = p.rows[i];
    const bool ok = r >= 0 && r < p.R;
    if (!ok && c == 0) atomicOr(p.error, kGatherRowOutOfRange);
    const int64_t src = ok ? r * p.D + c : -1;
    if (p.element_size == 2) {
      const uint16_t* x = static_cast<const uint16_t*>(p.x);
      static_cast<uint16_t*>(p.y)[idx] = ok ? x[src] : 0;
    } else {
      const float* x = static_cast<const float*>(p.x);
      static_cast<float*>(p.y)[idx] = ok ? x[src] : 0.0f;
    }
  }
}

// link[i] = the next j > i with rows[j] == rows[i] (kEnd if none), and
// link[n + i] = 1 when i is the first index of its row (0 otherwise, and for
// rows out of range, which are skipped). rows are compared tile by tile
// through shared memory.
__global__ void LinkKernel(ScatterAddRowsParams p) {
  __shared__ int32_t tile[kThreads];
  const int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x;
  const int32_t r = i < p.n ? p.rows[i] : -1;
  bool head = true;
  int64_t next = kEnd;
  for (int64_t t0 = 0; t0 < p.n; t0 += kThreads) {
    __syncthreads();
    if (t0 + threadIdx.x < p.n) tile[threadIdx.x] = p.rows[t0 + threadIdx.x];
    __syncthreads();
    const int64_t count = p.n - t0 < kThreads ? p.n - t0 : kThreads;
    for (int64_t j = 0; j < count; ++j) {
      if (tile[j] != r) continue;
      const int64_t jj = t0 + j;
      if (jj < i) head = false;
      if (jj > i && next == kEnd) next = jj;
    }
  }
  if (i >= p.n) return;
  const bool ok = r >= 0 && r < p.R;
  if (!ok) atomicOr(p.error, kScatterRowOutOfRange);
  p.link[i] = static_cast<int32_t>(next);
  p.link[p.n + i] = ok && head ? 1 : 0;
}

// Block (index i, column chunk), for segment heads i only:
// y[rows[i], c] += scale[j] * x[j, c] for j = i, link[i], ... in order.
__global__ void SegmentAddKernel(ScatterAddRowsParams p) {
  const int64_t i = blockIdx.x;
  if (p.link[p.n + i] == 0) return;
  const int64_t c = blockIdx.y * int64_t{kThreads} + threadIdx.x;
  if (c >= p.D) return;
  float* y = p.y + p.rows[i] * p.D + c;
  float acc = *y;
  // PyTorch: final_hidden_states.index_add_(0, top_x, current_hidden_states)
  // Explicit roundings (no FMA contraction) give the CPU reference's bits.
  for (int64_t j = i; j != kEnd; j = p.link[j]) {
    acc = __fadd_rn(acc, __fmul_rn(p.scale[j], p.x[j * p.D + c]));
  }
  *y = acc;
}

}  // namespace

void LaunchGatherRows(const GatherRowsParams& p, cudaStream_t stream) {
  if (p.n * p.D == 0) return;
  GatherKernel<<<GridFor(p.n * p.D, kThreads), kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void LaunchScatterAddRows(const ScatterAddRowsParams& p, cudaStream_t stream) {
  if (p.n == 0 || p.D == 0) return;
  LinkKernel<<<static_cast<unsigned>((p.n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
  const dim3 grid(static_cast<unsigned>(p.n),
                  static_cast<unsigned>((p.D + kThreads - 1) / kThreads));
  SegmentAddKernel<<<grid, kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace jamba::kernels::cuda
