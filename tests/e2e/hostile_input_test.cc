// End to end: a table of hostile requests against a real router with two
// expert-worker processes (tests/e2e/hostile_cases.cc), public API and the
// internal Compute stream of a worker. Every row must get its status and a
// message naming the field, while a healthy GenerateStream running all the
// time keeps producing exactly its reference output; afterwards every
// process still runs and answers. Latencies are printed, not asserted
// beyond a generous sanity bound (no timed assertions in tests).
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"
#include "jamba/internal/v1/expert.grpc.pb.h"
#include "model/config.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/e2e/hostile_cases.h"
#include "tests/testing/fixtures.h"

namespace jamba {
namespace {

using jamba::internal::v1::ExpertRequest;
using jamba::internal::v1::ExpertResponse;
using jamba::v1::GenerateRequest;

constexpr size_t kRouterMaxReceiveBytes = 4 << 20;  // router_server.cc
constexpr absl::Duration kSanityBound = absl::Seconds(10);

struct Shared {
  testing::LocalCluster cluster;
  model::JambaConfig config;
  absl::Status setup;
};
Shared* shared = nullptr;

GenerateRequest HealthyRequest() {
  GenerateRequest r;
  r.set_text("The little robot walked into the garden and");
  r.mutable_sampling()->set_temperature(0);
  r.mutable_sampling()->set_max_new_tokens(40);
  r.mutable_sampling()->set_ignore_eos(true);
  return r;
}

// Streams `request`; the generated ids, or the error.
absl::StatusOr<std::vector<int32_t>> StreamIds(const GenerateRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto stub = shared->cluster.NewStub();
  auto reader = stub->GenerateStream(&context, request);
  jamba::v1::GenerateStreamResponse message;
  std::vector<int32_t> ids;
  while (reader->Read(&message)) {
    if (message.has_chunk()) {
      ids.insert(ids.end(), message.chunk().token_ids().begin(), message.chunk().token_ids().end());
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return absl::InternalError(status.error_message());
  return ids;
}

grpc::Status CallPublic(const testing::PublicCase& c, const GenerateRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stub = shared->cluster.NewStub();
  switch (c.rpc) {
    case testing::PublicRpc::kGenerate: {
      jamba::v1::GenerateResponse response;
      return stub->Generate(&context, request, &response);
    }
    case testing::PublicRpc::kGenerateStream: {
      auto reader = stub->GenerateStream(&context, request);
      jamba::v1::GenerateStreamResponse message;
      int messages = 0;
      while (reader->Read(&message)) ++messages;
      grpc::Status status = reader->Finish();
      if (status.ok() || messages > 0) {
        return grpc::Status(grpc::StatusCode::UNKNOWN,
                            absl::StrCat("stream sent ", messages, " messages"));
      }
      return status;
    }
    case testing::PublicRpc::kCountTokens: {
      jamba::v1::CountTokensRequest count;
      if (request.has_text()) count.set_text(request.text());
      if (request.has_token_ids()) *count.mutable_token_ids() = request.token_ids();
      if (request.has_add_bos()) count.set_add_bos(request.add_bos());
      jamba::v1::CountTokensResponse response;
      return stub->CountTokens(&context, count, &response);
    }
  }
  return grpc::Status(grpc::StatusCode::UNKNOWN, "bad rpc kind");
}

class HostileInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared = new Shared();
    shared->setup = Start();
  }
  static absl::Status Start() {
    const std::string tiny = testing::SourceDir() + "/tests/testdata/tiny_model";
    ASSIGN_OR_RETURN(std::string dir,
                     testing::MakeModelVariant(tiny, R"({"max_position_embeddings": 96})"));
    ASSIGN_OR_RETURN(shared->config, model::LoadJambaConfig(dir));
    return shared->cluster.Start(dir, 2);
  }
  static void TearDownTestSuite() {
    shared->cluster.Stop();
    delete shared;
  }
  void SetUp() override { ASSERT_TRUE(shared->setup.ok()) << shared->setup; }

  // Runs every public case; returns the largest latency.
  static absl::Duration RunPublicTable(int* count) {
    testing::HostileLimits limits;
    limits.vocab_size = static_cast<int32_t>(shared->config.vocab_size);
    limits.context_limit = shared->config.max_position_embeddings;
    limits.max_new_tokens_limit = 4096;
    limits.max_receive_bytes = kRouterMaxReceiveBytes;
    absl::Duration max_latency;
    for (const testing::PublicCase& c : testing::PublicHostileCases(limits)) {
      GenerateRequest request;
      request.set_text("hello");
      request.mutable_sampling()->set_temperature(0);
      request.mutable_sampling()->set_max_new_tokens(4);
      c.mutate(&request);
      const absl::Time start = absl::Now();
      const grpc::Status status = CallPublic(c, request);
      const absl::Duration latency = absl::Now() - start;
      max_latency = std::max(max_latency, latency);
      std::printf("  public %-40s %8.2f ms  %d %s\n", c.name.c_str(),
                  absl::ToDoubleMilliseconds(latency), status.error_code(),
                  status.error_message().substr(0, 90).c_str());
      EXPECT_EQ(status.error_code(), c.code) << c.name << ": " << status.error_message();
      EXPECT_NE(status.error_message().find(c.message_part), std::string::npos)
          << c.name << ": '" << status.error_message() << "' does not name " << c.message_part;
      EXPECT_LT(latency, kSanityBound) << c.name;
      ++*count;
    }
    return max_latency;
  }

  static testing::ExpertTarget Target() {
    const model::JambaConfig& c = shared->config;
    testing::ExpertTarget t;
    t.hidden_size = c.hidden_size;
    t.num_layers = c.num_hidden_layers;
    t.dense_layer = c.ffn_kind(0) == model::FfnKind::kDense ? 0 : 1;
    t.moe_layer = c.ffn_kind(1) == model::FfnKind::kMoe ? 1 : 0;
    t.hosted_expert = 0;  // worker 0 hosts the even experts (LocalCluster)
    t.other_hosted_expert = 2;
    t.unhosted_expert = 1;
    return t;
  }

  // Runs every expert case on one Compute stream of worker 0, then valid
  // requests on the same stream; returns the largest latency.
  static absl::Duration RunExpertTable(int* count) {
    auto stub = jamba::internal::v1::ExpertService::NewStub(grpc::CreateChannel(
        shared->cluster.worker_addresses()[0], grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    auto stream = stub->Compute(&context);
    uint64_t tag = 0;
    auto exchange = [&](ExpertRequest request, ExpertResponse* response) {
      request.set_tag(++tag);
      if (!stream->Write(request) || !stream->Read(response)) return false;
      return response->tag() == tag;
    };
    const testing::ExpertTarget target = Target();
    ExpertResponse reference;
    EXPECT_TRUE(exchange(testing::ValidExpertRequest(target), &reference));
    EXPECT_EQ(reference.error_code(), 0) << reference.error_message();
    absl::Duration max_latency;
    for (const testing::ExpertCase& c : testing::ExpertHostileCases(target)) {
      ExpertRequest request = testing::ValidExpertRequest(target);
      c.mutate(&request);
      ExpertResponse response;
      const absl::Time start = absl::Now();
      const bool answered = exchange(request, &response);
      const absl::Duration latency = absl::Now() - start;
      max_latency = std::max(max_latency, latency);
      std::printf("  expert %-40s %8.2f ms  %d %s\n", c.name.c_str(),
                  absl::ToDoubleMilliseconds(latency), response.error_code(),
                  response.error_message().substr(0, 90).c_str());
      if (!answered) {
        ADD_FAILURE() << c.name << ": the stream broke";
        return max_latency;
      }
      EXPECT_EQ(response.error_code(), static_cast<int>(c.code)) << c.name;
      EXPECT_NE(response.error_message().find(c.message_part), std::string::npos)
          << c.name << ": '" << response.error_message() << "' does not name " << c.message_part;
      EXPECT_EQ(response.outputs_size(), 0) << c.name;
      EXPECT_LT(latency, kSanityBound) << c.name;
      ++*count;
    }
    // Non-finite rows are accepted (experts are stateless; they only
    // poison their own outputs) and leave the other groups' outputs exact.
    ExpertRequest poisoned = testing::ValidExpertRequest(target);
    ExpertRequest other = testing::ValidExpertRequest(target);
    other.mutable_groups(0)->set_expert(target.other_hosted_expert);
    std::string* data = poisoned.mutable_groups(0)->mutable_x()->mutable_data();
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i + 4 <= data->size(); i += 4) std::memcpy(&(*data)[i], &bad[i / 4 % 3], 4);
    *poisoned.add_groups() = other.groups(0);
    ExpertResponse poisoned_response, other_response, again;
    EXPECT_TRUE(exchange(other, &other_response));
    EXPECT_TRUE(exchange(poisoned, &poisoned_response));
    EXPECT_EQ(poisoned_response.error_code(), 0) << poisoned_response.error_message();
    if (poisoned_response.outputs_size() == 2 && other_response.outputs_size() == 1) {
      EXPECT_EQ(poisoned_response.outputs(1).y().data(), other_response.outputs(0).y().data());
    } else {
      ADD_FAILURE() << "non-finite rows: unexpected outputs";
    }
    // The same stream still computes the valid request exactly as before.
    EXPECT_TRUE(exchange(testing::ValidExpertRequest(target), &again));
    EXPECT_EQ(again.error_code(), 0) << again.error_message();
    // Equal but for the tag and the worker's own timing.
    again.set_worker_us(0);
    EXPECT_EQ(again.SerializeAsString(), [&] {
      ExpertResponse r = reference;
      r.set_tag(again.tag());
      r.set_worker_us(0);
      return r.SerializeAsString();
    }());
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
    return max_latency;
  }
};

TEST_F(HostileInputTest, BadRequestsGetTheirStatusWhileOtherStreamsRunUndisturbed) {
  absl::StatusOr<std::vector<int32_t>> reference = StreamIds(HealthyRequest());
  ASSERT_TRUE(reference.ok()) << reference.status();
  ASSERT_EQ(reference->size(), 40u);

  // A healthy stream runs again and again for as long as the table does.
  std::atomic<bool> table_done{false};
  absl::Mutex mu;
  int healthy_runs = 0;
  std::vector<std::string> healthy_errors;
  std::thread healthy([&] {
    do {
      absl::StatusOr<std::vector<int32_t>> ids = StreamIds(HealthyRequest());
      absl::MutexLock lock(&mu);
      ++healthy_runs;
      if (!ids.ok()) {
        healthy_errors.push_back(std::string(ids.status().message()));
      } else if (*ids != *reference) {
        healthy_errors.push_back(absl::StrCat("run ", healthy_runs, ": different tokens"));
      }
    } while (!table_done.load());
  });

  int count = 0;
  const absl::Duration public_max = RunPublicTable(&count);
  const absl::Duration expert_max = RunExpertTable(&count);
  table_done = true;
  healthy.join();
  std::printf(
      "hostile inputs: %d, max latency public %.2f ms, internal %.2f ms; "
      "healthy streams completed: %d\n",
      count, absl::ToDoubleMilliseconds(public_max), absl::ToDoubleMilliseconds(expert_max),
      healthy_runs);
  EXPECT_GE(count, 30);
  EXPECT_GE(healthy_runs, 1);
  for (const std::string& error : healthy_errors) ADD_FAILURE() << "healthy stream: " << error;

  // Every process is up and the service still answers a normal request.
  EXPECT_TRUE(shared->cluster.router().running());
  for (int w = 0; w < 2; ++w) EXPECT_TRUE(shared->cluster.worker(w).running()) << w;
  EXPECT_TRUE(shared->cluster.WaitServing(absl::Seconds(5)).ok());
  absl::StatusOr<std::vector<int32_t>> after = StreamIds(HealthyRequest());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, *reference);
}

}  // namespace
}  // namespace jamba
