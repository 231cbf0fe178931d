#include "model/sequence_state.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace jamba::model {

int64_t SequenceState::FixedBytes(const JambaConfig& c) {
  int64_t bytes = 0;
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    if (c.mixer_kind(i) != MixerKind::kMamba) continue;
    bytes += ((c.mamba_d_conv - 1) * c.d_inner() + c.d_inner() * c.mamba_d_state) * 4;
  }
  return bytes;
}

int64_t SequenceState::KvBytesPerToken(const JambaConfig& c, DType kv_dtype) {
  int64_t layers = 0;
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    if (c.mixer_kind(i) == MixerKind::kAttention) ++layers;
  }
  return layers * 2 * c.num_key_value_heads * c.head_dim() *
         static_cast<int64_t>(DTypeSize(kv_dtype));
}

absl::StatusOr<SequenceState> SequenceState::Create(const JambaConfig& config,
                                                    kernels::Backend* backend, DType kv_dtype) {
  if (kv_dtype != DType::kF32 && kv_dtype != DType::kBF16) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache dtype ", DTypeName(kv_dtype), " (want F32 or BF16)"));
  }
  SequenceState state;
  state.kv_dtype_ = kv_dtype;
  state.max_tokens_ = config.max_position_embeddings;
  state.n_kv_heads_ = config.num_key_value_heads;
  state.head_dim_ = config.head_dim();
  state.layers_.resize(config.num_hidden_layers);
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    if (config.mixer_kind(i) != MixerKind::kMamba) continue;
    MambaState& m = state.layers_[i].mamba;
    // conv_state [K-1, Di], ssm_state [Di, N], both zero.
    ASSIGN_OR_RETURN(m.conv,
                     backend->Allocate(DType::kF32, {config.mamba_d_conv - 1, config.d_inner()}));
    ASSIGN_OR_RETURN(m.ssm,
                     backend->Allocate(DType::kF32, {config.d_inner(), config.mamba_d_state}));
  }
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    if (config.mixer_kind(i) == MixerKind::kAttention) state.has_attention_ = true;
  }
  return state;
}

absl::Status SequenceState::ReserveKv(int64_t tokens, kernels::Backend* backend) {
  if (tokens > max_tokens_) {
    return absl::OutOfRangeError(
        absl::StrCat("sequence of ", tokens, " tokens exceeds the context limit of ", max_tokens_));
  }
  if (!has_attention_ || tokens <= kv_capacity_) return absl::OkStatus();
  const int64_t capacity = std::min(max_tokens_, std::max<int64_t>(tokens, 2 * kv_capacity_));
  for (LayerState& layer : layers_) {
    if (layer.mamba.conv.defined()) continue;
    KvCache grown;
    ASSIGN_OR_RETURN(grown.k, backend->Allocate(kv_dtype_, {capacity, n_kv_heads_, head_dim_}));
    ASSIGN_OR_RETURN(grown.v, backend->Allocate(kv_dtype_, {capacity, n_kv_heads_, head_dim_}));
    if (length_ > 0) {
      Tensor k_dst = grown.k.Slice(0, length_);
      Tensor v_dst = grown.v.Slice(0, length_);
      backend->Copy(layer.kv.k.Slice(0, length_), &k_dst);
      backend->Copy(layer.kv.v.Slice(0, length_), &v_dst);
    }
    layer.kv = std::move(grown);
  }
  kv_capacity_ = capacity;
  return absl::OkStatus();
}

}  // namespace jamba::model
