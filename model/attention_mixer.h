// AttentionMixer: Jamba's attention token mixer (HF JambaAttention): no
// positional encoding, no biases, grouped KV heads, causal, over each
// sequence's KV cache.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "model/mixer.h"
#include "model/weight_loader.h"

namespace jamba::model {

class AttentionMixer final : public Mixer {
 public:
  static absl::StatusOr<std::unique_ptr<AttentionMixer>> Load(const WeightLoader& loader,
                                                              int layer);

  absl::Status Forward(kernels::Backend* backend, const Tensor& x,
                       absl::Span<const SequenceRows> sequences, Tensor* out) const override;

 private:
  AttentionMixer() = default;

  int layer_ = 0;
  int n_heads_ = 0;
  int n_kv_heads_ = 0;
  int head_dim_ = 0;
  Tensor q_proj_;  // [n_heads*hd, H]
  Tensor k_proj_;  // [n_kv*hd, H]
  Tensor v_proj_;  // [n_kv*hd, H]
  Tensor o_proj_;  // [H, n_heads*hd]
};

}  // namespace jamba::model
