// A local cluster for end-to-end tests: real jamba-expert-worker,
// jamba-mixer-worker and jamba-router processes on 127.0.0.1 with ports picked at run time, over
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

// Polls grpc.health.v1 at `address` until `service` is SERVING (or, with
// serving false, answers NOT_SERVING).
absl::Status WaitHealthServing(const std::string& address, const std::string& service,
                               absl::Duration timeout, bool serving = true);

class LocalCluster {
 public:
  // Starts `workers` expert-worker shards (expert e of every MoE layer on
  // shard e mod workers), each as `replicas` processes, and a router using
  // them; workers == 0 runs the experts in-process in the router. Worker i
  // is replica i % replicas of shard i / replicas. With `mixers` > 0, that
  // many mixer workers use the shards (or, with no workers, run the experts
  // in-process) and the router drives them (--mixers).
  absl::Status Start(const std::string& model_dir, int workers,
                     const std::vector<std::string>& router_flags = {}, int replicas = 1,
                     int mixers = 0);
  void Stop();
  // Starts worker i again (after it was stopped) on the port it had.
  absl::Status RestartWorker(int i);
  // Extra flags for the mixer workers of the next Start.
  void set_mixer_flags(std::vector<std::string> flags) { mixer_flags_ = std::move(flags); }

  const std::string& router_address() const { return router_address_; }
  const std::vector<std::string>& worker_addresses() const { return worker_addresses_; }
  std::unique_ptr<jamba::v1::JambaService::Stub> NewStub() const;
  Subprocess& router() { return *router_; }
  Subprocess& worker(int i) { return *workers_[i]; }
  const std::vector<std::string>& mixer_addresses() const { return mixer_addresses_; }
  Subprocess& mixer(int i) { return *mixers_[i]; }
  // Polls grpc.health.v1 until SERVING.
  absl::Status WaitServing(absl::Duration timeout) const;
  // Polls the router's readiness until it is `serving`; OK when it was
  // within `timeout`.
  absl::Status WaitHealth(bool serving, absl::Duration timeout) const;

 private:
  std::vector<std::unique_ptr<Subprocess>> workers_;
  std::vector<std::vector<std::string>> worker_argv_;
  std::vector<std::string> worker_addresses_;
  std::vector<std::unique_ptr<Subprocess>> mixers_;
  std::vector<std::string> mixer_addresses_;
  std::vector<std::string> mixer_flags_;
  std::unique_ptr<Subprocess> router_;
  std::string router_address_;
};

}  // namespace jamba::testing
