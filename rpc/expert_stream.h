// ExpertStream: one long-lived ExpertService.Compute bidi stream with many
// tagged requests in flight, matched to responses by tag. Writes are queued
// so only one is in flight. When the stream breaks, every request waiting
// on it fails with UNAVAILABLE and broken() turns true; the owner then
// starts a new stream. Thread-safe. It runs on the completion-queue API:
// its completions run on the thread that waits for a response
// (CompletionDriver), which the kernel wakes when the response arrives,
// with no hand-off between threads.
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
#include "rpc/completion_queue_threads.h"
#include "rpc/grpc_tsan.h"

namespace jamba::rpc {

using ::jamba::internal::v1::ExpertRequest;
using ::jamba::internal::v1::ExpertResponse;
using ::jamba::internal::v1::ExpertService;

// The responses of one batch of requests (one ExpertRunner::Run): one slot
// per request, each filled exactly once with a response or a failure.
class PendingResponses {
 public:
  // The streams that fill the slots complete on `driver`'s queue.
  PendingResponses(int num_slots, CompletionDriver* driver)
      : driver_(driver), results_(num_slots), filled_at_(num_slots) {}

  // Fills `slot` unless it is already filled.
  void Deliver(int slot, absl::StatusOr<ExpertResponse> result);
  // Runs the driver's completions until every slot is filled or `deadline`
  // passes; true if filled.
  bool WaitUntil(absl::Time deadline);
  bool filled(int slot);
  // REQUIRES: filled(slot). Moves the result out.
  absl::StatusOr<ExpertResponse> Take(int slot);
  // REQUIRES: filled(slot). When it was filled.
  absl::Time filled_at(int slot);

 private:
  CompletionDriver* const driver_;
  absl::Mutex mu_;
  int num_filled_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::optional<absl::StatusOr<ExpertResponse>>> results_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> filled_at_ ABSL_GUARDED_BY(mu_);
};

class ExpertStream {
 public:
  // Starts a Compute call on `stub` (which must outlive the call) whose
  // completions go to `driver` (which must outlive them: WaitDone).
  // `description` names the peer in errors, e.g. `shard "s0" (target t)`.
  static std::shared_ptr<ExpertStream> Start(ExpertService::StubInterface* stub,
                                             CompletionDriver* driver, std::string description);

  // Queues `request`, whose tag must be unique on this stream; its response
  // (or the stream's failure) goes to `sink` slot `slot`. The request is
  // shared, not copied, so a caller can send it again elsewhere. Returns
  // false, delivering nothing, when the stream is already broken. `idle`
  // (if not null) tells whether the stream had no read in flight: then it
  // may have died unnoticed (the worker restarted or drained), and a
  // failure of this request says nothing about a new stream.
  bool Send(std::shared_ptr<const ExpertRequest> request, std::shared_ptr<PendingResponses> sink,
            int slot, bool* idle = nullptr);
  // Forgets `tag`: a late response is dropped.
  void Abandon(uint64_t tag);
  // Takes no more requests (Send returns false); once the queued ones are
  // written, half-closes the stream. The worker answers every request it
  // has read, then ends the stream, so nothing sent is lost.
  void Retire();
  bool broken();
  absl::Time started() const { return started_; }
  // Cancels the call (waiting requests fail); then WaitDone runs the
  // driver's completions until gRPC has returned every operation of this
  // stream.
  void Cancel();
  void WaitDone();
  bool done() const { return done_.HasBeenNotified(); }

 private:
  ExpertStream(CompletionDriver* driver, std::string description)
      : driver_(driver), description_(std::move(description)) {}

  void OnReadDone(bool ok);
  void OnWriteDone(bool ok);
  void OnWritesDoneDone(bool ok);
  void OnFinished(bool ok);
  // Writes the front request unless a write is in flight or none waits.
  void StartWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Once retired and every request is written: half-closes, once.
  void MaybeWritesDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts a read unless one is in flight or the reads ended. A read is in
  // flight only while a response is awaited (or the stream is retired or
  // cancelled and its end awaited): a read posted long before its response
  // arrives costs the round trip 60-100 us more on gRPC 1.51 (bench note in
  // bench/results/load_comparison.md).
  void StartReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts an operation; call with mu_ held.
  template <typename Start>
  void StartOpLocked(Start start) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++outstanding_;
    GrpcOpStarts(this);
    start();
  }
  // Ends a completion. When it was the last one and the call is over,
  // notifies done_ and returns the stream's hold on itself, which the
  // caller drops after releasing mu_ (that may delete the stream).
  std::shared_ptr<ExpertStream> OpDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  struct Waiter {
    std::shared_ptr<PendingResponses> sink;
    int slot = 0;
  };

  CompletionDriver* const driver_;
  const std::string description_;
  const absl::Time started_ = absl::Now();
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncReaderWriterInterface<ExpertRequest, ExpertResponse>> call_;
  ExpertResponse response_;  // the read in flight; touched by its completion only
  grpc::Status status_;      // filled by Finish
  Completion read_done_{[this](bool ok) { OnReadDone(ok); }};
  Completion write_done_{[this](bool ok) { OnWriteDone(ok); }};
  Completion writes_done_done_{[this](bool ok) { OnWritesDoneDone(ok); }};
  Completion finish_done_{[this](bool ok) { OnFinished(ok); }};

  absl::Mutex mu_;
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;  // operations gRPC has not returned
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool retiring_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool read_ended_ ABSL_GUARDED_BY(mu_) = false;   // a read failed: the call is over
  bool writes_done_ ABSL_GUARDED_BY(mu_) = false;  // WritesDone was started
  bool finished_ ABSL_GUARDED_BY(mu_) = false;     // Finish returned
  // Requests not yet written; the front one is in flight while writing_.
  std::deque<std::shared_ptr<const ExpertRequest>> writes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Waiter> waiting_ ABSL_GUARDED_BY(mu_);

  std::shared_ptr<ExpertStream> self_;  // keeps this alive until done_
  absl::Notification done_;
};

}  // namespace jamba::rpc
