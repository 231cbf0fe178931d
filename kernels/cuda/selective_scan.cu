// SelectiveScan: Mamba's scan with D skip and SiLU gate, state in f32.
// A group of G = next_pow2(N) lanes owns one channel d, lane n holding
// h[d, n] in a register; the group walks its time steps in order and
// reduces h . C_t with shuffles. L = 1 is the decode step.
//   h = exp(softplus(delta) * A) * h + softplus(delta) * B_t * u_t
//   y_t = (h . C_t + D * u_t) * silu(z_t)
//
// Short calls run one sequential pass, parallel over Di x N. Long calls
// (prefill) are cut into chunks of T steps and run in three passes, which
// adds chunk parallelism while keeping the recurrence exact:
//   1. per chunk c from h = 0: the local state hl_c and the decay
//      P_c = prod_t exp(dt_t * A), so that h_end = P_c * h_begin + hl_c;
//   2. in chunk order: h_begin(c + 1) = P_c * h_begin(c) + hl_c;
//   3. per chunk from h_begin(c): the outputs, and the final state.
// Each (t, d) input is read before y[t, d] is written, so y may alias them.
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int64_t kMinChunk = 64;   // steps per chunk, at least
constexpr int64_t kMaxChunks = 32;  // bounds the workspace at 2 x 32 x Di x N floats

// Steps per chunk for an L-step call; L itself when it is not chunked.
int64_t ChunkLength(int64_t L) {
  if (L < 2 * kMinChunk) return L;
  return std::max(kMinChunk, (L + kMaxChunks - 1) / kMaxChunks);
}

// Where a lane works: channel d, state index n. Lanes past the last
// channel keep running (on channel 0, writing nothing) so that every
// shuffle sees its full warp.
template <int G>
struct Lane {
  int64_t d;
  int n;
  bool valid;   // the group has a channel
  bool active;  // ... and the lane a state index
  __device__ Lane(int64_t Di, int N) {
    const int64_t group = (blockIdx.x * int64_t{kThreads} + threadIdx.x) / G;
    valid = group < Di;
    d = valid ? group : 0;
    n = threadIdx.x % G;
    active = valid && n < N;
  }
};

// Pass 1: chunk blockIdx.y's local state and decay, from h = 0.
template <int G>
__global__ void ChunkStateKernel(ScanParams p, int64_t chunk, float* hl, float* decay) {
  const Lane<G> lane(p.Di, p.N);
  if (!lane.active) return;
  const int64_t d = lane.d;
  const int n = lane.n;
  const float a = p.A[d * p.N + n];
  float h = 0.0f, prod = 1.0f;
  const int64_t begin = blockIdx.y * chunk, end = min(p.L, begin + chunk);
  for (int64_t t = begin; t < end; ++t) {
    const int64_t i = t * p.Di + d;
    // PyTorch: deltaA = torch.exp(delta.unsqueeze(-1) * A)
    const float dt = Softplus(p.delta[i]);
    const float da = expf(dt * a);
    h = da * h + (dt * p.B[t * p.N + n]) * p.u[i];
    prod *= da;
  }
  const int64_t w = (blockIdx.y * p.Di + d) * p.N + n;
  hl[w] = h;
  decay[w] = prod;
}

// Pass 2: each chunk's initial state, over hl in place; one thread per (d, n).
__global__ void CarryKernel(ScanParams p, int64_t num_chunks, float* hl, const float* decay) {
  const int64_t dn = blockIdx.x * int64_t{kThreads} + threadIdx.x;
  if (dn >= p.Di * p.N) return;
  float h = p.state[dn];
  for (int64_t c = 0; c < num_chunks; ++c) {
    const int64_t w = c * p.Di * p.N + dn;
    const float local = hl[w];
    hl[w] = h;
    h = decay[w] * h + local;
  }
}

// The recurrence and the outputs of chunk blockIdx.y, from `h_begin`
// (or p.state when null); the last chunk writes the final state.
template <int G>
__global__ void ScanKernel(ScanParams p, int64_t chunk, const float* h_begin) {
  const Lane<G> lane(p.Di, p.N);
  const int64_t d = lane.d;
  const int n = lane.n;
  const bool active = lane.active;
  const int64_t s = d * p.N + n;
  const float a = active ? p.A[s] : 0.0f;
  float h = 0.0f;
  if (active) h = h_begin == nullptr ? p.state[s] : h_begin[blockIdx.y * p.Di * p.N + s];
  const int64_t begin = blockIdx.y * chunk, end = min(p.L, begin + chunk);
  for (int64_t t = begin; t < end; ++t) {
    const int64_t i = t * p.Di + d;
    const float u = p.u[i], z = p.z[i];
    // PyTorch: delta = F.softplus(delta)
    const float dt = Softplus(p.delta[i]);
    float hc = 0.0f;
    if (active) {
      // PyTorch: x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
      h = expf(dt * a) * h + (dt * p.B[t * p.N + n]) * u;
      hc = h * p.C[t * p.N + n];
    }
    // PyTorch: y = torch.einsum('bdn,dn->bd', x, C[:, :, i])
    for (int o = G / 2; o > 0; o >>= 1) hc += __shfl_xor_sync(0xffffffffu, hc, o, G);
    // PyTorch: out = y + u * D;  out = out * F.silu(z)
    if (lane.valid && n == 0) p.y[i] = (hc + p.D[d] * u) * Silu(z);
  }
  if (active && blockIdx.y + 1 == gridDim.y) p.state[s] = h;
}

template <int G>
void Launch(const ScanParams& p, cudaStream_t stream) {
  const int64_t threads = p.Di * G;
  const unsigned blocks = static_cast<unsigned>((threads + kThreads - 1) / kThreads);
  const int64_t chunk = ChunkLength(p.L);
  const int64_t num_chunks = (p.L + chunk - 1) / chunk;
  if (num_chunks == 1) {
    ScanKernel<G><<<blocks, kThreads, 0, stream>>>(p, p.L, nullptr);
    CUDA_CHECK_LAUNCH();
    return;
  }
  float* hl = p.workspace;
  float* decay = p.workspace + num_chunks * p.Di * p.N;
  const dim3 grid(blocks, static_cast<unsigned>(num_chunks));
  ChunkStateKernel<G><<<grid, kThreads, 0, stream>>>(p, chunk, hl, decay);
  CUDA_CHECK_LAUNCH();
  const unsigned carry_blocks = static_cast<unsigned>((p.Di * p.N + kThreads - 1) / kThreads);
  CarryKernel<<<carry_blocks, kThreads, 0, stream>>>(p, num_chunks, hl, decay);
  CUDA_CHECK_LAUNCH();
  ScanKernel<G><<<grid, kThreads, 0, stream>>>(p, chunk, hl);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

int64_t SelectiveScanWorkspaceFloats(int64_t L, int64_t Di, int N) {
  const int64_t chunk = ChunkLength(L);
  const int64_t num_chunks = chunk == 0 ? 0 : (L + chunk - 1) / chunk;
  return num_chunks > 1 ? 2 * num_chunks * Di * N : 0;
}

void LaunchSelectiveScan(const ScanParams& p, cudaStream_t stream) {
  if (p.L == 0 || p.Di == 0) return;
  if (p.N <= 4) return Launch<4>(p, stream);
  if (p.N <= 8) return Launch<8>(p, stream);
  if (p.N <= 16) return Launch<16>(p, stream);
  Launch<32>(p, stream);
}

}  // namespace jamba::kernels::cuda
