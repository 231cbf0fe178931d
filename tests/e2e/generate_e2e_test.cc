// End to end: a router with 2 expert-worker processes against a router with
// in-process experts, over the bundled tiny model (its config adjusted so
// that EOS and the context limit are reachable in a few tokens).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "jamba/internal/v1/expert.grpc.pb.h"
#include "core/status_macros.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/greedy.h"
#include "model/jamba_model.h"
#include "router/tokenizer.h"
#include "router/tokenizer_sentencepiece.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/http_get.h"

namespace jamba {
namespace {

using jamba::v1::GenerateRequest;
using jamba::v1::GenerateResponse;

const char* const kPrompts[] = {
    "The little robot walked into the garden and",
    "Once upon a time",
    "12345 apples, 678 pears",
};

struct Shared {
  std::string model_dir;
  std::vector<int32_t> eos_prompt;  // kPrompts[0]; its greedy continuation reaches `eos` early
  int32_t eos = 0;
  std::vector<int32_t> greedy;   // the model's greedy continuation of kPrompts[0]
  testing::LocalCluster remote;  // 2 expert workers
  testing::LocalCluster local;   // experts in the router
  absl::Status setup;
};
Shared* shared = nullptr;

class GenerateE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared = new Shared();
    shared->setup = StartCluster();
  }

  // Failing here (instead of asserting in SetUpTestSuite, which gtest
  // reports as skipped tests) makes every test fail with the reason.
  void SetUp() override { ASSERT_TRUE(shared->setup.ok()) << shared->setup; }

  static absl::Status StartCluster() {
    const std::string tiny = testing::SourceDir() + "/tests/testdata/tiny_model";
    // Find the greedy continuation of the first prompt to pick an EOS id.
    ASSIGN_OR_RETURN(auto tokenizer,
                     router::SentencePieceTokenizer::Load(tiny + "/tokenizer.model"));
    ASSIGN_OR_RETURN(shared->eos_prompt, tokenizer->Encode(kPrompts[0], true));
    ASSIGN_OR_RETURN(auto backend, kernels::CreateBackend(kernels::BackendKind::kCpu));
    ASSIGN_OR_RETURN(auto checkpoint, model::Checkpoint::Open(tiny));
    ASSIGN_OR_RETURN(auto model, model::JambaModel::Load(*checkpoint, backend.get()));
    model::GreedyOptions options;
    options.max_new_tokens = 24;
    options.stop_at_eos = false;
    ASSIGN_OR_RETURN(std::vector<int32_t> greedy,
                     model::GenerateGreedy(*model, shared->eos_prompt, options));
    shared->greedy = greedy;
    // The first token from step 2 on that did not occur before it.
    for (size_t i = 2; i < greedy.size() && shared->eos == 0; ++i) {
      if (std::find(greedy.begin(), greedy.begin() + i, greedy[i]) == greedy.begin() + i) {
        shared->eos = greedy[i];
      }
    }
    if (shared->eos == 0) return absl::InternalError("no fresh token in the greedy continuation");
    ASSIGN_OR_RETURN(
        shared->model_dir,
        testing::MakeModelVariant(tiny, absl::StrCat(R"({"eos_token_id": [2, )", shared->eos,
                                                     R"(], "max_position_embeddings": 96})")));
    RETURN_IF_ERROR(shared->remote.Start(shared->model_dir, 2, {"--metrics_port=0"}));
    return shared->local.Start(shared->model_dir, 0);
  }

  static void TearDownTestSuite() {
    shared->remote.Stop();
    shared->local.Stop();
    delete shared;
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

  static grpc::Status Call(testing::LocalCluster& cluster, const GenerateRequest& request,
                           GenerateResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return cluster.NewStub()->Generate(&context, request, response);
  }

  // Streams a request; returns the chunks' text, ids and the final message.
  static grpc::Status Stream(const GenerateRequest& request, std::string* text,
                             std::vector<int32_t>* ids, jamba::v1::GenerateFinal* final,
                             int* messages_after_final) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto stub = shared->remote.NewStub();
    auto reader = stub->GenerateStream(&context, request);
    jamba::v1::GenerateStreamResponse message;
    bool got_final = false;
    *messages_after_final = 0;
    while (reader->Read(&message)) {
      if (got_final) ++*messages_after_final;
      if (message.has_chunk()) {
        text->append(message.chunk().text());
        ids->insert(ids->end(), message.chunk().token_ids().begin(),
                    message.chunk().token_ids().end());
      } else {
        got_final = true;
        *final = message.final();
      }
    }
    return reader->Finish();
  }
};

TEST_F(GenerateE2ETest, RemoteExpertsMatchInProcessEngineExactly) {
  for (const char* prompt : kPrompts) {
    GenerateResponse remote, local;
    ASSERT_TRUE(Call(shared->remote, Greedy(prompt, 12), &remote).ok());
    ASSERT_TRUE(Call(shared->local, Greedy(prompt, 12), &local).ok());
    ASSERT_EQ(remote.token_ids_size(), 12);
    EXPECT_EQ(std::vector<int32_t>(remote.token_ids().begin(), remote.token_ids().end()),
              std::vector<int32_t>(local.token_ids().begin(), local.token_ids().end()))
        << prompt;
    EXPECT_EQ(remote.text(), local.text());
    ASSERT_EQ(remote.tokens_size(), local.tokens_size());
    for (int i = 0; i < remote.tokens_size(); ++i) {
      EXPECT_EQ(remote.tokens(i).logprob(), local.tokens(i).logprob()) << prompt << " token " << i;
      ASSERT_EQ(remote.tokens(i).top_logprobs_size(), 3);
      EXPECT_EQ(remote.tokens(i).top_logprobs(0).token_id(), remote.tokens(i).token_id());
      for (int j = 0; j < 3; ++j) {
        EXPECT_EQ(remote.tokens(i).top_logprobs(j).logprob(),
                  local.tokens(i).top_logprobs(j).logprob());
      }
    }
  }
}

// Several streams at once run as two micro-batches in ping-pong on the
// remote router; each must still match the in-process router bit for bit.
TEST_F(GenerateE2ETest, ConcurrentRemoteStreamsMatchInProcessAlone) {
  constexpr int kCalls = 6;
  std::vector<GenerateRequest> requests;
  std::vector<GenerateResponse> alone(kCalls), together(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    requests.push_back(Greedy(absl::StrCat(kPrompts[i % 3], " and ", i), 10 + i));
    ASSERT_TRUE(Call(shared->local, requests[i], &alone[i]).ok());
  }
  std::vector<grpc::Status> statuses(kCalls);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back(
        [&, i] { statuses[i] = Call(shared->remote, requests[i], &together[i]); });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    ASSERT_EQ(together[i].tokens_size(), alone[i].tokens_size()) << i;
    for (int j = 0; j < alone[i].tokens_size(); ++j) {
      EXPECT_EQ(together[i].tokens(j).token_id(), alone[i].tokens(j).token_id()) << i << " " << j;
      EXPECT_EQ(together[i].tokens(j).logprob(), alone[i].tokens(j).logprob()) << i << " " << j;
    }
  }
}

TEST_F(GenerateE2ETest, GreedyOutputMatchesTheModel) {
  GenerateRequest request;
  for (int32_t id : shared->eos_prompt) request.mutable_token_ids()->add_ids(id);
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_max_new_tokens(static_cast<uint32_t>(shared->greedy.size()));
  request.mutable_sampling()->set_ignore_eos(true);
  GenerateResponse response;
  ASSERT_TRUE(Call(shared->remote, request, &response).ok());
  EXPECT_EQ(std::vector<int32_t>(response.token_ids().begin(), response.token_ids().end()),
            shared->greedy);
  EXPECT_EQ(response.finish_reason(), jamba::v1::FINISH_REASON_LENGTH);
}

TEST_F(GenerateE2ETest, EachWorkerLoadedOnlyItsExperts) {
  for (int w = 0; w < 2; ++w) {
    auto stub = jamba::internal::v1::ExpertService::NewStub(grpc::CreateChannel(
        shared->remote.worker_addresses()[w], grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    jamba::internal::v1::ShardInfoResponse info;
    ASSERT_TRUE(stub->GetShardInfo(&context, {}, &info).ok());
    ASSERT_FALSE(info.experts().empty());
    for (const std::string& pair : info.experts()) {
      const int expert = std::stoi(pair.substr(pair.find(':') + 1));
      EXPECT_EQ(expert % 2, w) << pair;
    }
  }
}

// The router binary serves /metrics. In a CUDA build this needs room for
// cuBLAS's static TLS in civetweb's threads (router/thread_stack.cc).
TEST_F(GenerateE2ETest, RouterServesMetricsWithExpertRoundTripsPerShard) {
  GenerateResponse response;
  ASSERT_TRUE(Call(shared->remote, Greedy(kPrompts[1], 4), &response).ok());
  absl::StatusOr<std::string> address =
      shared->remote.router().WaitForAddress(absl::Seconds(5), "jamba-router metrics on ");
  ASSERT_TRUE(address.ok()) << address.status();
  const int port = std::stoi(address->substr(address->rfind(':') + 1));
  const std::string text = testing::HttpGet(port, "/metrics");
  EXPECT_NE(text.find("200 OK"), std::string::npos) << text;
  for (const char* expected :
       {"jamba_generation_tokens_total", "jamba_expert_round_trip_seconds_count{shard=\"shard0\"}",
        "jamba_expert_round_trip_seconds_count{shard=\"shard1\"}", "jamba_requests_running"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
}

TEST_F(GenerateE2ETest, StreamingDeliversChunksInOrderThenOneFinal) {
  GenerateResponse unary;
  ASSERT_TRUE(Call(shared->remote, Greedy(kPrompts[1], 16), &unary).ok());
  std::string text;
  std::vector<int32_t> ids;
  jamba::v1::GenerateFinal final;
  int after_final = 0;
  ASSERT_TRUE(Stream(Greedy(kPrompts[1], 16), &text, &ids, &final, &after_final).ok());
  EXPECT_EQ(text, unary.text());
  EXPECT_EQ(ids, std::vector<int32_t>(unary.token_ids().begin(), unary.token_ids().end()));
  EXPECT_EQ(after_final, 0);
  EXPECT_EQ(final.finish_reason(), jamba::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(final.usage().completion_tokens(), 16u);
  EXPECT_GT(final.usage().prompt_tokens(), 0u);
}

TEST_F(GenerateE2ETest, EveryFinishReason) {
  GenerateRequest base;
  for (int32_t id : shared->eos_prompt) base.mutable_token_ids()->add_ids(id);
  base.mutable_sampling()->set_temperature(0);
  base.mutable_sampling()->set_max_new_tokens(20);
  GenerateResponse full;
  {
    GenerateRequest r = base;
    r.mutable_sampling()->set_ignore_eos(true);
    r.mutable_sampling()->set_max_new_tokens(6);
    ASSERT_TRUE(Call(shared->remote, r, &full).ok());
    EXPECT_EQ(full.finish_reason(), jamba::v1::FINISH_REASON_LENGTH);
  }
  {
    GenerateResponse eos;
    ASSERT_TRUE(Call(shared->remote, base, &eos).ok());
    EXPECT_EQ(eos.finish_reason(), jamba::v1::FINISH_REASON_EOS);
    EXPECT_EQ(eos.token_ids(eos.token_ids_size() - 1), shared->eos);
  }
  {
    GenerateRequest r = base;
    r.mutable_sampling()->set_ignore_eos(true);
    r.mutable_sampling()->add_stop_token_ids(full.token_ids(2));
    GenerateResponse stop_token;
    ASSERT_TRUE(Call(shared->remote, r, &stop_token).ok());
    EXPECT_EQ(stop_token.finish_reason(), jamba::v1::FINISH_REASON_STOP_TOKEN);
    EXPECT_LE(stop_token.token_ids_size(), 3);
  }
  {
    // A stop string taken from the middle of the greedy text is never emitted.
    GenerateRequest r = base;
    r.mutable_sampling()->set_ignore_eos(true);
    r.mutable_sampling()->set_max_new_tokens(6);
    ASSERT_GE(full.text().size(), 4u);
    const std::string stop = full.text().substr(full.text().size() / 2, 2);
    r.mutable_sampling()->add_stop(stop);
    GenerateResponse stopped;
    ASSERT_TRUE(Call(shared->remote, r, &stopped).ok());
    EXPECT_EQ(stopped.finish_reason(), jamba::v1::FINISH_REASON_STOP_SEQUENCE);
    EXPECT_EQ(stopped.matched_stop(), stop);
    EXPECT_EQ(stopped.text(), full.text().substr(0, full.text().find(stop)));
  }
  {
    GenerateRequest r = base;
    r.mutable_sampling()->set_ignore_eos(true);
    r.mutable_sampling()->set_max_new_tokens(200);
    GenerateResponse limit;
    ASSERT_TRUE(Call(shared->remote, r, &limit).ok());
    EXPECT_EQ(limit.finish_reason(), jamba::v1::FINISH_REASON_CONTEXT_LIMIT);
    EXPECT_EQ(limit.usage().total_tokens(), 96u);
  }
}

TEST_F(GenerateE2ETest, SameSeedSameText) {
  GenerateRequest r;
  r.set_text(kPrompts[0]);
  r.mutable_sampling()->set_temperature(1.0f);
  r.mutable_sampling()->set_max_new_tokens(24);
  r.mutable_sampling()->set_ignore_eos(true);
  r.mutable_sampling()->set_seed(1234);
  GenerateResponse a, b, c;
  ASSERT_TRUE(Call(shared->remote, r, &a).ok());
  ASSERT_TRUE(Call(shared->local, r, &b).ok());
  r.mutable_sampling()->set_seed(99);
  ASSERT_TRUE(Call(shared->remote, r, &c).ok());
  EXPECT_EQ(a.text(), b.text());
  EXPECT_EQ(std::vector<int32_t>(a.token_ids().begin(), a.token_ids().end()),
            std::vector<int32_t>(b.token_ids().begin(), b.token_ids().end()));
  EXPECT_NE(std::vector<int32_t>(a.token_ids().begin(), a.token_ids().end()),
            std::vector<int32_t>(c.token_ids().begin(), c.token_ids().end()));
  EXPECT_EQ(a.seed(), 1234u);
}

struct BadRequest {
  const char* name;
  void (*mutate)(GenerateRequest*);
  const char* field;
};

const BadRequest kBadRequests[] = {
    {"no input", [](GenerateRequest* r) { r->clear_input(); }, "input"},
    {"empty ids", [](GenerateRequest* r) { r->mutable_token_ids(); }, "input"},
    {"id out of vocab", [](GenerateRequest* r) { r->mutable_token_ids()->add_ids(1 << 20); },
     "token_ids"},
    {"negative id", [](GenerateRequest* r) { r->mutable_token_ids()->add_ids(-1); }, "token_ids"},
    {"zero max_new_tokens",
     [](GenerateRequest* r) { r->mutable_sampling()->set_max_new_tokens(0); }, "max_new_tokens"},
    {"huge max_new_tokens",
     [](GenerateRequest* r) { r->mutable_sampling()->set_max_new_tokens(1u << 30); },
     "max_new_tokens"},
    {"negative temperature", [](GenerateRequest* r) { r->mutable_sampling()->set_temperature(-1); },
     "temperature"},
    {"nan temperature", [](GenerateRequest* r) { r->mutable_sampling()->set_temperature(NAN); },
     "temperature"},
    {"top_p zero", [](GenerateRequest* r) { r->mutable_sampling()->set_top_p(0); }, "top_p"},
    {"top_p above one", [](GenerateRequest* r) { r->mutable_sampling()->set_top_p(1.5f); },
     "top_p"},
    {"min_p negative", [](GenerateRequest* r) { r->mutable_sampling()->set_min_p(-0.1f); },
     "min_p"},
    {"repetition zero",
     [](GenerateRequest* r) { r->mutable_sampling()->set_repetition_penalty(0); },
     "repetition_penalty"},
    {"presence too big", [](GenerateRequest* r) { r->mutable_sampling()->set_presence_penalty(3); },
     "presence_penalty"},
    {"frequency too small",
     [](GenerateRequest* r) { r->mutable_sampling()->set_frequency_penalty(-3); },
     "frequency_penalty"},
    {"empty stop", [](GenerateRequest* r) { r->mutable_sampling()->add_stop(""); }, "stop"},
    {"too many stops",
     [](GenerateRequest* r) {
       for (int i = 0; i < 17; ++i) r->mutable_sampling()->add_stop("x");
     },
     "stop"},
    {"stop token out of vocab",
     [](GenerateRequest* r) { r->mutable_sampling()->add_stop_token_ids(1 << 20); },
     "stop_token_ids"},
    {"too many logprobs", [](GenerateRequest* r) { r->mutable_sampling()->set_logprobs(21); },
     "logprobs"},
    {"prompt over context",
     [](GenerateRequest* r) {
       for (int i = 0; i < 200; ++i) r->mutable_token_ids()->add_ids(5);
     },
     "input"},
};

TEST_F(GenerateE2ETest, InvalidFieldsGiveInvalidArgumentNamingTheField) {
  for (const BadRequest& bad : kBadRequests) {
    GenerateRequest r;
    r.set_text("hello");
    bad.mutate(&r);
    GenerateResponse response;
    grpc::Status status = Call(shared->remote, r, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.name;
    EXPECT_NE(status.error_message().find(bad.field), std::string::npos)
        << bad.name << ": " << status.error_message();
  }
}

TEST_F(GenerateE2ETest, ModelInfoAndCountTokens) {
  auto stub = shared->remote.NewStub();
  grpc::ClientContext context;
  jamba::v1::ModelInfo info;
  ASSERT_TRUE(stub->GetModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(info.context_limit(), 96u);
  EXPECT_EQ(info.expert_shards_size(), 2);
  EXPECT_EQ(info.tokenizer(), "sentencepiece");
  EXPECT_GT(info.layers_size(), 0);
  grpc::ClientContext count_context;
  jamba::v1::CountTokensRequest count;
  count.set_text(kPrompts[0]);
  jamba::v1::CountTokensResponse counted;
  ASSERT_TRUE(stub->CountTokens(&count_context, count, &counted).ok());
  EXPECT_EQ(counted.count(), shared->eos_prompt.size());
}

}  // namespace
}  // namespace jamba
