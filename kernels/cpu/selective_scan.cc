// CpuSelectiveScan: Mamba's selective scan with D skip and SiLU gate,
// continuing from ssm_state (f32). This is selective_scan_ref from
// state-spaces/mamba with delta_softplus=True. Channels are independent, so
// threads own disjoint channel ranges of the state.
#include <cmath>
#include <cstdint>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {
namespace {

void CheckParams(const SelectiveScanParams& p) {
  const char* op = "SelectiveScan";
  CheckHost(p.u, op, "u");
  CheckHost(p.delta, op, "delta");
  CheckHost(p.A, op, "A");
  CheckHost(p.B, op, "B");
  CheckHost(p.C, op, "C");
  CheckHost(p.D, op, "D");
  CheckHost(p.z, op, "z");
  CheckHost(p.ssm_state, op, "ssm_state");
  CheckHost(p.y, op, "y");
  const bool ranks = p.u.rank() == 2 && p.A.rank() == 2;
  const int64_t L = ranks ? p.u.dim(0) : -1;
  const int64_t Di = ranks ? p.u.dim(1) : -1;
  const int64_t N = ranks ? p.A.dim(1) : -1;
  const Shape l_di = {L, Di};
  const Shape l_n = {L, N};
  JAMBA_CHECK(ranks && p.A.dim(0) == Di && p.delta.shape() == l_di && p.z.shape() == l_di &&
              p.y.shape() == l_di && p.B.shape() == l_n && p.C.shape() == l_n &&
              p.D.shape() == Shape{Di} && p.ssm_state.shape() == p.A.shape())
      << op << ": u " << p.u.DebugString() << " delta " << p.delta.DebugString() << " A "
      << p.A.DebugString() << " B " << p.B.DebugString() << " C " << p.C.DebugString() << " D "
      << p.D.DebugString() << " z " << p.z.DebugString() << " ssm_state "
      << p.ssm_state.DebugString() << " y " << p.y.DebugString()
      << " (want u, delta, z, y [L,Di]; A, ssm_state [Di,N]; B, C [L,N]; "
      << "D [Di])";
  for (const Tensor* t : {&p.u, &p.delta, &p.A, &p.B, &p.C, &p.D, &p.z, &p.ssm_state, &p.y}) {
    JAMBA_CHECK(t->dtype() == DType::kF32)
        << op << ": every tensor must be f32, got " << t->DebugString();
  }
}

// Channels [d_begin, d_end) of the scan, over all L tokens.
void ScanChannels(const SelectiveScanParams& p, int64_t d_begin, int64_t d_end) {
  const int64_t L = p.u.dim(0);
  const int64_t Di = p.u.dim(1);
  const int64_t N = p.A.dim(1);
  const float* u = p.u.data<float>();          // [L, Di]
  const float* delta = p.delta.data<float>();  // [L, Di]
  const float* A = p.A.data<float>();          // [Di, N]
  const float* B = p.B.data<float>();          // [L, N]
  const float* C = p.C.data<float>();          // [L, N]
  const float* D = p.D.data<float>();          // [Di]
  const float* z = p.z.data<float>();          // [L, Di]
  float* state = p.ssm_state.data<float>();    // [Di, N]
  float* y = p.y.data<float>();                // [L, Di]

  for (int64_t t = 0; t < L; ++t) {
    const float* Bt = B + t * N;  // [N]
    const float* Ct = C + t * N;  // [N]
    for (int64_t d = d_begin; d < d_end; ++d) {
      // Read every input at (t, d) before y, which may alias them, is written.
      const float ut = u[t * Di + d];
      const float zt = z[t * Di + d];
      // dt_proj's bias is already in delta.
      // PyTorch: delta = F.softplus(delta)
      const float dt = Softplus(delta[t * Di + d]);
      float* h = state + d * N;     // [N]
      const float* Ad = A + d * N;  // [N]
      float yt = 0.0f;
      for (int64_t n = 0; n < N; ++n) {
        // h = exp(dt * A) * h + (dt * B) * u
        // PyTorch: x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
        h[n] = std::exp(dt * Ad[n]) * h[n] + (dt * Bt[n]) * ut;
        // PyTorch: y = torch.einsum('bdn,dn->bd', x, C[:, :, i])
        yt += h[n] * Ct[n];
      }
      // PyTorch: out = y + u * D;  out = out * F.silu(z)
      y[t * Di + d] = (yt + D[d] * ut) * Silu(zt);
    }
  }
}

}  // namespace

void CpuSelectiveScan(const SelectiveScanParams& p) {
  CheckParams(p);
  ThreadPool::Default().ParallelFor(
      p.u.dim(1), 16, [&](int64_t d_begin, int64_t d_end) { ScanChannels(p, d_begin, d_end); });
}

}  // namespace jamba::kernels
