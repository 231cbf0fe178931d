// Metrics: Prometheus names and labels, and the /metrics HTTP endpoint.
#include "router/metrics.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace jamba::router {
namespace {

// A plain HTTP/1.0 GET on 127.0.0.1:port; returns the whole response.
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (write(fd, request.data(), request.size()) < 0) return "";
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) response.append(buffer, n);
  close(fd);
  return response;
}

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
