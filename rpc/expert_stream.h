// ExpertStream: one long-lived ExpertService.Compute bidi stream with many
// tagged requests in flight, matched to responses by tag. Writes are queued
// so only one is in flight. When the stream breaks, every request waiting
// on it fails with UNAVAILABLE and broken() turns true; the owner then
// starts a new stream. Thread-safe; reactions run on gRPC's threads.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "jamba/internal/v1/expert.grpc.pb.h"

namespace jamba::rpc {

using ::jamba::internal::v1::ExpertRequest;
using ::jamba::internal::v1::ExpertResponse;
using ::jamba::internal::v1::ExpertService;

// The responses of one batch of requests (one ExpertRunner::Run): one slot
// per request, each filled exactly once with a response or a failure.
class PendingResponses {
 public:
  explicit PendingResponses(int num_slots) : results_(num_slots), filled_at_(num_slots) {}

  // Fills `slot` unless it is already filled.
  void Deliver(int slot, absl::StatusOr<ExpertResponse> result);
  // Waits until every slot is filled or `deadline` passes; true if filled.
  bool WaitUntil(absl::Time deadline);
  bool filled(int slot);
  // REQUIRES: filled(slot). Moves the result out.
  absl::StatusOr<ExpertResponse> Take(int slot);
  // REQUIRES: filled(slot). When it was filled.
  absl::Time filled_at(int slot);

 private:
  absl::Mutex mu_;
  int num_filled_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::optional<absl::StatusOr<ExpertResponse>>> results_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> filled_at_ ABSL_GUARDED_BY(mu_);
};

class ExpertStream final : public grpc::ClientBidiReactor<ExpertRequest, ExpertResponse> {
 public:
  // Starts a Compute call on `stub` (which must outlive the call).
  // `description` names the peer in errors, e.g. `shard "s0" (target t)`.
  static std::shared_ptr<ExpertStream> Start(ExpertService::StubInterface* stub,
                                             std::string description);

  // Queues `request`, whose tag must be unique on this stream; its response
  // (or the stream's failure) goes to `sink` slot `slot`. The request is
  // shared, not copied, so a caller can send it again elsewhere. Returns
  // false, delivering nothing, when the stream is already broken.
  bool Send(std::shared_ptr<const ExpertRequest> request, std::shared_ptr<PendingResponses> sink,
            int slot);
  // Forgets `tag`: a late response is dropped.
  void Abandon(uint64_t tag);
  // Takes no more requests (Send returns false); once the queued ones are
  // written, half-closes the stream. The worker answers every request it
  // has read, then ends the stream, so nothing sent is lost.
  void Retire();
  bool broken();
  absl::Time started() const { return started_; }
  // Cancels the call (waiting requests fail); then WaitDone returns once the
  // library is finished with this stream.
  void Cancel();
  void WaitDone() { done_.WaitForNotification(); }
  bool done() const { return done_.HasBeenNotified(); }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  explicit ExpertStream(std::string description) : description_(std::move(description)) {}

  struct Waiter {
    std::shared_ptr<PendingResponses> sink;
    int slot = 0;
  };

  const std::string description_;
  const absl::Time started_ = absl::Now();
  grpc::ClientContext context_;
  ExpertResponse response_;  // the read in flight; touched only by reactions

  absl::Mutex mu_;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool retiring_ ABSL_GUARDED_BY(mu_) = false;
  bool writes_done_ ABSL_GUARDED_BY(mu_) = false;  // StartWritesDone was called
  // Requests not yet written; the front one is in flight while writing_.
  std::deque<std::shared_ptr<const ExpertRequest>> writes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Waiter> waiting_ ABSL_GUARDED_BY(mu_);

  std::shared_ptr<ExpertStream> self_;  // keeps this alive until OnDone
  absl::Notification done_;
};

}  // namespace jamba::rpc
