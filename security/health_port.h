// HealthStatus: sets grpc.health.v1 statuses on a process's main server
// and, when one is configured, on a second, plaintext server that serves
// nothing but grpc.health.v1 (plus reflection of it) — the port that
// Kubernetes gRPC probes use when the main port requires (mutual) TLS or a
// token, since probes send neither a client certificate nor headers
// (serving-conventions 1.1). Both report the same statuses.
// Thread-safe.
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace jamba::security {

class HealthStatus {
 public:
  HealthStatus() = default;
  ~HealthStatus();

  // Starts the plaintext health server on host:port (port 0 picks one;
  // -1 does nothing). Call before the main server is built and after
  // grpc::EnableDefaultHealthCheckService(true).
  absl::Status ServeHealthPort(const std::string& host, int port);
  // The main server, whose default health service gets the statuses too.
  void SetMainServer(grpc::Server* server);
  // The plaintext health port, or 0 when none is served.
  int port() const { return port_; }

  void Set(const std::string& service, bool serving);
  // NOT_SERVING everywhere, stops the plaintext server.
  void Shutdown();

 private:
  absl::Mutex mu_;
  grpc::Server* main_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::unique_ptr<grpc::Server> health_server_ ABSL_GUARDED_BY(mu_);
  int port_ = 0;
};

}  // namespace jamba::security
