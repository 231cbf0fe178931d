// ComputeStream: one ExpertService.Compute call on the worker, driven on
// the completion-queue API. It reads requests one after another and
// answers each on the thread that read it (the completion queue's poller),
// so a request costs one thread wake-up; responses queue so that one write
// is in flight. The stream ends with OK when the client half-closes or the
// service drains (after answering every request it has read), and with
// UNAVAILABLE when it opens during a drain. It deletes itself once gRPC
// has returned every operation it started.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "expert_worker/expert_service.h"
#include "rpc/completion_queue_threads.h"
#include "rpc/grpc_tsan.h"

namespace jamba::expert {

class ComputeStream {
 public:
  // Asks gRPC for the next Compute call on `cq`; when it comes, the stream
  // asks for the one after, registers with `service` and serves the call.
  static void Accept(ExpertServiceImpl* service, grpc::ServerCompletionQueue* cq);

  // Ends the stream (OK) once the requests it has read are answered.
  void Drain();

 private:
  ComputeStream(ExpertServiceImpl* service, grpc::ServerCompletionQueue* cq);

  void OnAccepted(bool ok);
  void OnReadDone(bool ok);
  void OnWriteDone(bool ok);
  void OnFinished(bool ok);
  // Writes the front response unless a write is in flight or none waits.
  void StartWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts Finish once nothing is left to do.
  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts an operation with `start` unless the service is stopping (its
  // queue is being shut down); true if started.
  template <typename Start>
  bool StartOpLocked(Start start) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::ReaderMutexLock lock(&service_->ops_mu_);
    if (service_->stopping_) return false;
    ++outstanding_;
    rpc::GrpcOpStarts(this);
    start();
    return true;
  }
  // Ends a completion: true when it was the stream's last outstanding
  // operation, so the stream is over and the caller must Release it.
  bool OpDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release();  // unregisters and deletes this

  ExpertServiceImpl* const service_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<ExpertResponse, ExpertRequest> responder_{&context_};
  ExpertRequest request_;  // the read in flight; touched by its completion only
  rpc::Completion accepted_{[this](bool ok) { OnAccepted(ok); }};
  rpc::Completion read_done_{[this](bool ok) { OnReadDone(ok); }};
  rpc::Completion write_done_{[this](bool ok) { OnWriteDone(ok); }};
  rpc::Completion finished_done_{[this](bool ok) { OnFinished(ok); }};

  absl::Mutex mu_;
  int outstanding_ ABSL_GUARDED_BY(mu_) = 1;  // operations gRPC has not returned
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool handling_ ABSL_GUARDED_BY(mu_) = false;  // a read request is being answered
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish was started
  grpc::Status status_ ABSL_GUARDED_BY(mu_) = grpc::Status::OK;
  std::deque<ExpertResponse> writes_ ABSL_GUARDED_BY(mu_);  // front in flight
};

}  // namespace jamba::expert
