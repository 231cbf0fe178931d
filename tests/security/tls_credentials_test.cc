// Flag errors of the TLS credential builders; the handshakes themselves are
// tested end to end in tests/e2e/security_e2e_test.cc.
#include "security/tls_credentials.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace jamba::security {
namespace {

class TlsCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One folder per test: ctest runs the cases as parallel processes.
    dir_ = ::testing::TempDir() + "/tls_credentials_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/a.pem")
        << "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    std::ofstream(dir_ + "/not.pem") << "hello\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TlsCredentialsTest, ServerNeedsCertificateAndKey) {
  TlsFiles files;
  files.ca = dir_ + "/a.pem";
  auto credentials = TlsServerCredentials(files, "--internal_tls");
  EXPECT_EQ(credentials.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(credentials.status().message().find("--internal_tls_cert"), std::string::npos);
  files.cert = dir_ + "/a.pem";
  EXPECT_EQ(TlsServerCredentials(files, "--internal_tls").status().code(),
            absl::StatusCode::kInvalidArgument);  // key missing
}

TEST_F(TlsCredentialsTest, ChannelNeedsTheCa) {
  TlsFiles files;
  files.cert = dir_ + "/a.pem";
  files.key = dir_ + "/a.pem";
  auto credentials = TlsChannelCredentials(files, "--tls");
  EXPECT_EQ(credentials.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(credentials.status().message().find("--tls_ca"), std::string::npos);
}

TEST_F(TlsCredentialsTest, NamesMissingAndNonPemFiles) {
  TlsFiles files;
  files.ca = dir_ + "/missing.pem";
  auto missing = TlsChannelCredentials(files, "--tls");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("missing.pem"), std::string::npos);
  files.ca = dir_ + "/not.pem";
  auto not_pem = TlsChannelCredentials(files, "--tls");
  EXPECT_EQ(not_pem.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(not_pem.status().message().find("not a PEM"), std::string::npos);
  files.ca = dir_ + "/a.pem";
  EXPECT_TRUE(TlsChannelCredentials(files, "--tls").ok());
}

TEST_F(TlsCredentialsTest, RejectsAReloadIntervalUnderASecond) {
  TlsFiles files;
  files.ca = dir_ + "/a.pem";
  files.reload_interval = absl::Milliseconds(10);
  EXPECT_EQ(TlsChannelCredentials(files, "--tls").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace jamba::security
