#include "security/bearer_token.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace jamba::security {
namespace {

TEST(BearerTokenTest, AcceptsOnlyTheExactTokenAfterTheScheme) {
  BearerTokenAuthenticator auth("s3cret-Token");
  EXPECT_TRUE(auth.Accepts("Bearer s3cret-Token"));
  EXPECT_TRUE(auth.Accepts("bearer s3cret-Token"));
  EXPECT_TRUE(auth.Accepts("BEARER s3cret-Token"));
  for (const char* bad : {"", "Bearer", "Bearer ", "Bearer s3cret-token", "Bearer s3cret-Toke",
                          "Bearer s3cret-Token ", "Bearer  s3cret-Token", "Basic s3cret-Token",
                          "s3cret-Token", "Bearers3cret-Token", "Bearer S3CRET-TOKEN"}) {
    EXPECT_FALSE(auth.Accepts(bad)) << "'" << bad << "'";
  }
}

TEST(BearerTokenTest, ProcessChecksEveryCallButHealth) {
  BearerTokenAuthenticator auth("zq9x");
  const std::string generate = "/jamba.v1.JambaService/Generate";
  const std::string health = "/grpc.health.v1.Health/Check";
  const std::string good = "Bearer zq9x", bad = "Bearer zq9y";
  grpc::AuthMetadataProcessor::OutputMetadata consumed, response;

  grpc::AuthMetadataProcessor::InputMetadata none = {{":path", generate}};
  grpc::Status status = auth.Process(none, nullptr, &consumed, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(status.error_message().find("missing"), std::string::npos);

  grpc::AuthMetadataProcessor::InputMetadata wrong = {{":path", generate}, {"authorization", bad}};
  status = auth.Process(wrong, nullptr, &consumed, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message().find("zq9"), std::string::npos) << "echoes a token";

  grpc::AuthMetadataProcessor::InputMetadata right = {{":path", generate}, {"authorization", good}};
  EXPECT_TRUE(auth.Process(right, nullptr, &consumed, &response).ok());
  EXPECT_EQ(consumed.count("authorization"), 1u);

  grpc::AuthMetadataProcessor::InputMetadata probe = {{":path", health}};
  EXPECT_TRUE(auth.Process(probe, nullptr, &consumed, &response).ok());
}

TEST(BearerTokenTest, ReadsTheFirstLineOfATokenFile) {
  const std::string path = ::testing::TempDir() + "/token_test";
  std::ofstream(path) << "  abc123  \nsecond line\n";
  absl::StatusOr<std::string> token = ReadTokenFile(path);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "abc123");
  std::ofstream(path) << "\n";
  EXPECT_EQ(ReadTokenFile(path).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTokenFile(path + ".missing").status().code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace jamba::security
