// Backend::MambaStep's default: the decode step of the Mamba mixer composed
// from the backend's own CausalConv1d, MatMul, RmsNorm and SelectiveScan,
// one sequence at a time where the op needs its state.
#include <utility>

#include "core/check.h"
#include "core/status_macros.h"
#include "kernels/backend.h"

namespace jamba::kernels {

absl::Status Backend::MambaStep(const MambaStepParams& p) {
  JAMBA_CHECK(p.x.rank() == 2 && p.dt_proj.rank() == 2 && p.A.rank() == 2 && p.x_proj.rank() == 2)
      << "MambaStep: x " << p.x.DebugString() << " dt_proj " << p.dt_proj.DebugString() << " A "
      << p.A.DebugString() << " x_proj " << p.x_proj.DebugString();
  const int64_t S = p.x.dim(0), Di = p.x.dim(1), R = p.dt_proj.dim(1), N = p.A.dim(1);
  JAMBA_CHECK(p.x_proj.dim(0) == R + 2 * N && static_cast<int64_t>(p.conv_states.size()) == S &&
              static_cast<int64_t>(p.ssm_states.size()) == S)
      << "MambaStep: x_proj " << p.x_proj.DebugString() << " for R " << R << ", N " << N << "; "
      << p.conv_states.size() << " conv and " << p.ssm_states.size() << " ssm states for S " << S;
  auto alloc = [this](Shape shape) { return Allocate(DType::kF32, std::move(shape)); };

  // u = act(conv1d(x)), per sequence: [S, Di]
  ASSIGN_OR_RETURN(Tensor u, alloc({S, Di}));
  for (int64_t s = 0; s < S; ++s) {
    CausalConv1dParams conv;
    conv.x = p.x.Slice(s, s + 1);
    conv.weight = p.conv_weight;
    conv.bias = p.conv_bias;
    conv.conv_state = p.conv_states[s];
    conv.y = u.Slice(s, s + 1);
    CausalConv1d(conv);
  }

  // [dt_low | B | C] = u · x_projᵀ: [S, R], [S, N], [S, N], then their norms
  ASSIGN_OR_RETURN(Tensor dt_low, alloc({S, R}));
  ASSIGN_OR_RETURN(Tensor B, alloc({S, N}));
  ASSIGN_OR_RETURN(Tensor C, alloc({S, N}));
  MatMul(u, p.x_proj.Slice(0, R), nullptr, &dt_low);
  MatMul(u, p.x_proj.Slice(R, R + N), nullptr, &B);
  MatMul(u, p.x_proj.Slice(R + N, R + 2 * N), nullptr, &C);
  if (p.dt_norm.defined()) {
    ASSIGN_OR_RETURN(Tensor dt_n, alloc({S, R}));
    ASSIGN_OR_RETURN(Tensor B_n, alloc({S, N}));
    ASSIGN_OR_RETURN(Tensor C_n, alloc({S, N}));
    RmsNorm(dt_low, p.dt_norm, p.norm_eps, &dt_n);
    RmsNorm(B, p.B_norm, p.norm_eps, &B_n);
    RmsNorm(C, p.C_norm, p.norm_eps, &C_n);
    dt_low = std::move(dt_n);
    B = std::move(B_n);
    C = std::move(C_n);
  }

  // delta = dt_proj(dt_low) with its bias (softplus inside the scan): [S, Di]
  ASSIGN_OR_RETURN(Tensor delta, alloc({S, Di}));
  MatMul(dt_low, p.dt_proj, &p.dt_bias, &delta);

  for (int64_t s = 0; s < S; ++s) {
    SelectiveScanParams scan;
    scan.u = u.Slice(s, s + 1);
    scan.delta = delta.Slice(s, s + 1);
    scan.A = p.A;
    scan.B = B.Slice(s, s + 1);
    scan.C = C.Slice(s, s + 1);
    scan.D = p.D;
    scan.z = p.z.Slice(s, s + 1);
    scan.ssm_state = p.ssm_states[s];
    scan.y = p.y.Slice(s, s + 1);
    SelectiveScan(scan);
  }
  return absl::OkStatus();
}

}  // namespace jamba::kernels
