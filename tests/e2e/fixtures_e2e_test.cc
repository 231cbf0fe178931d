// End to end on every committed transformers fixture: a router with 2
// expert-worker processes (in-process experts where the model has no MoE
// layer), and then also a mixer worker, generates greedily from the
// fixture's prompt ids and must give the reference's greedy ids, each with
// the log-probability that log_softmax of the reference logits gives it.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/e2e_cluster.h"
#include "tests/testing/fixtures.h"

namespace jamba {
namespace {

// log_softmax(logits)[id], in double.
double LogProb(const float* logits, int64_t vocab, int32_t id) {
  const double top = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(logits[v] - top);
  return logits[id] - top - std::log(sum);
}

class FixturesE2ETest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { ref_ = testing::LoadReference(GetParam()); }

  // Starts a cluster on the fixture (2 expert workers where the model has
  // MoE layers, in-process experts otherwise; `mixers` mixer workers),
  // generates greedily from the prompt ids and checks the reference's
  // greedy ids and their log-probabilities.
  void GenerateAndCheck(int mixers) {
    std::ifstream config_file(ref_.dir + "/config.json");
    const nlohmann::json config = nlohmann::json::parse(config_file, nullptr, false);
    ASSERT_TRUE(config.is_object()) << ref_.dir;
    const int workers = config.value("num_experts", 1) > 1 ? 2 : 0;

    testing::LocalCluster cluster;
    const absl::Status started = cluster.Start(ref_.dir, workers, {}, 1, mixers);
    ASSERT_TRUE(started.ok()) << ref_.dir << ": " << started;
    jamba::v1::GenerateRequest request;
    for (int32_t id : ref_.prompt_ids) request.mutable_token_ids()->add_ids(id);
    request.mutable_sampling()->set_temperature(0);
    request.mutable_sampling()->set_max_new_tokens(static_cast<uint32_t>(ref_.greedy_ids.size()));
    request.mutable_sampling()->set_ignore_eos(true);
    request.mutable_sampling()->set_logprobs(1);
    jamba::v1::GenerateResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    const grpc::Status status = cluster.NewStub()->Generate(&context, request, &response);
    cluster.Stop();
    ASSERT_TRUE(status.ok()) << status.error_message();

    EXPECT_EQ(std::vector<int32_t>(response.token_ids().begin(), response.token_ids().end()),
              ref_.greedy_ids);
    ASSERT_EQ(response.tokens_size(), static_cast<int>(ref_.greedy_ids.size()));
    // The fixtures' tolerance: 1e-4 of the largest logit.
    float scale = 0;
    for (float v : ref_.prompt_logits) scale = std::max(scale, std::abs(v));
    for (float v : ref_.decode_logits) scale = std::max(scale, std::abs(v));
    const int64_t V = ref_.vocab_size, L = static_cast<int64_t>(ref_.prompt_ids.size());
    for (int i = 0; i < response.tokens_size(); ++i) {
      const float* logits = i == 0 ? ref_.prompt_logits.data() + (L - 1) * V
                                   : ref_.decode_logits.data() + (i - 1) * V;
      EXPECT_NEAR(response.tokens(i).logprob(), LogProb(logits, V, ref_.greedy_ids[i]),
                  2e-4 * scale)
          << "token " << i;
    }
  }

  testing::Reference ref_;
};

TEST_P(FixturesE2ETest, RemoteExpertsGiveTheReferenceGreedyIdsAndLogprobs) { GenerateAndCheck(0); }

// The mixer layers in a mixer-worker process too.
TEST_P(FixturesE2ETest, MixerWorkerGivesTheReferenceGreedyIdsAndLogprobs) { GenerateAndCheck(1); }

INSTANTIATE_TEST_SUITE_P(Fixtures, FixturesE2ETest, ::testing::ValuesIn(testing::ListFixtures()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace jamba
