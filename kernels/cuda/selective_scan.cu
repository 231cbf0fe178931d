// SelectiveScan: Mamba's scan with D skip and SiLU gate, state in f32.
// A group of G = next_pow2(N) lanes owns one channel d, lane n holding
// h[d, n] in a register; the group walks t = 0..L-1 in order and reduces
// h . C_t with shuffles. Parallel over Di x N; L = 1 is the decode step.
//   h = exp(softplus(delta) * A) * h + softplus(delta) * B_t * u_t
//   y_t = (h . C_t + D * u_t) * silu(z_t)
// Each (t, d) input is read before y[t, d] is written, so y may alias them.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {
namespace {

constexpr int kThreads = 128;

template <int G>
__global__ void ScanKernel(ScanParams p) {
  // Lanes past the last channel keep running (on channel 0, writing
  // nothing) so that every shuffle sees its full warp.
  const int64_t group = (blockIdx.x * int64_t{kThreads} + threadIdx.x) / G;
  const bool valid = group < p.Di;
  const int64_t d = valid ? group : 0;
  const int n = threadIdx.x % G;
  const bool active = valid && n < p.N;
  const float a = active ? p.A[d * p.N + n] : 0.0f;
  float h = active ? p.state[d * p.N + n] : 0.0f;
  for (int64_t t = 0; t < p.L; ++t) {
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
    if (valid && n == 0) p.y[i] = (hc + p.D[d] * u) * Silu(z);
  }
  if (active) p.state[d * p.N + n] = h;
}

template <int G>
void Launch(const ScanParams& p, cudaStream_t stream) {
  const int64_t threads = p.Di * G;
  const unsigned blocks = static_cast<unsigned>((threads + kThreads - 1) / kThreads);
  ScanKernel<G><<<blocks, kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void LaunchSelectiveScan(const ScanParams& p, cudaStream_t stream) {
  if (p.L == 0 || p.Di == 0) return;
  if (p.N <= 4) return Launch<4>(p, stream);
  if (p.N <= 8) return Launch<8>(p, stream);
  if (p.N <= 16) return Launch<16>(p, stream);
  Launch<32>(p, stream);
}

}  // namespace jamba::kernels::cuda
