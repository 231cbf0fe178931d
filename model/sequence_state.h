// SequenceState: everything one sequence carries between forward calls:
// per Mamba layer the conv and SSM state, per attention layer the KV cache.
//
// The Mamba state has a fixed size; the KV cache grows with the sequence
// (doubling, bounded by the context limit). Owned by one caller at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "model/config.h"

namespace jamba::model {

struct MambaState {
  Tensor conv;  // [K-1, Di] f32: the last K-1 pre-conv inputs, oldest first
  Tensor ssm;   // [Di, N] f32
};

struct KvCache {
  Tensor k;  // [capacity, n_kv, hd] f32 or bf16; rows [0, length) are filled
  Tensor v;  // [capacity, n_kv, hd], k's dtype
};

struct LayerState {
  MambaState mamba;  // Mamba layers only
  KvCache kv;        // attention layers only
};

class SequenceState {
 public:
  // Bytes of conv + SSM state per sequence (fixed) and of KV cache per token.
  static int64_t FixedBytes(const JambaConfig& config);
  static int64_t KvBytesPerToken(const JambaConfig& config, DType kv_dtype = DType::kF32);

  // Zero state for `config` on `backend`'s device, its KV cache in
  // `kv_dtype` (F32, or BF16 to halve it).
  static absl::StatusOr<SequenceState> Create(const JambaConfig& config, kernels::Backend* backend,
                                              DType kv_dtype = DType::kF32);

  // Tokens consumed so far (the position of the next token).
  int64_t length() const { return length_; }
  LayerState& layer(int i) { return layers_[i]; }
  const LayerState& layer(int i) const { return layers_[i]; }

  // Makes every KV cache hold at least `tokens` rows, keeping its contents.
  // The first reservation is exact; later growth doubles.
  absl::Status ReserveKv(int64_t tokens, kernels::Backend* backend);
  // Records that `n` more tokens were consumed.
  void Advance(int64_t n) { length_ += n; }

 private:
  std::vector<LayerState> layers_;
  int64_t length_ = 0;
  int64_t kv_capacity_ = 0;
  int64_t max_tokens_ = 0;
  int64_t n_kv_heads_ = 0;
  int64_t head_dim_ = 0;
  DType kv_dtype_ = DType::kF32;
  bool has_attention_ = false;
};

}  // namespace jamba::model
