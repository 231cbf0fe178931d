// MixerExecutor: the mixer half of the model on one node — embedding,
// Mamba and attention mixers, dense MLPs, norms, MoE gate, lm_head — plus
// the per-sequence state, keyed by sequence id. At each MoE layer it hands
// the routed rows to an ExpertRunner: in-process (all experts local, the
// embedded default) or remote (expert-worker shards over gRPC).
//
// Linked into the router; a later MixerService serves the same API to
// remote routers. Not thread-safe: one engine thread drives it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/jamba_model.h"
#include "rpc/expert_placement.h"
#include "rpc/remote_experts.h"

namespace jamba::mixer {

struct MixerOptions {
  std::string model_dir;
  kernels::BackendKind backend = kernels::BackendKind::kCpu;
  // Remote experts when set; all experts in-process otherwise.
  std::shared_ptr<const rpc::ExpertPlacement> placement;
  absl::Duration expert_timeout = absl::Seconds(30);
  // KV cache dtype, and the in-process experts' weights (f32/bf16 as
  // stored, or int8).
  model::ModelOptions model_options;
  // Credentials of the expert channels; plaintext when null.
  std::shared_ptr<grpc::ChannelCredentials> expert_credentials;
  // Optional observers (metrics): each remote expert call's round trip per
  // shard (and the worker's part of it), and the number of token rows
  // routed to each (layer, expert).
  std::function<void(const std::string& shard, absl::Duration round_trip, absl::Duration worker)>
      on_round_trip;
  std::function<void(int layer, int expert, int64_t rows)> on_routed;
};

// One sequence's next tokens in a batched step.
struct MixerStep {
  uint64_t sequence_id = 0;
  absl::Span<const int32_t> tokens;
};

class MixerExecutor {
 public:
  static absl::StatusOr<std::unique_ptr<MixerExecutor>> Create(const MixerOptions& options);
  ~MixerExecutor();

  const model::JambaConfig& config() const { return model_->config(); }
  const model::Checkpoint& checkpoint() const { return *checkpoint_; }
  // Null when experts run in-process.
  const rpc::ExpertPlacement* placement() const { return options_.placement.get(); }

  // OK when every expert shard answers and hosts what the placement says
  // (always OK in-process).
  absl::Status CheckExperts(absl::Duration timeout);
  // OK unless a step failed inside this process (backend, mixers) in a way
  // that no input or expert shard explains: then the first such failure,
  // and the process should exit. Thread-safe.
  absl::Status Health() const;

  // A new sequence with KV cache for `reserve_tokens` tokens allocated up
  // front (it still grows beyond that if fed more).
  absl::Status AddSequence(uint64_t id, int64_t reserve_tokens = 0);
  void ReleaseSequence(uint64_t id);
  size_t num_sequences() const { return sequences_.size(); }
  // Tokens consumed so far by a sequence (0 for an unknown id).
  int64_t SequenceLength(uint64_t id) const;

  // Runs one batched step; returns host logits [steps.size(), V], one row per
  // step (its last token). Expert calls end by `deadline`. Bad input leaves
  // all states untouched; on a runtime failure the states of the batch are
  // undefined (release them).
  absl::StatusOr<Tensor> Forward(absl::Span<const MixerStep> steps,
                                 absl::Time deadline = absl::InfiniteFuture());

 private:
  explicit MixerExecutor(MixerOptions options) : options_(std::move(options)) {}

  MixerOptions options_;
  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<model::Checkpoint> checkpoint_;
  std::unique_ptr<rpc::RemoteExperts> remote_;
  std::unique_ptr<model::ExpertRunner> local_;     // in-process experts
  std::unique_ptr<model::ExpertRunner> observed_;  // counts rows, notes failures
  std::unique_ptr<model::JambaModel> model_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<model::SequenceState>> sequences_;
  mutable absl::Mutex broken_mu_;
  absl::Status broken_ ABSL_GUARDED_BY(broken_mu_);
};

}  // namespace jamba::mixer
