// RemoteMixers: the Mixer over data-parallel jamba-mixer-worker replicas.
//
// Each replica is one mixer worker; the router keeps one Session stream to
// it (rpc MixerService.Session). A new sequence is opened on the serving
// replica with the fewest open sequences (ties in turn) and stays pinned to
// it: its conv/SSM/KV state lives there. A step sends each replica one
// StepBatch with the chunks of its sequences, all replicas at once, and
// gathers their logits rows. When a replica's stream fails, the sequences
// pinned to it fail with UNAVAILABLE (their state is lost) and the other
// replicas' rows are unaffected; the next sequence opened there starts a
// new session.
//
// Targets: "host:port" is one replica; "dns:///name:port" is every address
// the name resolves to (re-resolved by CheckReady, at most every
// resolve_interval), so that replicas behind a Kubernetes headless Service
// join without a restart. An address that leaves the name takes no new
// sequences; its pinned ones go on while it answers.
//
// With TLS credentials, a replica found through "dns:///name:port" is
// dialled at its address but must present a certificate for `name` (pod
// addresses come and go; the name stays).
//
// Not thread-safe, except CheckReady (a health monitor's thread).
#pragma once

#include <grpcpp/security/credentials.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "mixer_worker/mixer.h"

namespace jamba::mixer {

struct RemoteMixersOptions {
  // The longest one request to a replica may take; then the replica's
  // session is cancelled and its sequences fail. (A step's request deadline
  // travels with it; the worker's expert calls end by it.)
  absl::Duration call_timeout = absl::Seconds(120);
  absl::Duration resolve_interval = absl::Seconds(10);
  // Credentials of the channels to the replicas; plaintext when null.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Called on the engine thread with the rows each step routed to each
  // (layer, expert), as the replicas report them (for metrics).
  std::function<void(int layer, int expert, int64_t rows)> on_routed;
};

class RemoteMixers final : public Mixer {
 public:
  // `config` is the checkpoint's (the replicas must have the same shape).
  // Nothing is contacted here.
  static absl::StatusOr<std::unique_ptr<RemoteMixers>> Create(std::string model_dir,
                                                              model::JambaConfig config,
                                                              std::vector<std::string> targets,
                                                              RemoteMixersOptions options = {});
  ~RemoteMixers() override;

  const model::JambaConfig& config() const override { return config_; }
  const std::string& model_dir() const override { return model_dir_; }
  const rpc::ExpertPlacement* placement() const override { return nullptr; }
  absl::Status CheckReady(absl::Duration timeout) override;
  absl::Status Health() const override { return absl::OkStatus(); }
  absl::Status AddSequence(uint64_t id, int64_t reserve_tokens) override;
  void ReleaseSequence(uint64_t id) override;
  absl::StatusOr<Tensor> Forward(absl::Span<const MixerStep> steps, absl::Time deadline,
                                 absl::Span<absl::Status> step_status) override;

  // The replicas' addresses, in the order they joined.
  std::vector<std::string> ReplicaTargets();

 private:
  struct Replica;
  struct Call;
  struct Pin {
    Replica* replica = nullptr;
    uint64_t session = 0;  // the replica's session the sequence was opened in
  };

  RemoteMixers(std::string model_dir, model::JambaConfig config, std::vector<std::string> targets,
               RemoteMixersOptions options);
  // Adds replicas for addresses not seen yet; marks vanished DNS ones unlisted.
  void Resolve();
  std::vector<Replica*> Snapshot();
  // Runs each call on its own thread; a call still running at `deadline`
  // has its replica's session cancelled (its sequences are lost).
  static void RunCalls(std::vector<Call>& calls, absl::Time deadline);

  const std::string model_dir_;
  const model::JambaConfig config_;
  const std::vector<std::string> targets_;
  const RemoteMixersOptions options_;
  absl::flat_hash_map<uint64_t, Pin> pins_;  // engine thread only
  uint64_t next_pick_ = 0;                   // engine thread only

  absl::Mutex mu_;  // the replica list (replicas are never removed)
  std::vector<std::unique_ptr<Replica>> replicas_ ABSL_GUARDED_BY(mu_);
  absl::Time resolved_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace jamba::mixer
