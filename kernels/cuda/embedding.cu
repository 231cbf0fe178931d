// Embedding: y[l,:] = f32(table[ids[l],:]), one thread per output element.
// An id outside [0, V) writes zeros and raises kEmbeddingIdOutOfRange.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {
namespace {

__global__ void EmbeddingKernel(EmbeddingParams p) {
  const int64_t n = p.tokens * p.hidden;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t l = i / p.hidden, h = i % p.hidden;
    const int32_t id = p.ids[l];
    if (id < 0 || id >= p.vocab) {
      p.y[i] = 0.0f;
      if (h == 0) atomicOr(p.error, kEmbeddingIdOutOfRange);
      continue;
    }
    p.y[i] = LoadWeight(p.table, p.table_type, id * p.hidden + h);
  }
}

}  // namespace

void LaunchEmbedding(const EmbeddingParams& p, cudaStream_t stream) {
  if (p.tokens * p.hidden == 0) return;
  EmbeddingKernel<<<GridFor(p.tokens * p.hidden, 256), 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace jamba::kernels::cuda
