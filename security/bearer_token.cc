#include "security/bearer_token.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace jamba::security {
namespace {

constexpr absl::string_view kScheme = "bearer ";
constexpr absl::string_view kHealthPrefix = "/grpc.health.v1.Health/";

std::array<unsigned char, 32> Digest(absl::string_view bytes) {
  std::array<unsigned char, 32> out;
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out.data());
  return out;
}

absl::string_view ToView(const grpc::string_ref& ref) {
  return absl::string_view(ref.data(), ref.size());
}

}  // namespace

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read the token file ", path));
  std::string line;
  std::getline(in, line);
  absl::StripAsciiWhitespace(&line);
  if (line.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the token file ", path, " is empty"));
  }
  return line;
}

BearerTokenAuthenticator::BearerTokenAuthenticator(absl::string_view token)
    : digest_(Digest(token)) {
  JAMBA_CHECK(!token.empty());
}

bool BearerTokenAuthenticator::Accepts(absl::string_view header) const {
  if (header.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(header.substr(0, kScheme.size()), kScheme)) {
    return false;
  }
  const std::array<unsigned char, 32> presented = Digest(header.substr(kScheme.size()));
  return CRYPTO_memcmp(presented.data(), digest_.data(), digest_.size()) == 0;
}

grpc::Status BearerTokenAuthenticator::Process(const InputMetadata& auth_metadata,
                                               grpc::AuthContext* /*context*/,
                                               OutputMetadata* consumed_auth_metadata,
                                               OutputMetadata* /*response_metadata*/) {
  auto path = auth_metadata.find(":path");
  if (path != auth_metadata.end() && absl::StartsWith(ToView(path->second), kHealthPrefix)) {
    return grpc::Status::OK;
  }
  auto range = auth_metadata.equal_range("authorization");
  for (auto it = range.first; it != range.second; ++it) {
    if (Accepts(ToView(it->second))) {
      consumed_auth_metadata->emplace("authorization", std::string(ToView(it->second)));
      return grpc::Status::OK;
    }
  }
  const bool missing = range.first == range.second;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      missing ? "missing \"authorization: Bearer <token>\" metadata"
                              : "the bearer token is not valid");
}

}  // namespace jamba::security
