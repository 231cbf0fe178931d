// End to end: the exit status of a drain. On SIGTERM a router or mixer
// worker lets the work in flight finish within its drain budget and exits
// 0; work still running when the budget ends is cut off and the exit status
// is 2. Over the bundled tiny model, with long generations so that they are
// in flight when the signal comes.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/testing/fixtures.h"

namespace jamba {
namespace {

// One streaming generation on its own thread; `started` turns true with its
// first token.
class Generation {
 public:
  Generation(testing::LocalCluster& cluster, int max_new_tokens) {
    thread_ = std::thread([this, &cluster, max_new_tokens] {
      jamba::v1::GenerateRequest request;
      request.set_text("Once upon a time");
      request.mutable_sampling()->set_temperature(0);
      request.mutable_sampling()->set_max_new_tokens(max_new_tokens);
      request.mutable_sampling()->set_ignore_eos(true);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(300));
      auto stub = cluster.NewStub();
      auto reader = stub->GenerateStream(&context, request);
      jamba::v1::GenerateStreamResponse message;
      while (reader->Read(&message)) {
        if (message.has_chunk()) tokens_ += message.chunk().token_ids_size();
        if (tokens_ > 0) started_ = true;
      }
      status_ = reader->Finish();
    });
  }
  ~Generation() { Join(); }

  // True once the first token arrived (waits up to 60 s).
  bool WaitStarted() {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!started_ && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
    return started_;
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  const grpc::Status& status() const { return status_; }
  int tokens() const { return tokens_; }

 private:
  std::atomic<bool> started_{false};
  std::atomic<int> tokens_{0};
  grpc::Status status_;
  std::thread thread_;
};

std::string Tiny() { return testing::SourceDir() + "/tests/testdata/tiny_model"; }

// Tokens that keep a generation running for seconds on the tiny model:
// in-process, and through a mixer worker and an expert worker.
constexpr int kLong = 3500;
constexpr int kLongRemote = 1000;

TEST(DrainE2ETest, RouterFinishesWorkInFlightAndExitsZero) {
  testing::LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Tiny(), 0, {"--drain_seconds=120"}).ok());
  Generation generation(cluster, kLong);
  ASSERT_TRUE(generation.WaitStarted());
  EXPECT_EQ(cluster.router().Stop(SIGTERM, absl::Seconds(150)), 0) << cluster.router().log();
  generation.Join();
  EXPECT_TRUE(generation.status().ok()) << generation.status().error_message();
  EXPECT_EQ(generation.tokens(), kLong);
  cluster.Stop();
}

TEST(DrainE2ETest, RouterCutOffByItsDrainBudgetExitsTwo) {
  testing::LocalCluster cluster;
  ASSERT_TRUE(cluster.Start(Tiny(), 0, {"--drain_seconds=0"}).ok());
  Generation generation(cluster, kLong);
  ASSERT_TRUE(generation.WaitStarted());
  EXPECT_EQ(cluster.router().Stop(SIGTERM), 2) << cluster.router().log();
  generation.Join();
  EXPECT_FALSE(generation.status().ok());
  EXPECT_LT(generation.tokens(), kLong);
  cluster.Stop();
}

TEST(DrainE2ETest, MixerWorkerFinishesItsSequencesAndExitsZero) {
  testing::LocalCluster cluster;
  cluster.set_mixer_flags({"--drain_timeout=120s"});
  ASSERT_TRUE(cluster.Start(Tiny(), 1, {}, /*replicas=*/1, /*mixers=*/1).ok());
  Generation generation(cluster, kLongRemote);
  ASSERT_TRUE(generation.WaitStarted());
  EXPECT_EQ(cluster.mixer(0).Stop(SIGTERM, absl::Seconds(150)), 0) << cluster.mixer(0).log();
  generation.Join();
  EXPECT_TRUE(generation.status().ok()) << generation.status().error_message();
  EXPECT_EQ(generation.tokens(), kLongRemote);
  cluster.Stop();
}

TEST(DrainE2ETest, MixerWorkerCutOffByItsDrainBudgetExitsTwo) {
  testing::LocalCluster cluster;
  cluster.set_mixer_flags({"--drain_timeout=0s"});
  ASSERT_TRUE(cluster.Start(Tiny(), 1, {}, /*replicas=*/1, /*mixers=*/1).ok());
  Generation generation(cluster, kLongRemote);
  ASSERT_TRUE(generation.WaitStarted());
  EXPECT_EQ(cluster.mixer(0).Stop(SIGTERM), 2) << cluster.mixer(0).log();
  generation.Join();
  EXPECT_EQ(generation.status().error_code(), grpc::StatusCode::UNAVAILABLE)
      << generation.status().error_message();
  EXPECT_LT(generation.tokens(), kLongRemote);
  cluster.Stop();
}

}  // namespace
}  // namespace jamba
