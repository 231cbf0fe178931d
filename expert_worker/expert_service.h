// ExpertServiceImpl: the jamba.internal.v1.ExpertService of an expert
// worker. Compute streams carry tagged requests, each the rows of one MoE
// layer for some of this worker's experts; every request gets one tagged
// response (an error response when it is bad, and the stream goes on).
// Each expert runs once per request over all its rows (one matrix product).
// Compute streams run on the completion-queue API (ComputeStream): a
// request is answered on the thread that polled it, one request at a time
// per process (the backend is single-threaded). Thread-safe.
//
// Use: RegisterWith(&builder), BuildAndStart, Start(); at the end shut the
// server down, Stop() the service, then destroy the server and the service
// (gRPC's order: a server's completion queue is drained before the server
// is destroyed).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "jamba/internal/v1/expert.grpc.pb.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/local_experts.h"
#include "rpc/completion_queue_threads.h"

namespace jamba::expert {

using ::jamba::internal::v1::ExpertRequest;
using ::jamba::internal::v1::ExpertResponse;

struct ExpertServiceOptions {
  std::string shard_name;    // reported by GetShardInfo
  int64_t weight_bytes = 0;  // reported by GetShardInfo
};

class ComputeStream;

using ExpertServiceBase = ::jamba::internal::v1::ExpertService::WithAsyncMethod_Compute<
    ::jamba::internal::v1::ExpertService::WithCallbackMethod_GetShardInfo<
        ::jamba::internal::v1::ExpertService::Service>>;

class ExpertServiceImpl final : public ExpertServiceBase {
 public:
  // `experts` (the hosted ones, with their backend) is not owned and must
  // outlive the service, which must outlive the grpc::Server it is
  // registered with (shut that down first).
  ExpertServiceImpl(const model::JambaConfig& config, model::LocalExperts* experts,
                    ExpertServiceOptions options);
  // Stop()s, then checks that every stream is gone.
  ~ExpertServiceImpl() override;

  // Registers the service and its completion queue; before BuildAndStart.
  void RegisterWith(grpc::ServerBuilder* builder);
  // After BuildAndStart: serves Compute streams on `num_threads` threads.
  void Start(int num_threads = 2);
  // REQUIRES: the server is shut down. Drains the completion queue (every
  // stream ends) and stops its threads. Idempotent.
  void Stop();

  grpc::ServerUnaryReactor* GetShardInfo(
      grpc::CallbackServerContext* context, const ::jamba::internal::v1::ShardInfoRequest* request,
      ::jamba::internal::v1::ShardInfoResponse* response) override;

  // The response to one request read at `received`: the outputs, or
  // error_code/message; DEADLINE_EXCEEDED, computing nothing more, once
  // the request's timeout_us has passed since `received`. worker_us is
  // the time from `received` to the answer.
  ExpertResponse Handle(const ExpertRequest& request, absl::Time received);

  // For shutdown: every open Compute stream ends (status OK) once the
  // requests it has read are answered; new streams end at once.
  void BeginDrain();
  // After BeginDrain: waits until every Compute stream has ended or
  // `deadline` passes; true if they all ended.
  bool WaitForStreams(absl::Time deadline);

  // "layer:expert" of every hosted expert, ascending.
  const std::vector<std::string>& hosted() const { return hosted_; }

 private:
  friend class ComputeStream;

  // Validates and computes; fills response->outputs.
  absl::Status HandleInto(const ExpertRequest& request, absl::Time deadline,
                          ExpertResponse* response);
  // Registers a new stream; false when draining (the stream must end).
  bool Register(ComputeStream* stream);
  void Unregister(ComputeStream* stream);

  const model::JambaConfig config_;
  model::LocalExperts* const experts_;
  const ExpertServiceOptions options_;
  std::vector<std::string> hosted_;
  std::atomic<uint64_t> answered_{0};  // requests answered

  absl::Mutex compute_mu_;  // experts_ (and its backend): one caller at a time

  absl::Mutex streams_mu_;
  bool draining_ ABSL_GUARDED_BY(streams_mu_) = false;
  absl::flat_hash_set<ComputeStream*> streams_ ABSL_GUARDED_BY(streams_mu_);

  // Held (shared) while a stream starts an operation on cq_; Stop sets
  // stopping_ before it shuts cq_ down, after which none may start.
  absl::Mutex ops_mu_;
  bool stopping_ ABSL_GUARDED_BY(ops_mu_) = false;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::unique_ptr<rpc::CompletionQueueThreads> threads_;  // polling cq_
  bool stopped_ = false;
};

// Bytes of the checkpoint's expert weights that `hosts` selects.
absl::StatusOr<int64_t> ExpertWeightBytes(const model::Checkpoint& checkpoint,
                                          const model::LocalExperts::HostPredicate& hosts);

}  // namespace jamba::expert
