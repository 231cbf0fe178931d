// MoeGate: Jamba's routing, one thread per token. Softmax over the E router
// logits in f32, then k passes that each take the largest remaining
// probability (strict > keeps the lower id on ties). Not renormalised.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {
namespace {

constexpr int kMaxE = 256;

__global__ void MoeGateKernel(MoeGateParams p) {
  const int64_t l = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (l >= p.L) return;
  const float* r = p.logits + l * p.E;  // [E]
  // PyTorch: F.softmax(router_logits, dim=1, dtype=torch.float)
  float r_max = r[0];
  for (int j = 1; j < p.E; ++j) r_max = fmaxf(r_max, r[j]);
  float sum = 0.0f;
  for (int j = 0; j < p.E; ++j) sum += expf(r[j] - r_max);
  // PyTorch: torch.topk(routing_weights, top_k, dim=-1)
  unsigned taken[kMaxE / 32] = {};
  for (int s = 0; s < p.k; ++s) {
    int best = -1;
    float best_p = 0.0f;
    for (int j = 0; j < p.E; ++j) {
      if (taken[j / 32] & (1u << (j % 32))) continue;
      const float pj = expf(r[j] - r_max) / sum;
      if (best < 0 || pj > best_p) {
        best = j;
        best_p = pj;
      }
    }
    taken[best / 32] |= 1u << (best % 32);
    p.experts[l * p.k + s] = best;
    p.weights[l * p.k + s] = best_p;
  }
}

}  // namespace

void LaunchMoeGate(const MoeGateParams& p, cudaStream_t stream) {
  if (p.L == 0) return;
  MoeGateKernel<<<GridFor(p.L, 128), 128, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace jamba::kernels::cuda
