// End to end: a fatal engine error ends the process with exit status 3 and
// health never says SERVING for the broken engine. The fault is real: the
// failpoint model_forward (core/failpoint.h, enabled through the
// JAMBA_FAILPOINTS environment the processes inherit) makes the model's
// forward pass fail inside the router's or the mixer worker's engine.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/testing/fixtures.h"

namespace jamba {
namespace {

std::string TinyModel() { return testing::SourceDir() + "/tests/testdata/tiny_model"; }

// Sets JAMBA_FAILPOINTS for the processes started while it lives.
class ScopedFailpoints {
 public:
  explicit ScopedFailpoints(const char* spec) { setenv("JAMBA_FAILPOINTS", spec, 1); }
  ~ScopedFailpoints() { unsetenv("JAMBA_FAILPOINTS"); }
};

grpc::Status Generate(testing::LocalCluster& cluster) {
  jamba::v1::GenerateRequest request;
  request.set_text("Once upon a time");
  request.mutable_sampling()->set_max_new_tokens(4);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  jamba::v1::GenerateResponse response;
  return cluster.NewStub()->Generate(&context, request, &response);
}

// The exit code once `process` ended by itself within `timeout`; -1 if it
// still runs.
int WaitForExit(testing::Subprocess& process, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (process.running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  return process.running() ? -1 : process.Stop();
}

TEST(FatalE2ETest, RouterExitsThreeWhenItsEngineBreaks) {
  testing::LocalCluster cluster;
  {
    ScopedFailpoints failpoints("model_forward");
    ASSERT_TRUE(cluster.Start(TinyModel(), 0).ok());
  }
  const grpc::Status status = Generate(cluster);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL) << status.error_message();
  EXPECT_EQ(WaitForExit(cluster.router(), absl::Seconds(20)), 3) << cluster.router().log();
  EXPECT_NE(cluster.router().log().find("fatal: the engine is broken"), std::string::npos)
      << cluster.router().log();
}

TEST(FatalE2ETest, MixerWorkerExitsThreeAndTheRouterStaysLive) {
  testing::LocalCluster cluster;
  {
    ScopedFailpoints failpoints("model_forward");
    ASSERT_TRUE(cluster.Start(TinyModel(), 1, {}, 1, /*mixers=*/1).ok());
  }
  EXPECT_FALSE(Generate(cluster).ok());
  EXPECT_EQ(WaitForExit(cluster.mixer(0), absl::Seconds(20)), 3) << cluster.mixer(0).log();
  EXPECT_NE(cluster.mixer(0).log().find("fatal: the mixer is broken"), std::string::npos)
      << cluster.mixer(0).log();
  // The router lost its only mixer: not ready, but live (its own engine works).
  EXPECT_TRUE(cluster.WaitHealth(false, absl::Seconds(20)).ok());
  EXPECT_TRUE(testing::WaitHealthServing(cluster.router_address(), "", absl::Seconds(5)).ok());
  EXPECT_TRUE(cluster.router().running());
}

}  // namespace
}  // namespace jamba
