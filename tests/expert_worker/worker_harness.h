// In-process expert workers for tests: a fixture checkpoint, all its experts
// loaded locally (the reference), and ExpertServiceImpl servers on
// 127.0.0.1 hosting complementary shares of the experts.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/check.h"
#include "expert_worker/expert_service.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/local_experts.h"
#include "rpc/expert_placement.h"

namespace jamba::testing {

// The value of `s`; aborts with its status otherwise.
template <typename T>
T ValueOrDie(absl::StatusOr<T> s) {
  JAMBA_CHECK(s.ok()) << s.status();
  return *std::move(s);
}

// One in-process worker: its own backend, experts, service and server.
struct InProcessWorker {
  // Shuts the server down (cancelling open streams), stops the service, then
  // destroys them in that order.
  ~InProcessWorker() {
    if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
    if (service != nullptr) service->Stop();
    server.reset();
  }

  std::string shard;
  std::unique_ptr<kernels::Backend> backend;
  std::unique_ptr<model::LocalExperts> experts;
  std::unique_ptr<expert::ExpertServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

class WorkerHarness {
 public:
  // Opens tests/testdata/fixtures/<fixture> and loads every expert locally.
  explicit WorkerHarness(const std::string& fixture);

  const model::JambaConfig& config() const { return checkpoint_->config(); }
  const model::Checkpoint& checkpoint() const { return *checkpoint_; }
  kernels::Backend* backend() { return backend_.get(); }
  model::LocalExperts& all_experts() { return *all_; }
  std::vector<int> moe_layers() const;

  // Two shards: "s0" hosts the lower half of the experts and "s1" the upper
  // half, except on the second MoE layer, where s0 hosts {0, E-1}.
  std::string PlacementJson(const std::string& target0, const std::string& target1) const;
  rpc::ExpertPlacement Placement(const std::string& target0, const std::string& target1) const;

  // Starts a worker for `shard` of PlacementJson on `port` (0: any).
  std::unique_ptr<InProcessWorker> StartWorker(const std::string& shard, int port = 0);

  // Random x [T, H] and a top-k routing from random gate logits.
  Tensor RandomRows(int64_t T, std::mt19937* rng) const;
  void RandomRouting(int64_t T, std::mt19937* rng, Tensor* weights, Tensor* experts);

 private:
  std::unique_ptr<model::Checkpoint> checkpoint_;
  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<model::LocalExperts> all_;
};

}  // namespace jamba::testing
