// Command-line flags for TLS, mutual TLS, bearer tokens and the plaintext
// health port, shared by the service binaries (router, expert workers,
// mixer workers) so that every process takes the same names:
//
//   --internal_tls_cert/--internal_tls_key/--internal_tls_ca
//       the process's identity and the CA of the internal hops (router <->
//       mixer and expert workers). A worker serves mutual TLS with all
//       three; a caller presents cert/key and verifies its peers against
//       the CA. None set: plaintext.
//   --tls_reload_s         how often the certificate files are re-read.
//   --health_port          plaintext grpc.health.v1 port (-1: none).
//
// and, for the public API (router only, PublicServerCredentialsFromFlags):
//
//   --tls_cert/--tls_key   TLS on the public port; --tls_client_ca also
//                          requires client certificates.
//   --auth_token_file      require "authorization: Bearer <token>" (or
//   --auth_token           the token itself; visible in ps, for tests).
#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"

namespace jamba::security {

// Credentials for serving an internal API: plaintext when no
// --internal_tls_* flag is set.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> InternalServerCredentialsFromFlags();
// Credentials for calling internal APIs: plaintext when no --internal_tls_*
// flag is set.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> InternalChannelCredentialsFromFlags();
// True when --internal_tls_* flags are set.
bool InternalTlsEnabled();
// --health_port.
int HealthPortFromFlags();

// Credentials for the public API (TLS and token flags above); plaintext
// when none is set. A token needs TLS (InvalidArgument otherwise).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> PublicServerCredentialsFromFlags();

}  // namespace jamba::security
