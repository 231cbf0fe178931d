// RemoteExperts::Replica: one target of a shard, its channel and its
// current Compute stream. Internal to rpc/remote_experts*.cc.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "rpc/expert_stream.h"
#include "rpc/remote_experts.h"

namespace jamba::rpc {

struct RemoteExperts::Replica {
  std::string target;
  std::string description;  // shard "s0" (target 127.0.0.1:5001)
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<ExpertService::Stub> stub;
  CompletionDriver* driver = nullptr;  // the owner's, where streams complete
  absl::Duration stream_max_age = absl::InfiniteDuration();
  // How often one call may try this target: a dns:/// name stands for every
  // address it resolves to, and a fresh stream goes to another healthy one.
  int max_tries = 1;

  absl::Mutex mu;
  std::shared_ptr<ExpertStream> stream ABSL_GUARDED_BY(mu);
  // Broken streams gRPC may not be done with yet.
  std::vector<std::shared_ptr<ExpertStream>> retired ABSL_GUARDED_BY(mu);

  // The open stream, started anew when there is none, it broke or it is
  // old enough to retire (a retired stream ends once its answers are in).
  std::shared_ptr<ExpertStream> GetStream() {
    absl::MutexLock lock(&mu);
    const bool old = stream != nullptr && absl::Now() - stream->started() >= stream_max_age;
    if (old) stream->Retire();
    if (stream == nullptr || old || stream->broken()) {
      std::vector<std::shared_ptr<ExpertStream>> live;
      for (auto& s : retired) {
        if (!s->done()) live.push_back(std::move(s));
      }
      if (stream != nullptr) live.push_back(std::move(stream));
      retired = std::move(live);
      stream = ExpertStream::Start(stub.get(), driver, description);
    }
    return stream;
  }

  void Shutdown() {
    std::vector<std::shared_ptr<ExpertStream>> all;
    {
      absl::MutexLock lock(&mu);
      all = std::move(retired);
      if (stream != nullptr) all.push_back(std::move(stream));
    }
    for (auto& s : all) s->Cancel();
    for (auto& s : all) s->WaitDone();
  }
};

}  // namespace jamba::rpc
