#include "security/tls_credentials.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace jamba::security {
namespace {

using grpc::experimental::FileWatcherCertificateProvider;

// The file must be readable and hold a PEM block, so that a typo fails at
// start instead of at every handshake.
absl::Status CheckPemFile(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (!absl::StrContains(head, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is not a PEM file"));
  }
  return absl::OkStatus();
}

absl::Status CheckFiles(const TlsFiles& files, const std::string& prefix, bool need_identity,
                        bool need_ca) {
  if (files.cert.empty() != files.key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "_cert and ", prefix, "_key go together"));
  }
  if (need_identity && files.cert.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS needs ", prefix, "_cert and ", prefix, "_key"));
  }
  if (need_ca && files.ca.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("TLS needs ", prefix, "_ca"));
  }
  if (files.reload_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("the certificate reload interval must be at least 1 s");
  }
  if (!files.cert.empty()) {
    if (absl::Status s = CheckPemFile(files.cert, prefix + "_cert"); !s.ok()) return s;
    if (absl::Status s = CheckPemFile(files.key, prefix + "_key"); !s.ok()) return s;
  }
  if (!files.ca.empty()) {
    if (absl::Status s = CheckPemFile(files.ca, prefix + "_ca"); !s.ok()) return s;
  }
  return absl::OkStatus();
}

unsigned int RefreshSeconds(const TlsFiles& files) {
  return static_cast<unsigned int>(
      std::max<int64_t>(1, absl::ToInt64Seconds(files.reload_interval)));
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsServerCredentials(
    const TlsFiles& files, const std::string& flag_prefix) {
  if (absl::Status s = CheckFiles(files, flag_prefix, /*need_identity=*/true, /*need_ca=*/false);
      !s.ok()) {
    return s;
  }
  const bool mutual = !files.ca.empty();
  auto provider = mutual ? std::make_shared<FileWatcherCertificateProvider>(
                               files.key, files.cert, files.ca, RefreshSeconds(files))
                         : std::make_shared<FileWatcherCertificateProvider>(files.key, files.cert,
                                                                            RefreshSeconds(files));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (mutual) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsChannelCredentials(
    const TlsFiles& files, const std::string& flag_prefix) {
  if (absl::Status s = CheckFiles(files, flag_prefix, /*need_identity=*/false, /*need_ca=*/true);
      !s.ok()) {
    return s;
  }
  auto provider = files.cert.empty() ? std::make_shared<FileWatcherCertificateProvider>(
                                           files.ca, RefreshSeconds(files))
                                     : std::make_shared<FileWatcherCertificateProvider>(
                                           files.key, files.cert, files.ca, RefreshSeconds(files));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  if (!files.cert.empty()) options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace jamba::security
