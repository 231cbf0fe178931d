// End to end, expert-worker failures: a router over 2 expert shards, each
// served by 2 replica processes (tests/e2e/e2e_cluster). A replica killed
// (SIGKILL) or drained (SIGTERM) mid-generation loses nothing: every
// request completes with the output of a run without the failure. With
// every replica of a shard gone, the affected streams end within 2 s with
// UNAVAILABLE and readiness turns NOT_SERVING; a replica restarted on its
// port makes it SERVING again and generation works.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"
#include "jamba/v1/jamba.grpc.pb.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/testing/fixtures.h"

namespace jamba {
namespace {

using jamba::v1::GenerateRequest;

constexpr int kStreams = 4;
constexpr int kShards = 2;
constexpr int kReplicas = 2;

// One GenerateStream call on its own thread.
class StreamCall {
 public:
  StreamCall(std::unique_ptr<jamba::v1::JambaService::Stub> stub, GenerateRequest request)
      : stub_(std::move(stub)), request_(std::move(request)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~StreamCall() { Join(); }

  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  int tokens() const { return tokens_.load(); }
  // After Join.
  const grpc::Status& status() const { return status_; }
  const std::vector<int32_t>& ids() const { return ids_; }
  const std::vector<float>& logprobs() const { return logprobs_; }
  absl::Time ended() const { return ended_; }

 private:
  void Run() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    auto reader = stub_->GenerateStream(&context, request_);
    jamba::v1::GenerateStreamResponse message;
    while (reader->Read(&message)) {
      if (!message.has_chunk()) continue;
      for (const auto& token : message.chunk().tokens()) {
        ids_.push_back(token.token_id());
        logprobs_.push_back(token.logprob());
      }
      tokens_.store(static_cast<int>(ids_.size()));
    }
    status_ = reader->Finish();
    ended_ = absl::Now();
  }

  std::unique_ptr<jamba::v1::JambaService::Stub> stub_;
  GenerateRequest request_;
  std::atomic<int> tokens_{0};
  grpc::Status status_;
  std::vector<int32_t> ids_;
  std::vector<float> logprobs_;
  absl::Time ended_;
  std::thread thread_;
};

GenerateRequest Greedy(int i, int max_new_tokens) {
  GenerateRequest request;
  request.set_text(absl::StrCat("Stream ", i, " of the failover test: once upon a time"));
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_max_new_tokens(max_new_tokens);
  request.mutable_sampling()->set_ignore_eos(true);
  request.mutable_sampling()->set_logprobs(1);
  return request;
}

class FailoverE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string tiny = testing::SourceDir() + "/tests/testdata/tiny_model";
    ASSERT_TRUE(cluster_.Start(tiny, kShards, {"--health_interval_ms", "500"}, kReplicas).ok());
  }
  void TearDown() override { cluster_.Stop(); }

  // Worker index of replica r of shard s.
  static int Worker(int shard, int replica) { return shard * kReplicas + replica; }

  // Starts kStreams concurrent streams and waits until each has a few tokens.
  std::vector<std::unique_ptr<StreamCall>> StartStreams(int max_new_tokens) {
    std::vector<std::unique_ptr<StreamCall>> calls;
    for (int i = 0; i < kStreams; ++i) {
      calls.push_back(std::make_unique<StreamCall>(cluster_.NewStub(), Greedy(i, max_new_tokens)));
    }
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    for (auto& call : calls) {
      while (call->tokens() < 3 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(2));
    }
    return calls;
  }

  // Each stream's request run alone on an intact cluster.
  void Reference(int max_new_tokens, std::vector<std::vector<int32_t>>* ids,
                 std::vector<std::vector<float>>* logprobs) {
    for (int i = 0; i < kStreams; ++i) {
      StreamCall alone(cluster_.NewStub(), Greedy(i, max_new_tokens));
      alone.Join();
      ASSERT_TRUE(alone.status().ok()) << alone.status().error_message();
      ids->push_back(alone.ids());
      logprobs->push_back(alone.logprobs());
    }
  }

  // Kills a replica mid-generation with `signal`; every stream completes
  // with the reference output.
  void LoseOneReplicaMidGeneration(int signal) {
    constexpr int kTokens = 160;
    std::vector<std::vector<int32_t>> want_ids;
    std::vector<std::vector<float>> want_logprobs;
    Reference(kTokens, &want_ids, &want_logprobs);
    std::vector<std::unique_ptr<StreamCall>> calls = StartStreams(kTokens);
    for (auto& call : calls) {
      ASSERT_GT(call->tokens(), 0);
      ASSERT_LT(call->tokens(), kTokens) << "generation ended before the replica was lost";
    }
    const int exit_code = cluster_.worker(Worker(1, 0)).Stop(signal);
    if (signal == SIGTERM) {
      EXPECT_EQ(exit_code, 0) << cluster_.worker(Worker(1, 0)).log();
    }
    int unfinished = 0;
    for (auto& call : calls) unfinished += call->tokens() < kTokens ? 1 : 0;
    EXPECT_GT(unfinished, 0) << "every stream ended before the replica was gone";
    for (int i = 0; i < kStreams; ++i) {
      calls[i]->Join();
      ASSERT_TRUE(calls[i]->status().ok())
          << "stream " << i << ": " << calls[i]->status().error_message() << "\n"
          << cluster_.router().log();
      EXPECT_EQ(calls[i]->ids(), want_ids[i]) << "stream " << i;
      EXPECT_EQ(calls[i]->logprobs(), want_logprobs[i]) << "stream " << i;
    }
    EXPECT_TRUE(cluster_.WaitServing(absl::Seconds(1)).ok()) << "one replica is enough to serve";
  }

  testing::LocalCluster cluster_;
};

TEST_F(FailoverE2ETest, KilledReplicaMidGenerationLosesNothing) {
  LoseOneReplicaMidGeneration(SIGKILL);
}

TEST_F(FailoverE2ETest, DrainedReplicaMidGenerationLosesNothing) {
  LoseOneReplicaMidGeneration(SIGTERM);
}

TEST_F(FailoverE2ETest, LostShardFailsFastThenRecoversOnRestart) {
  constexpr int kTokens = 400;
  StreamCall reference(cluster_.NewStub(), Greedy(0, 8));
  reference.Join();
  ASSERT_TRUE(reference.status().ok()) << reference.status().error_message();
  std::vector<std::unique_ptr<StreamCall>> calls = StartStreams(kTokens);
  for (auto& call : calls) ASSERT_LT(call->tokens(), kTokens);
  cluster_.worker(Worker(1, 0)).Stop(SIGKILL);
  cluster_.worker(Worker(1, 1)).Stop(SIGKILL);
  const absl::Time killed = absl::Now();
  for (int i = 0; i < kStreams; ++i) {
    calls[i]->Join();
    EXPECT_EQ(calls[i]->status().error_code(), grpc::StatusCode::UNAVAILABLE)
        << "stream " << i << ": " << calls[i]->status().error_message();
    EXPECT_LT(calls[i]->ended() - killed, absl::Seconds(2)) << "stream " << i;
  }
  EXPECT_TRUE(cluster_.WaitHealth(false, absl::Seconds(5)).ok());

  // New requests fail fast too while the shard is gone.
  const absl::Time asked = absl::Now();
  StreamCall late(cluster_.NewStub(), Greedy(0, 8));
  late.Join();
  EXPECT_EQ(late.status().error_code(), grpc::StatusCode::UNAVAILABLE)
      << late.status().error_message();
  EXPECT_LT(absl::Now() - asked, absl::Seconds(2));

  // One replica back on its port: SERVING again, and generation works.
  ASSERT_TRUE(cluster_.RestartWorker(Worker(1, 1)).ok());
  ASSERT_TRUE(cluster_.WaitHealth(true, absl::Seconds(10)).ok()) << cluster_.router().log();
  StreamCall again(cluster_.NewStub(), Greedy(0, 8));
  again.Join();
  ASSERT_TRUE(again.status().ok()) << again.status().error_message();
  EXPECT_EQ(again.ids(), reference.ids());
  EXPECT_EQ(again.logprobs(), reference.logprobs());
}

}  // namespace
}  // namespace jamba
