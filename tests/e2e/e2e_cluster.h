// A local cluster for end-to-end tests: real jamba-expert-worker and
// jamba-router processes on 127.0.0.1 with ports picked at run time, over
// a copy of the bundled tiny model whose config the test may adjust.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "jamba/v1/jamba.grpc.pb.h"
#include "tests/testing/subprocess.h"

namespace jamba::testing {

// Copies (symlinks) the model folder `source` to a temp dir and rewrites
// its config.json with `config_overrides` (a JSON object merged in).
absl::StatusOr<std::string> MakeModelVariant(const std::string& source,
                                             const std::string& config_overrides);

class LocalCluster {
 public:
  // Starts `workers` expert-worker shards (expert e of every MoE layer on
  // shard e mod workers), each as `replicas` processes, and a router using
  // them; workers == 0 runs the experts in-process in the router. Worker i
  // is replica i % replicas of shard i / replicas.
  absl::Status Start(const std::string& model_dir, int workers,
                     const std::vector<std::string>& router_flags = {}, int replicas = 1);
  void Stop();
  // Starts worker i again (after it was stopped) on the port it had.
  absl::Status RestartWorker(int i);

  const std::string& router_address() const { return router_address_; }
  const std::vector<std::string>& worker_addresses() const { return worker_addresses_; }
  std::unique_ptr<jamba::v1::JambaService::Stub> NewStub() const;
  Subprocess& router() { return *router_; }
  Subprocess& worker(int i) { return *workers_[i]; }
  // Polls grpc.health.v1 until SERVING.
  absl::Status WaitServing(absl::Duration timeout) const;
  // Polls the router's readiness until it is `serving`; OK when it was
  // within `timeout`.
  absl::Status WaitHealth(bool serving, absl::Duration timeout) const;

 private:
  std::vector<std::unique_ptr<Subprocess>> workers_;
  std::vector<std::vector<std::string>> worker_argv_;
  std::vector<std::string> worker_addresses_;
  std::unique_ptr<Subprocess> router_;
  std::string router_address_;
};

}  // namespace jamba::testing
