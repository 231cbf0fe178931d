// JambaConfig: every field of Hugging Face's JambaConfig that affects
// inference, parsed from a checkpoint's config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jamba::model {

enum class MixerKind { kMamba, kAttention };
enum class FfnKind { kDense, kMoe };

struct JambaConfig {
  int64_t vocab_size = 65536;
  int64_t hidden_size = 4096;         // H
  int64_t intermediate_size = 14336;  // I (dense MLP and each expert)
  int num_hidden_layers = 32;
  int num_attention_heads = 32;
  int num_key_value_heads = 8;  // null in JSON means = num_attention_heads
  int num_experts = 16;         // E
  int num_experts_per_tok = 2;  // k
  int expert_layer_period = 2;
  int expert_layer_offset = 1;
  int attn_layer_period = 8;
  int attn_layer_offset = 4;
  int64_t mamba_d_state = 16;  // N
  int64_t mamba_d_conv = 4;    // K
  int64_t mamba_expand = 2;
  int64_t mamba_dt_rank = 256;  // R; "auto" resolves to ceil(H / 16)
  bool mamba_conv_bias = true;
  bool mamba_proj_bias = false;
  bool mamba_inner_layernorms = true;  // legacy key; dt/B/C RMSNorms present
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 262144;  // legacy key: n_ctx
  int pad_token_id = 0;
  int bos_token_id = 1;
  std::vector<int> eos_token_ids = {2};  // eos_token_id: an int or a list
  std::string torch_dtype = "float32";   // informational

  int64_t d_inner() const { return mamba_expand * hidden_size; }
  int64_t head_dim() const { return hidden_size / num_attention_heads; }

  // HF layers_block_type / layers_num_experts.
  MixerKind mixer_kind(int layer) const {
    return layer % attn_layer_period == attn_layer_offset ? MixerKind::kAttention
                                                          : MixerKind::kMamba;
  }
  FfnKind ffn_kind(int layer) const {
    return num_experts > 1 && layer % expert_layer_period == expert_layer_offset ? FfnKind::kMoe
                                                                                 : FfnKind::kDense;
  }
  bool is_eos(int token) const;
};

// Parses and validates config.json text; errors name the field and `source`.
absl::StatusOr<JambaConfig> ParseJambaConfig(absl::string_view json_text, absl::string_view source);
// Reads <dir>/config.json.
absl::StatusOr<JambaConfig> LoadJambaConfig(const std::string& dir);

}  // namespace jamba::model
