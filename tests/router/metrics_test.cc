// Metrics: Prometheus names and labels, and the /metrics HTTP endpoint.
#include "router/metrics.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/testing/http_get.h"

namespace jamba::router {
namespace {

using ::jamba::testing::HttpGet;

TEST(MetricsTest, ExposesEveryFamilyWithPrometheusNames) {
  Metrics metrics;
  metrics.ObserveQueueTime(0.001);
  metrics.ObserveFirstToken(0.02);
  metrics.ObserveInterToken(0.005);
  metrics.ObserveFinished(FinishReason::kEos, 0.5, 12, 7);
  metrics.CountFailure(FailureReasonOf(absl::ResourceExhaustedError("full")));
  metrics.CountGeneratedToken();
  metrics.SetRunning(3);
  metrics.SetWaiting(2);
  metrics.SetStatePool(100, 1000);
  metrics.ObserveExpertRoundTrip("s0", 120e-6, 40e-6);
  metrics.CountRoutedTokens(1, 5, 4);
  const std::string text = metrics.Render();
  for (const char* expected :
       {"jamba_time_to_first_token_seconds_bucket", "jamba_inter_token_latency_seconds_count 1",
        "jamba_e2e_request_latency_seconds_sum 0.5", "jamba_request_queue_time_seconds_count 1",
        "jamba_expert_round_trip_seconds_count{shard=\"s0\"} 1",
        "jamba_expert_worker_seconds_count{shard=\"s0\"} 1", "jamba_requests_running 3",
        "jamba_requests_waiting 2", "jamba_state_pool_used_bytes 100",
        "jamba_state_pool_capacity_bytes 1000", "jamba_prompt_tokens_total 12",
        "jamba_generation_tokens_total 1",
        "jamba_expert_routed_tokens_total{expert=\"5\",layer=\"1\"} 4",
        "jamba_requests_finished_total{reason=\"eos\"} 1",
        "jamba_request_failures_total{reason=\"overloaded\"} 1"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
}

TEST(MetricsTest, ServesTextFormatOverHttp) {
  Metrics metrics;
  ASSERT_TRUE(metrics.Serve("127.0.0.1:0").ok());
  ASSERT_GT(metrics.port(), 0);
  metrics.SetRunning(4);
  const std::string response = HttpGet(metrics.port(), "/metrics");
  EXPECT_NE(response.find("200 OK"), std::string::npos) << response;
  EXPECT_NE(response.find("jamba_requests_running 4"), std::string::npos) << response;
}

TEST(MetricsTest, FailureReasonsFollowStatusCodes) {
  EXPECT_EQ(FailureReasonOf(absl::InvalidArgumentError("x")), FailureReason::kValidation);
  EXPECT_EQ(FailureReasonOf(absl::CancelledError("x")), FailureReason::kCancelled);
  EXPECT_EQ(FailureReasonOf(absl::DeadlineExceededError("x")), FailureReason::kDeadline);
  EXPECT_EQ(FailureReasonOf(absl::UnavailableError("x")), FailureReason::kUnavailable);
  EXPECT_EQ(FailureReasonOf(absl::InternalError("x")), FailureReason::kInternal);
}

}  // namespace
}  // namespace jamba::router
