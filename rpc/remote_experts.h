// RemoteExperts: the ExpertRunner that sends each MoE layer's routed rows to
// expert-worker shards over gRPC and combines the answers.
//
// Per shard target (replica) it keeps one channel and one Compute stream
// with any number of tagged requests in flight; a broken stream is replaced
// on the next call, and one older than stream_max_age is retired (it ends
// once answered) and replaced, so that a new stream goes to the next
// healthy address of a DNS target. Submit sends one request per shard, to
// all shards at once, and returns; Wait sums the outputs on the calling
// thread in GroupByExpert order, so with the F32 wire dtype the result is
// bit-identical to LocalExperts::Run on the same backend.
//
// Failover: experts are stateless, so a request whose stream breaks (the
// replica died, or drained before reading it) is sent again to another
// replica of its shard that this call has not tried; replicas whose
// channel is down (or whose health says NOT_SERVING) are picked last. When
// no replica is left the call fails with UNAVAILABLE naming the shard.
// Each request carries the time left until the call's deadline, so workers
// drop work nobody waits for. Thread-safe; the backend ops it issues are
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
#include "rpc/completion_queue_threads.h"
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
  // Called after each answered request with the shard's name, the time
  // from sending the request to receiving its response, and the part of it
  // the worker reported spending on the request (for metrics).
  std::function<void(const std::string& shard, absl::Duration round_trip, absl::Duration worker)>
      on_round_trip;
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
  // shard and target when no replica of a shard answers or one misses the
  // call timeout; DEADLINE_EXCEEDED when the deadline passes first; a
  // worker's rejection keeps its code, prefixed with the shard.
  absl::Status Run(int layer, const Tensor& x, const Tensor& weights, const Tensor& experts,
                   Tensor* out) override;
  std::unique_ptr<model::PendingExperts> Submit(int layer, const Tensor& x, const Tensor& weights,
                                                const Tensor& experts, Tensor* out) override;
  bool asynchronous() const override { return true; }

  // OK once every shard has a replica that answers GetShardInfo with this
  // hidden size and at least the experts the placement gives its shard,
  // and no answering replica contradicts the placement; UNAVAILABLE naming
  // the shard when none of its replicas answers.
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
  class Call;

  RemoteExperts(ExpertPlacement placement, int64_t hidden_size, kernels::Backend* backend,
                RemoteExpertsOptions options);

  // The next replica of `shard` in turn that is not in `tried` (a dns:///
  // target may be tried a few times: its next stream goes to another
  // address): ready or idle channels first, then connecting ones, then any;
  // null when every replica was tried.
  Replica* PickReplica(Shard& shard, const std::vector<Replica*>& tried);
  absl::Time deadline() const {
    const int64_t ns = deadline_ns_.load();
    return ns == INT64_MAX ? absl::InfiniteFuture() : absl::FromUnixNanos(ns);
  }

  const ExpertPlacement placement_;
  const int64_t hidden_size_;
  kernels::Backend* const backend_;
  const RemoteExpertsOptions options_;
  // Where the Compute streams complete; polled by the threads that wait.
  std::unique_ptr<CompletionDriver> driver_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t> next_tag_{1};
  std::atomic<int64_t> deadline_ns_{INT64_MAX};  // unix nanoseconds; INT64_MAX: none
  absl::Mutex backend_mu_;
};

}  // namespace jamba::rpc
