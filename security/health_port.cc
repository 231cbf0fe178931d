#include "security/health_port.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <chrono>

#include "absl/strings/str_cat.h"

namespace jamba::security {
namespace {

std::string HostPort(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return ipv6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

}  // namespace

HealthStatus::~HealthStatus() { Shutdown(); }

absl::Status HealthStatus::ServeHealthPort(const std::string& host, int port) {
  if (port < 0) return absl::OkStatus();
  if (port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--health_port ", port, " is out of range"));
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(HostPort(host, port), grpc::InsecureServerCredentials(), &port_);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port_ == 0 || server->GetHealthCheckService() == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot serve health on ", HostPort(host, port)));
  }
  absl::MutexLock lock(&mu_);
  // NOT_SERVING until the process says otherwise.
  server->GetHealthCheckService()->SetServingStatus("", false);
  health_server_ = std::move(server);
  return absl::OkStatus();
}

void HealthStatus::SetMainServer(grpc::Server* server) {
  absl::MutexLock lock(&mu_);
  main_ = server;
}

void HealthStatus::Set(const std::string& service, bool serving) {
  absl::MutexLock lock(&mu_);
  if (main_ != nullptr) main_->GetHealthCheckService()->SetServingStatus(service, serving);
  if (health_server_ != nullptr) {
    health_server_->GetHealthCheckService()->SetServingStatus(service, serving);
  }
}

void HealthStatus::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (health_server_ == nullptr) return;
  health_server_->GetHealthCheckService()->Shutdown();
  health_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  health_server_.reset();
}

}  // namespace jamba::security
