// RemoteExperts: the ExpertRunner that sends each MoE layer's routed rows to
// expert-worker shards over gRPC and combines the answers.
//
// Per shard target (replica) it keeps one channel and one Compute stream
// with any number of tagged requests in flight; a broken stream is replaced
// on the next call, and one older than stream_max_age is retired and
// replaced (a new stream goes to the next healthy address of the target). Run sends one request per
// shard, to all shards at once, and sums the outputs on the calling thread in GroupByExpert order,
// so with the F32 wire dtype the result is bit-identical to LocalExperts::Run on the same backend.
// Run and WaitUntilReady may be called from several threads; the backend ops Run issues are
// serialised by an internal mutex.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kernels/backend.h"
#include "model/expert_runner.h"
#include "model/routing.h"
#include "rpc/expert_placement.h"
#include "rpc/expert_stream.h"
#include "rpc/grpc_options.h"

namespace jamba::rpc {

struct RemoteExpertsOptions {
  // Dtype of the rows on the wire, both ways: kF32 (exact) or kBF16.
  DType wire_dtype = DType::kF32;
  // How long Run waits for all shards before failing with UNAVAILABLE.
  absl::Duration call_timeout = absl::Seconds(30);
  // Largest request Run sends to one shard; larger ones fail with
  // RESOURCE_EXHAUSTED before anything is sent. Workers accept up to
  // kMaxMessageBytes.
  int64_t max_request_bytes = kMaxMessageBytes;
  // Channel credentials; insecure when null.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // A replica's Compute stream is replaced by a new one once it is this old
  // (the old one ends after its answers), so that round_robin spreads a
  // shard's traffic over its replicas, including ones added since.
  absl::Duration stream_max_age = absl::Seconds(1);
  // Called after each answered call with the shard's name and the time
  // from sending its request to receiving its response (for metrics).
  std::function<void(const std::string& shard, absl::Duration round_trip)> on_round_trip;
};

class RemoteExperts final : public model::ExpertRunner {
 public:
  // `backend` holds Run's x and out and must outlive this object. Channels
  // connect lazily; nothing is contacted here.
  static absl::StatusOr<std::unique_ptr<RemoteExperts>> Create(ExpertPlacement placement,
                                                               int64_t hidden_size,
                                                               kernels::Backend* backend,
                                                               RemoteExpertsOptions options = {});
  // Cancels the streams and waits until gRPC is done with them.
  ~RemoteExperts() override;

  // out = Σ weights · experts(x), as LocalExperts::Run. UNAVAILABLE naming
  // shard and target when a shard fails or misses the call timeout; a
  // worker's rejection keeps its code, prefixed with the shard.
  absl::Status Run(int layer, const Tensor& x, const Tensor& weights, const Tensor& experts,
                   Tensor* out) override;

  // OK once every replica of every shard answers GetShardInfo with this
  // hidden size and at least the experts the placement gives its shard.
  absl::Status WaitUntilReady(absl::Duration timeout);

  // Calls made from now on also end by `deadline` (the batch's earliest
  // request deadline); InfiniteFuture() lifts it. Thread-compatible with Run.
  void set_deadline(absl::Time deadline) {
    deadline_ns_.store(deadline == absl::InfiniteFuture() ? INT64_MAX
                                                          : absl::ToUnixNanos(deadline));
  }

  const ExpertPlacement& placement() const { return placement_; }

 private:
  struct Replica;
  struct Shard {
    std::string name;
    std::vector<std::unique_ptr<Replica>> replicas;
    std::atomic<uint64_t> next_replica{0};
  };
  // Where one shard's request of a Run went.
  struct Sent {
    int shard = -1;
    Replica* replica = nullptr;
    std::shared_ptr<ExpertStream> stream;
    uint64_t tag = 0;
  };

  RemoteExperts(ExpertPlacement placement, int64_t hidden_size, kernels::Backend* backend,
                RemoteExpertsOptions options);

  // The next replica of `shard` in turn, skipping ones whose channel is in
  // TRANSIENT_FAILURE while another is not.
  Replica* PickReplica(Shard& shard);
  // Sends requests[s] for every shard with groups; fills `sent`.
  void SendAll(std::vector<ExpertRequest>& requests, const std::shared_ptr<PendingResponses>& sink,
               std::vector<Sent>* sent);
  // Checks one shard's response against the groups it was sent (indices
  // into `groups`) and decodes the outputs into (*ys)[group index].
  absl::Status CheckResponse(const Sent& sent, const std::vector<model::ExpertGroup>& groups,
                             const std::vector<int>& sent_groups,
                             absl::StatusOr<ExpertResponse> result, std::vector<Tensor>* ys);
  // The shard and target of `sent`, for messages.
  std::string Describe(const Sent& sent) const;

  const ExpertPlacement placement_;
  const int64_t hidden_size_;
  kernels::Backend* const backend_;
  const RemoteExpertsOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t> next_tag_{1};
  std::atomic<int64_t> deadline_ns_{INT64_MAX};  // unix nanoseconds; INT64_MAX: none
  absl::Mutex backend_mu_;
};

}  // namespace jamba::rpc
