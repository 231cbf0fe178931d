// The part of Backend::MambaStep between the conv and the scan, shared by
// the default and by backends that fuse only the per-sequence ops.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "kernels/params.h"

namespace jamba::kernels {

class Backend;

struct MambaStepProjections {
  Tensor B;      // [S, N] f32, RmsNorm'd when p.dt_norm is set
  Tensor C;      // [S, N] f32, likewise
  Tensor delta;  // [S, Di] f32, dt_proj(dt_low) + dt_bias (softplus is the scan's)
};

// Checks the ranks and the shapes that tie p's tensors together; returns S.
int64_t CheckMambaStep(const MambaStepParams& p);

// From the conv output u [S, Di]: [dt_low | B | C] = u · x_projᵀ, the three
// norms, then delta, with `b`'s own MatMul and RmsNorm.
absl::StatusOr<MambaStepProjections> ProjectMambaStep(Backend* b, const MambaStepParams& p,
                                                      const Tensor& u);

}  // namespace jamba::kernels
