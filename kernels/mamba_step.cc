// Backend::MambaStep's default: the decode step of the Mamba mixer composed
// from the backend's own CausalConv1d, MatMul, RmsNorm and SelectiveScan,
// one sequence at a time where the op needs its state.
#include "kernels/mamba_step.h"

#include <utility>

#include "core/check.h"
#include "core/status_macros.h"
#include "kernels/backend.h"

namespace jamba::kernels {

absl::StatusOr<MambaStepProjections> ProjectMambaStep(Backend* b, const MambaStepParams& p,
                                                      const Tensor& u) {
  const int64_t S = u.dim(0), Di = u.dim(1), R = p.dt_proj.dim(1), N = p.A.dim(1);
  auto alloc = [b](Shape shape) { return b->Allocate(DType::kF32, std::move(shape)); };
  // [dt_low | B | C] = u · x_projᵀ: [S, R], [S, N], [S, N], then their norms
  ASSIGN_OR_RETURN(Tensor dt_low, alloc({S, R}));
  ASSIGN_OR_RETURN(Tensor B, alloc({S, N}));
  ASSIGN_OR_RETURN(Tensor C, alloc({S, N}));
  b->MatMul(u, p.x_proj.Slice(0, R), nullptr, &dt_low);
  b->MatMul(u, p.x_proj.Slice(R, R + N), nullptr, &B);
  b->MatMul(u, p.x_proj.Slice(R + N, R + 2 * N), nullptr, &C);
  if (p.dt_norm.defined()) {
    ASSIGN_OR_RETURN(Tensor dt_n, alloc({S, R}));
    ASSIGN_OR_RETURN(Tensor B_n, alloc({S, N}));
    ASSIGN_OR_RETURN(Tensor C_n, alloc({S, N}));
    b->RmsNorm(dt_low, p.dt_norm, p.norm_eps, &dt_n);
    b->RmsNorm(B, p.B_norm, p.norm_eps, &B_n);
    b->RmsNorm(C, p.C_norm, p.norm_eps, &C_n);
    dt_low = std::move(dt_n);
    B = std::move(B_n);
    C = std::move(C_n);
  }

  // delta = dt_proj(dt_low) with its bias (softplus inside the scan): [S, Di]
  ASSIGN_OR_RETURN(Tensor delta, alloc({S, Di}));
  b->MatMul(dt_low, p.dt_proj, &p.dt_bias, &delta);

  return MambaStepProjections{std::move(B), std::move(C), std::move(delta)};
}

int64_t CheckMambaStep(const MambaStepParams& p) {
  JAMBA_CHECK(p.x.rank() == 2 && p.dt_proj.rank() == 2 && p.A.rank() == 2 && p.x_proj.rank() == 2)
      << "MambaStep: x " << p.x.DebugString() << " dt_proj " << p.dt_proj.DebugString() << " A "
      << p.A.DebugString() << " x_proj " << p.x_proj.DebugString();
  const int64_t S = p.x.dim(0), R = p.dt_proj.dim(1), N = p.A.dim(1);
  JAMBA_CHECK(p.x_proj.dim(0) == R + 2 * N && static_cast<int64_t>(p.conv_states.size()) == S &&
              static_cast<int64_t>(p.ssm_states.size()) == S)
      << "MambaStep: x_proj " << p.x_proj.DebugString() << " for R " << R << ", N " << N << "; "
      << p.conv_states.size() << " conv and " << p.ssm_states.size() << " ssm states for S " << S;
  return S;
}

absl::Status Backend::MambaStep(const MambaStepParams& p) {
  const int64_t S = CheckMambaStep(p), Di = p.x.dim(1);
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

  ASSIGN_OR_RETURN(MambaStepProjections proj, ProjectMambaStep(this, p, u));

  for (int64_t s = 0; s < S; ++s) {
    SelectiveScanParams scan;
    scan.u = u.Slice(s, s + 1);
    scan.delta = proj.delta.Slice(s, s + 1);
    scan.A = p.A;
    scan.B = proj.B.Slice(s, s + 1);
    scan.C = proj.C.Slice(s, s + 1);
    scan.D = p.D;
    scan.z = p.z.Slice(s, s + 1);
    scan.ssm_state = p.ssm_states[s];
    scan.y = p.y.Slice(s, s + 1);
    SelectiveScan(scan);
  }
  return absl::OkStatus();
}

}  // namespace jamba::kernels
