// Command-line flags for clients of the public API (jamba-client,
// jamba-load): a channel with TLS when --tls_ca is given (and a client
// certificate with --tls_cert/--tls_key), and the bearer token from
// --token_file or --token added to every call.
//
//   --tls_ca FILE           verify the server against this PEM CA (TLS on)
//   --tls_cert/--tls_key    present this certificate (mutual TLS)
//   --tls_server_name NAME  expect this name in the server's certificate
//                           instead of the target's host
//   --token_file/--token    send "authorization: Bearer <token>"
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace jamba::security {

class ClientSecurity {
 public:
  // Reads the flags; InvalidArgument names a bad one.
  static absl::StatusOr<ClientSecurity> FromFlags();

  std::shared_ptr<grpc::Channel> CreateChannel(const std::string& target) const;
  // Adds the token, if any, to a call's metadata.
  void Apply(grpc::ClientContext* context) const;

 private:
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::string server_name_;
  std::string authorization_;
};

}  // namespace jamba::security
