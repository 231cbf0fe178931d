// Mixer: what the router's engine drives — the mixer half of the model and
// the per-sequence state, keyed by sequence id. Two implementations:
// InProcessMixer (a MixerExecutor in the router: the embedded default) and
// RemoteMixers (data-parallel jamba-mixer-worker replicas over gRPC, each
// sequence pinned to the replica holding its state). Not thread-safe except
// CheckReady, which a health monitor may call while the engine runs.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "mixer_worker/mixer_executor.h"
#include "model/config.h"
#include "rpc/expert_placement.h"

namespace jamba::mixer {

class Mixer {
 public:
  virtual ~Mixer() = default;

  virtual const model::JambaConfig& config() const = 0;
  // The checkpoint directory (for model info).
  virtual const std::string& model_dir() const = 0;
  // The expert placement the router itself uses; null when it calls no
  // experts (in-process experts, or mixer workers that call them).
  virtual const rpc::ExpertPlacement* placement() const = 0;

  // OK when generation can proceed: in-process, every expert shard answers;
  // with mixer workers, at least one replica is serving.
  virtual absl::Status CheckReady(absl::Duration timeout) = 0;
  // OK unless this process's own mixer broke (MixerExecutor::Health); then
  // the process should exit. Always OK with mixer workers: a broken worker
  // fails its own sequences and stops serving.
  virtual absl::Status Health() const = 0;

  // A new sequence with KV cache for `reserve_tokens` tokens reserved.
  virtual absl::Status AddSequence(uint64_t id, int64_t reserve_tokens) = 0;
  virtual void ReleaseSequence(uint64_t id) = 0;

  // Runs one batched step; returns host logits [steps.size(), V], one row per
  // step (its last token). Expert calls end by `deadline`. A non-OK result
  // fails the whole step. Otherwise `step_status` (steps.size() entries) says
  // per step whether its row is valid: a step whose sequence lives on a
  // failed mixer replica gets UNAVAILABLE there and its state is gone
  // (release it); the other rows are unaffected.
  virtual absl::StatusOr<Tensor> Forward(absl::Span<const MixerStep> steps, absl::Time deadline,
                                         absl::Span<absl::Status> step_status) = 0;
};

}  // namespace jamba::mixer
