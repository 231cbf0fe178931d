#include "security/client_flags.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "security/bearer_token.h"
#include "security/tls_credentials.h"

ABSL_FLAG(std::string, tls_ca, "", "verify the server against this PEM CA (enables TLS)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (with --tls_ca, mutual TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "name the server's certificate must carry (default: the target's host)");
ABSL_FLAG(std::string, token_file, "", "send \"authorization: Bearer <token>\" from this file");
ABSL_FLAG(std::string, token, "", "send \"authorization: Bearer <token>\" (visible in ps)");

namespace jamba::security {

absl::StatusOr<ClientSecurity> ClientSecurity::FromFlags() {
  ClientSecurity security;
  TlsFiles files;
  files.ca = absl::GetFlag(FLAGS_tls_ca);
  files.cert = absl::GetFlag(FLAGS_tls_cert);
  files.key = absl::GetFlag(FLAGS_tls_key);
  if (files.enabled()) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls =
        TlsChannelCredentials(files, "--tls");
    if (!tls.ok()) return tls.status();
    security.credentials_ = *std::move(tls);
  } else {
    security.credentials_ = grpc::InsecureChannelCredentials();
  }
  security.server_name_ = absl::GetFlag(FLAGS_tls_server_name);
  std::string token = absl::GetFlag(FLAGS_token);
  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  if (!token.empty() && !token_file.empty()) {
    return absl::InvalidArgumentError("give --token_file or --token, not both");
  }
  if (!token_file.empty()) {
    absl::StatusOr<std::string> read = ReadTokenFile(token_file);
    if (!read.ok()) return read.status();
    token = *std::move(read);
  }
  if (!token.empty()) security.authorization_ = absl::StrCat("Bearer ", token);
  return security;
}

std::shared_ptr<grpc::Channel> ClientSecurity::CreateChannel(const std::string& target) const {
  grpc::ChannelArguments args;
  if (!server_name_.empty()) args.SetSslTargetNameOverride(server_name_);
  return grpc::CreateCustomChannel(target, credentials_, args);
}

void ClientSecurity::Apply(grpc::ClientContext* context) const {
  if (!authorization_.empty()) context->AddMetadata("authorization", authorization_);
}

}  // namespace jamba::security
