// Bearer-token authentication of the public API: every call must carry
// metadata "authorization: Bearer <token>" (the scheme in any case, the
// token exactly); others fail with UNAUTHENTICATED before reaching the
// service. The comparison takes the same time whatever the presented
// token: both sides are hashed (SHA-256) and the digests compared with
// CRYPTO_memcmp, so neither the token's content nor its length leaks.
//
// Policy: grpc.health.v1.Health is exempt (Kubernetes probes cannot send
// headers); everything else, reflection included, needs the token. The
// token is removed from the metadata the service sees. Thread-safe.
#pragma once

#include <grpcpp/security/auth_metadata_processor.h>

#include <array>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jamba::security {

// Reads a token file: the first line, surrounding whitespace removed.
// InvalidArgument when unreadable or empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

class BearerTokenAuthenticator final : public grpc::AuthMetadataProcessor {
 public:
  // `token` must not be empty.
  explicit BearerTokenAuthenticator(absl::string_view token);

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  // True when `header` (an authorization metadata value) carries the token.
  bool Accepts(absl::string_view header) const;

 private:
  std::array<unsigned char, 32> digest_;
};

}  // namespace jamba::security
