// JambaModel: the Jamba forward pass (HF JambaForCausalLM) over a batch of
// sequences, each continuing its own SequenceState.
//
//   h = embed(ids)
//   for each layer: h += Mixer(RMSNorm(h)); h += FFN(RMSNorm(h))
//   logits = lm_head(RMSNorm(h))
//
// MoE experts are computed by an ExpertRunner: all in-process by default,
// or remote (expert workers). With an asynchronous (remote) runner the
// batch runs as two micro-batches of whole sequences in ping-pong: one's
// expert round trip overlaps the other's mixers. Every op is row-wise or
// per sequence with a fixed order of arithmetic, so the split changes no
// bit of the output. Weights are immutable after Load; Forward is called
// by one thread at a time.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/expert_runner.h"
#include "model/gated_mlp.h"
#include "model/local_experts.h"
#include "model/mixer.h"
#include "model/sequence_state.h"

namespace jamba::model {

// The next tokens of one sequence.
struct SequenceChunk {
  SequenceState* state = nullptr;
  absl::Span<const int32_t> tokens;
};

enum class LogitsMode {
  kAll,   // one row per token of the batch
  kLast,  // one row per sequence: its last token's
};

struct ModelOptions {
  DType kv_cache_dtype = DType::kF32;  // or kBF16: half the KV bytes
  // When the model loads its own experts: as stored, or int8 per-row.
  ExpertWeights expert_weights = ExpertWeights::kAsStored;
  // With an asynchronous expert runner (remote experts), run a batch of
  // several sequences as two micro-batches whose expert calls overlap the
  // other's mixer. It pays when the experts compute on other cores or
  // machines; when they share the router's few cores there is nothing idle
  // to overlap with, and one batch per layer is faster (load_comparison.md).
  bool overlap_expert_calls = true;
};

// "f32" or "bf16" (the --kv_cache_dtype flag).
absl::StatusOr<DType> ParseKvCacheDType(absl::string_view name);
// "stored" or "int8" (the --expert_weights flag).
absl::StatusOr<ExpertWeights> ParseExpertWeights(absl::string_view name);

class JambaModel {
 public:
  // Loads every weight except the experts, which `experts` computes; when
  // `experts` is null the model loads all experts itself (LocalExperts).
  static absl::StatusOr<std::unique_ptr<JambaModel>> Load(const Checkpoint& checkpoint,
                                                          kernels::Backend* backend,
                                                          ExpertRunner* experts = nullptr,
                                                          const ModelOptions& options = {});
  ~JambaModel();

  const JambaConfig& config() const { return config_; }
  kernels::Backend* backend() const { return backend_; }
  const ModelOptions& options() const { return options_; }

  // A fresh, empty sequence.
  absl::StatusOr<SequenceState> NewSequence() const;

  // Runs the chunks and advances their states. Returns host f32 logits,
  // [Σ L_i, V] or [num chunks, V]. Bad input (empty chunk, token id outside
  // the vocabulary, context overflow, a state twice) is InvalidArgument or
  // OutOfRange and leaves every state untouched. A failure after validation
  // (a remote expert call, device memory) leaves the batch's states
  // undefined: discard those sequences.
  absl::StatusOr<Tensor> Forward(absl::Span<const SequenceChunk> batch, LogitsMode mode);

 private:
  struct DecoderLayer {
    Tensor input_norm;   // [H] input_layernorm.weight
    Tensor pre_ff_norm;  // [H] pre_ff_layernorm.weight
    std::unique_ptr<Mixer> mixer;
    std::optional<GatedMlp> dense;  // dense FFN layers
    Tensor router;                  // [E, H] feed_forward.router.weight (MoE layers)
  };

  // Consecutive sequences of the batch with their rows of the activations.
  struct MicroBatch {
    std::vector<SequenceRows> rows;           // relative to the slices below
    Tensor h, normed, delta;                  // slices of the batch's [T, H] matrices
    std::unique_ptr<PendingExperts> pending;  // an expert call writing delta
  };

  JambaModel() = default;
  absl::Status Validate(absl::Span<const SequenceChunk> batch) const;
  std::vector<MicroBatch> Split(const std::vector<SequenceRows>& rows, const Tensor& h,
                                const Tensor& normed, const Tensor& delta) const;
  // Every decoder layer over the micro-batches, updating their h.
  absl::Status RunLayers(std::vector<MicroBatch>& parts);
  // Gates x and submits its experts' call, which writes *out.
  absl::StatusOr<std::unique_ptr<PendingExperts>> SubmitMoe(int layer, const Tensor& router,
                                                            const Tensor& x, Tensor* out);

  JambaConfig config_;
  ModelOptions options_;
  kernels::Backend* backend_ = nullptr;
  std::unique_ptr<ExpertRunner> owned_experts_;
  ExpertRunner* experts_ = nullptr;
  Tensor embed_tokens_;  // [V, H]
  std::vector<DecoderLayer> layers_;
  Tensor final_norm_;  // [H]
  Tensor lm_head_;     // [V, H] (the embedding when tied)
};

}  // namespace jamba::model
