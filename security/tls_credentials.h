// gRPC server and channel credentials from PEM files: TLS, or mutual TLS
// when a CA is given to the server. The files are watched: a rotated
// certificate, key or CA (rewritten in place, or a Kubernetes Secret
// mount's symlink swap) is used by new handshakes within
// `reload_interval` (gRPC's FileWatcherCertificateProvider; a half-written
// or mismatched pair is skipped and the previous one kept). Thread-safe.
#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace jamba::security {

struct TlsFiles {
  std::string cert;  // PEM certificate chain (leaf first)
  std::string key;   // PEM private key of `cert`
  std::string ca;    // PEM CA bundle that peers' certificates must chain to
  absl::Duration reload_interval = absl::Seconds(60);

  // True when any file is set (TLS is wanted).
  bool enabled() const { return !cert.empty() || !key.empty() || !ca.empty(); }
};

// Server credentials: needs cert and key. With a CA, clients must present
// a certificate that chains to it (mutual TLS); without, TLS only.
// InvalidArgument names the missing or unreadable file (`flag_prefix`,
// e.g. "--internal_tls", prefixes the names in messages).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsServerCredentials(
    const TlsFiles& files, const std::string& flag_prefix);

// Channel credentials: needs the CA that servers' certificates chain to;
// the server's certificate must also name the host of the target (SAN DNS
// name or IP). With cert and key, presents them (mutual TLS).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsChannelCredentials(
    const TlsFiles& files, const std::string& flag_prefix);

}  // namespace jamba::security
