// MambaMixer: Jamba's Mamba token mixer (HF JambaMambaMixer.slow_forward),
// with the dt/B/C RMSNorms applied before dt_proj. Continues each
// sequence's conv and SSM state, so chunked prefill equals one-shot prefill.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "model/mixer.h"
#include "model/weight_loader.h"

namespace jamba::model {

class MambaMixer final : public Mixer {
 public:
  static absl::StatusOr<std::unique_ptr<MambaMixer>> Load(const WeightLoader& loader, int layer);

  absl::Status Forward(kernels::Backend* backend, const Tensor& x,
                       absl::Span<const SequenceRows> sequences, Tensor* out) const override;

 private:
  MambaMixer() = default;

  // Steps 2-6 of Forward for one token per sequence, as one MambaStep.
  absl::Status DecodeStep(kernels::Backend* backend, const Tensor& u_raw, const Tensor& z,
                          absl::Span<const SequenceRows> sequences, Tensor* y) const;

  int layer_ = 0;
  int64_t d_inner_ = 0;
  int64_t dt_rank_ = 0;
  int64_t d_state_ = 0;
  float eps_ = 0;
  Tensor in_proj_x_;  // [Di, H]   rows 0..Di-1 of in_proj.weight
  Tensor in_proj_z_;  // [Di, H]   rows Di..2Di-1
  Tensor in_bias_x_;  // [Di] or undefined (mamba_proj_bias)
  Tensor in_bias_z_;  // [Di] or undefined
  Tensor conv_w_;     // [Di, K]   conv1d.weight[:, 0, :]
  Tensor conv_b_;     // [Di] or undefined (mamba_conv_bias)
  Tensor x_proj_;     // [R+2N, Di] x_proj.weight
  Tensor x_proj_dt_;  // [R, Di]   rows 0..R-1 of x_proj.weight
  Tensor x_proj_B_;   // [N, Di]
  Tensor x_proj_C_;   // [N, Di]
  Tensor dt_norm_;    // [R] or undefined (no inner layernorms)
  Tensor B_norm_;     // [N]
  Tensor C_norm_;     // [N]
  Tensor dt_proj_;    // [Di, R]
  Tensor dt_bias_;    // [Di]
  Tensor A_;          // [Di, N] = -exp(A_log)
  Tensor D_;          // [Di]
  Tensor out_proj_;   // [H, Di]
  Tensor out_bias_;   // [H] or undefined
};

}  // namespace jamba::model
