// End to end: a router driving 2 jamba-mixer-worker replicas that share 2
// expert workers, against a router with the mixer and experts in-process,
// over the bundled tiny model. Output must be bit-identical; requests must
// spread over both replicas; a replica that dies fails only the requests
// pinned to it.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "jamba/internal/v1/mixer.grpc.pb.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/testing/fixtures.h"

namespace jamba {
namespace {

using jamba::v1::GenerateRequest;
using jamba::v1::GenerateResponse;

const char* const kPrompts[] = {
    "The little robot walked into the garden and",
    "Once upon a time",
    "12345 apples, 678 pears",
    "A B C D E F G",
};

class MixerE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string tiny = testing::SourceDir() + "/tests/testdata/tiny_model";
    ASSERT_TRUE(local_.Start(tiny, 0).ok());
    const absl::Status started = remote_.Start(tiny, 2, {}, /*replicas=*/1, /*mixers=*/2);
    ASSERT_TRUE(started.ok()) << started;
  }
  void TearDown() override {
    remote_.Stop();
    local_.Stop();
  }

  static GenerateRequest Greedy(const std::string& text, int max_new_tokens) {
    GenerateRequest request;
    request.set_text(text);
    request.mutable_sampling()->set_temperature(0);
    request.mutable_sampling()->set_max_new_tokens(max_new_tokens);
    request.mutable_sampling()->set_ignore_eos(true);
    request.mutable_sampling()->set_logprobs(3);
    return request;
  }

  // Runs every request at once against `cluster`.
  static void CallAll(testing::LocalCluster& cluster, const std::vector<GenerateRequest>& requests,
                      std::vector<GenerateResponse>* responses,
                      std::vector<grpc::Status>* statuses) {
    responses->assign(requests.size(), {});
    statuses->assign(requests.size(), {});
    std::vector<std::thread> threads;
    for (size_t i = 0; i < requests.size(); ++i) {
      threads.emplace_back([&, i] {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
        (*statuses)[i] = cluster.NewStub()->Generate(&context, requests[i], &(*responses)[i]);
      });
    }
    for (auto& thread : threads) thread.join();
  }

  static jamba::internal::v1::MixerInfoResponse Info(const std::string& address) {
    auto stub = jamba::internal::v1::MixerService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    jamba::internal::v1::MixerInfoResponse info;
    EXPECT_TRUE(stub->GetMixerInfo(&context, {}, &info).ok()) << address;
    return info;
  }

  static void ExpectIdentical(const GenerateResponse& remote, const GenerateResponse& local,
                              const std::string& what) {
    EXPECT_EQ(std::vector<int32_t>(remote.token_ids().begin(), remote.token_ids().end()),
              std::vector<int32_t>(local.token_ids().begin(), local.token_ids().end()))
        << what;
    ASSERT_EQ(remote.tokens_size(), local.tokens_size()) << what;
    for (int i = 0; i < remote.tokens_size(); ++i) {
      // Bit-identical: the same f32 value, not merely close.
      EXPECT_EQ(remote.tokens(i).logprob(), local.tokens(i).logprob()) << what << " token " << i;
      ASSERT_EQ(remote.tokens(i).top_logprobs_size(), 3);
      for (int j = 0; j < 3; ++j) {
        EXPECT_EQ(remote.tokens(i).top_logprobs(j).token_id(),
                  local.tokens(i).top_logprobs(j).token_id());
        EXPECT_EQ(remote.tokens(i).top_logprobs(j).logprob(),
                  local.tokens(i).top_logprobs(j).logprob());
      }
    }
  }

  testing::LocalCluster remote_;  // router + 2 mixer workers + 2 expert workers
  testing::LocalCluster local_;   // router with everything in-process
};

TEST_F(MixerE2ETest, TwoReplicasMatchTheInProcessMixerExactlyAndShareTheLoad) {
  std::vector<GenerateRequest> requests;
  for (int round = 0; round < 2; ++round) {
    for (const char* prompt : kPrompts) requests.push_back(Greedy(prompt, 12 + 4 * round));
  }
  std::vector<GenerateResponse> remote, local;
  std::vector<grpc::Status> remote_status, local_status;
  CallAll(remote_, requests, &remote, &remote_status);
  CallAll(local_, requests, &local, &local_status);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(remote_status[i].ok()) << remote_status[i].error_message();
    ASSERT_TRUE(local_status[i].ok()) << local_status[i].error_message();
    EXPECT_EQ(remote[i].token_ids_size(),
              static_cast<int>(requests[i].sampling().max_new_tokens()));
    ExpectIdentical(remote[i], local[i], requests[i].text());
  }
  // One at a time too (each request alone in its batch, on either replica).
  for (const char* prompt : kPrompts) {
    std::vector<GenerateResponse> one;
    std::vector<grpc::Status> status;
    CallAll(remote_, {Greedy(prompt, 8)}, &one, &status);
    ASSERT_TRUE(status[0].ok()) << status[0].error_message();
    std::vector<GenerateResponse> expected_one;
    CallAll(local_, {Greedy(prompt, 8)}, &expected_one, &status);
    ASSERT_TRUE(status[0].ok());
    ExpectIdentical(one[0], expected_one[0], prompt);
  }
  uint64_t opened = 0;
  for (const std::string& address : remote_.mixer_addresses()) {
    const auto info = Info(address);
    EXPECT_GE(info.sequences_opened(), 3u) << address << " took too few of the 12 requests";
    EXPECT_GT(info.steps(), 0u) << address;
    EXPECT_EQ(info.open_sequences(), 0) << address << " still holds finished sequences";
    opened += info.sequences_opened();
  }
  EXPECT_EQ(opened, requests.size() + 4);
}

TEST_F(MixerE2ETest, AReplicaDyingFailsOnlyTheRequestsPinnedToIt) {
  // Long generations, so that the kill lands while all of them run.
  constexpr int kTokens = 1500;
  struct Result {
    grpc::Status status;
    std::vector<int32_t> ids;
  };
  std::vector<Result> results(4);
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(300));
      auto stub = remote_.NewStub();
      auto reader = stub->GenerateStream(&context, Greedy(kPrompts[i], kTokens));
      jamba::v1::GenerateStreamResponse message;
      bool counted = false;
      while (reader->Read(&message)) {
        if (!message.has_chunk()) continue;
        results[i].ids.insert(results[i].ids.end(), message.chunk().token_ids().begin(),
                              message.chunk().token_ids().end());
        if (!counted && !results[i].ids.empty()) {
          counted = true;
          started.fetch_add(1);
        }
      }
      results[i].status = reader->Finish();
    });
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  while (started.load() < 4 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  if (started.load() < 4) {
    for (auto& thread : threads) thread.join();
    FAIL() << "only " << started.load() << " of 4 generations started";
  }
  const auto before = Info(remote_.mixer_addresses()[1]);
  EXPECT_EQ(before.open_sequences(), 2) << "4 requests should be split 2 and 2";
  EXPECT_EQ(remote_.mixer(1).Stop(9), 128 + 9);
  for (auto& thread : threads) thread.join();

  int ok = 0, lost = 0;
  for (int i = 0; i < 4; ++i) {
    if (results[i].status.ok()) {
      ++ok;
      EXPECT_EQ(results[i].ids.size(), static_cast<size_t>(kTokens));
      continue;
    }
    ++lost;
    EXPECT_EQ(results[i].status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << results[i].status.error_message();
    EXPECT_TRUE(absl::StrContains(results[i].status.error_message(), "mixer replica"))
        << results[i].status.error_message();
    EXPECT_LT(results[i].ids.size(), static_cast<size_t>(kTokens));
  }
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(lost, 2);

  // New requests go to the surviving replica and match the in-process mixer.
  std::vector<GenerateResponse> after, expected;
  std::vector<grpc::Status> status;
  CallAll(remote_, {Greedy(kPrompts[0], 10), Greedy(kPrompts[1], 10)}, &after, &status);
  ASSERT_TRUE(status[0].ok()) << status[0].error_message();
  ASSERT_TRUE(status[1].ok()) << status[1].error_message();
  CallAll(local_, {Greedy(kPrompts[0], 10), Greedy(kPrompts[1], 10)}, &expected, &status);
  ExpectIdentical(after[0], expected[0], kPrompts[0]);
  ExpectIdentical(after[1], expected[1], kPrompts[1]);
}

}  // namespace
}  // namespace jamba
