#include "security/server_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "security/bearer_token.h"
#include "security/tls_credentials.h"

ABSL_FLAG(std::string, internal_tls_cert, "",
          "PEM certificate of this process on the internal hops (router <-> workers)");
ABSL_FLAG(std::string, internal_tls_key, "", "PEM private key of --internal_tls_cert");
ABSL_FLAG(std::string, internal_tls_ca, "",
          "PEM CA that internal peers' certificates must chain to (mutual TLS)");
ABSL_FLAG(int, tls_reload_s, 60, "re-read certificate files this often (seconds)");
ABSL_FLAG(int, health_port, -1,
          "also serve grpc.health.v1 alone on this plaintext port, for probes (-1: off, 0: pick)");
ABSL_FLAG(std::string, tls_cert, "", "public API: PEM certificate (enables TLS)");
ABSL_FLAG(std::string, tls_key, "", "public API: PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "public API: require client certificates that chain to this PEM CA");
ABSL_FLAG(std::string, auth_token_file, "",
          "public API: require \"authorization: Bearer <token>\" with the token in this file");
ABSL_FLAG(std::string, auth_token, "",
          "public API: like --auth_token_file with the token itself (visible in ps)");

namespace jamba::security {
namespace {

TlsFiles InternalFiles() {
  TlsFiles files;
  files.cert = absl::GetFlag(FLAGS_internal_tls_cert);
  files.key = absl::GetFlag(FLAGS_internal_tls_key);
  files.ca = absl::GetFlag(FLAGS_internal_tls_ca);
  files.reload_interval = absl::Seconds(absl::GetFlag(FLAGS_tls_reload_s));
  return files;
}

}  // namespace

bool InternalTlsEnabled() { return InternalFiles().enabled(); }

int HealthPortFromFlags() { return absl::GetFlag(FLAGS_health_port); }

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> InternalServerCredentialsFromFlags() {
  const TlsFiles files = InternalFiles();
  if (!files.enabled()) return grpc::InsecureServerCredentials();
  return TlsServerCredentials(files, "--internal_tls");
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> InternalChannelCredentialsFromFlags() {
  const TlsFiles files = InternalFiles();
  if (!files.enabled()) return grpc::InsecureChannelCredentials();
  return TlsChannelCredentials(files, "--internal_tls");
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> PublicServerCredentialsFromFlags() {
  TlsFiles files;
  files.cert = absl::GetFlag(FLAGS_tls_cert);
  files.key = absl::GetFlag(FLAGS_tls_key);
  files.ca = absl::GetFlag(FLAGS_tls_client_ca);
  files.reload_interval = absl::Seconds(absl::GetFlag(FLAGS_tls_reload_s));
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (files.enabled()) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls =
        TlsServerCredentials(files, "--tls");
    if (!tls.ok()) return tls.status();
    credentials = *std::move(tls);
  } else {
    credentials = grpc::InsecureServerCredentials();
  }
  std::string token = absl::GetFlag(FLAGS_auth_token);
  const std::string token_file = absl::GetFlag(FLAGS_auth_token_file);
  if (!token.empty() && !token_file.empty()) {
    return absl::InvalidArgumentError("give --auth_token_file or --auth_token, not both");
  }
  if (!token_file.empty()) {
    absl::StatusOr<std::string> read = ReadTokenFile(token_file);
    if (!read.ok()) return read.status();
    token = *std::move(read);
  }
  if (!token.empty()) {
    // gRPC runs an AuthMetadataProcessor only on secure ports; a token in
    // clear text would not be worth checking anyway.
    if (!files.enabled()) {
      return absl::InvalidArgumentError("a bearer token needs TLS: give --tls_cert and --tls_key");
    }
    credentials->SetAuthMetadataProcessor(std::make_shared<BearerTokenAuthenticator>(token));
  }
  return credentials;
}

}  // namespace jamba::security
