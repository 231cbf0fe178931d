// RouterServer: assembles the router process — mixer (in-process, or a pool
// of mixer workers), tokenizer,
// engine, gRPC server with JambaService, health and reflection — and keeps
// the health status true: "jamba.v1.JambaService" (readiness) is
// NOT_SERVING until the weights are loaded and every expert shard has a
// replica that answers (with mixer workers: until one of them is serving),
// and again when that stops; it is never SERVING once the engine broke
// (failed()). "" (liveness) is SERVING while the process works and turns
// NOT_SERVING only on drain.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "mixer_worker/mixer.h"
#include "model/jamba_model.h"
#include "router/engine.h"
#include "router/jamba_service.h"
#include "router/metrics.h"
#include "router/tokenizer.h"
#include "security/health_port.h"

namespace jamba::router {

struct RouterOptions {
  std::string model_dir;
  std::string listen_address = "127.0.0.1";
  int port = 0;
  std::string backend = "cpu";
  std::string tokenizer_path;  // default: <model_dir>/tokenizer.model if present
  std::vector<std::vector<std::string>> expert_shards;  // empty: in-process experts
  std::string placement_path;                           // instead of expert_shards
  // Data-parallel mixer workers ("host:port" or "dns:///name:port" each);
  // empty: the mixer runs in this process. They call the experts themselves.
  std::vector<std::string> mixer_targets;
  EngineOptions engine;  // engine.kv_cache_dtype is also the in-process mixer's
  model::ExpertWeights expert_weights = model::ExpertWeights::kAsStored;  // in-process experts
  // Two micro-batches whose remote expert calls overlap (ModelOptions).
  bool overlap_expert_calls = true;
  int max_new_tokens_limit = 4096;
  absl::Duration expert_timeout = absl::Seconds(30);
  absl::Duration health_interval = absl::Seconds(2);
  // Prometheus /metrics on this host:port; port -1 disables, 0 picks one.
  std::string metrics_address = "127.0.0.1";
  int metrics_port = -1;
  // Public API credentials (TLS, token); plaintext when null.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // Credentials of the internal channels (to the expert shards, or to the
  // mixer workers with mixer_targets); plaintext when null.
  std::shared_ptr<grpc::ChannelCredentials> internal_credentials;
  // Plaintext grpc.health.v1-only port for probes (-1: none, 0: pick one).
  int health_port = -1;
};

class RouterServer {
 public:
  // Loads, connects and starts listening; progress goes to stderr.
  static absl::StatusOr<std::unique_ptr<RouterServer>> Start(const RouterOptions& options);
  ~RouterServer();

  int port() const { return port_; }
  // The /metrics port, or 0 when metrics are not served.
  int metrics_port() const { return metrics_.port(); }
  // The plaintext health port, or 0 when none is served.
  int health_port() const { return health_.port(); }
  // NOT_SERVING, stop accepting, let calls finish within `budget`. True
  // when nothing had to be cut off.
  bool Drain(absl::Duration budget);
  // True once the engine broke (MixerExecutor::Health): readiness is then
  // NOT_SERVING for good and the process should exit non-zero.
  bool failed() const { return failed_.HasBeenNotified(); }

 private:
  RouterServer() = default;
  void MonitorHealth(absl::Duration interval);
  void SetServing(bool serving);

  Metrics metrics_;
  security::HealthStatus health_;
  std::unique_ptr<mixer::Mixer> mixer_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<JambaServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Notification stop_monitor_;
  absl::Notification failed_;
  std::thread monitor_;
};

}  // namespace jamba::router
