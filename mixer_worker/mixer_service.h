// MixerServiceImpl: the jamba.internal.v1.MixerService of a mixer worker
// over one MixerExecutor. Each Session stream owns the sequences it opens
// (ids local to the stream) and frees them when it ends; requests on all
// streams take turns on the executor. Bad requests get an error response
// with their tag and the stream goes on. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "jamba/internal/v1/mixer.grpc.pb.h"
#include "mixer_worker/mixer_executor.h"

namespace jamba::mixer {

using ::jamba::internal::v1::MixerRequest;
using ::jamba::internal::v1::MixerResponse;

class MixerServiceImpl final : public ::jamba::internal::v1::MixerService::Service {
 public:
  // `executor` must outlive the service, which must outlive the grpc::Server
  // it is registered with (shut that down first).
  explicit MixerServiceImpl(MixerExecutor* executor) : executor_(executor) {}

  grpc::Status Session(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<MixerResponse, MixerRequest>* stream) override;
  grpc::Status GetMixerInfo(grpc::ServerContext* context,
                            const ::jamba::internal::v1::MixerInfoRequest* request,
                            ::jamba::internal::v1::MixerInfoResponse* response) override;

  // Whether the expert shards answer (reported by GetMixerInfo; while false,
  // new sequences are refused with UNAVAILABLE).
  void SetExpertsReady(bool ready);
  // For shutdown: new sequences are refused with UNAVAILABLE; open ones go on.
  void BeginDrain();
  // Waits until no sequence is open or `deadline` passes; true if none is.
  bool WaitForSequences(absl::Time deadline);

  // A session's sequences: its ids -> executor ids.
  using SessionMap = absl::flat_hash_map<uint64_t, uint64_t>;
  // The response to one request of a session (public for tests).
  MixerResponse Handle(SessionMap& session, const MixerRequest& request);
  // Frees every sequence of a session.
  void CloseSession(SessionMap& session);
  // The executor's on_routed observer must call this (it runs inside a
  // step, which holds the executor): the counts go into the step's answer.
  void CountRouted(int layer, int expert, int64_t rows);

 private:
  absl::Status Open(SessionMap& session, const ::jamba::internal::v1::OpenSequence& open);
  absl::Status Step(SessionMap& session, const ::jamba::internal::v1::StepBatch& step,
                    MixerResponse* response);

  // Changes the open count by `delta` (the executor's sequences).
  void CountOpen(int delta);

  MixerExecutor* const executor_;
  absl::Mutex executor_mu_;  // one request at a time on the executor
  uint64_t next_id_ ABSL_GUARDED_BY(executor_mu_) = 1;
  // The running step's routed rows (filled by CountRouted).
  std::vector<::jamba::internal::v1::RoutedRows> routed_;

  absl::Mutex mu_;  // state and counters, never held across a step
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t opened_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t steps_ ABSL_GUARDED_BY(mu_) = 0;
  bool experts_ready_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace jamba::mixer
