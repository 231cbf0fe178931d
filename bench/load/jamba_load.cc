// jamba-load: a load generator for jamba.v1.JambaService.GenerateStream.
//
// Closed loop (--concurrency N streams, each starting a new request when
// its last one ends) or open loop (--rate R requests/s, Poisson arrivals).
// Prompts are random token ids of --prompt_tokens; each asks for exactly
// --output_tokens (ignore_eos, greedy). Reports generated tokens/s, TTFT,
// ITL and end-to-end latency percentiles, and failures by status code,
// as text and, with --json, one JSON line. TLS and token flags:
// security/client_flags.h.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "jamba/v1/jamba.grpc.pb.h"
#include "security/client_flags.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "router address");
ABSL_FLAG(int, concurrency, 1, "closed loop: streams in flight");
ABSL_FLAG(double, rate, 0, "open loop: requests per second (overrides --concurrency)");
ABSL_FLAG(int, requests, 32, "requests to send (0: until --duration_s)");
ABSL_FLAG(double, duration_s, 0, "stop starting requests after this many seconds (0: no limit)");
ABSL_FLAG(int, prompt_tokens, 32, "prompt length in tokens");
ABSL_FLAG(int, output_tokens, 32, "tokens generated per request");
ABSL_FLAG(double, cancel_fraction, 0, "cancel this fraction of streams after their first token");
ABSL_FLAG(int, timeout_s, 300, "deadline of each call");
ABSL_FLAG(bool, json, false, "also print one JSON line of results");
ABSL_FLAG(uint64_t, seed, 1, "seed of the prompts");

namespace {

struct Results {
  std::mutex mu;
  std::vector<double> ttft, itl, e2e;
  std::map<std::string, int> failures;
  int64_t tokens = 0;
  int completed = 0;
  int cancelled = 0;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

void RunOne(jamba::v1::JambaService::Stub* stub, const jamba::security::ClientSecurity* security,
            uint64_t seed, int32_t vocab, Results* results) {
  std::mt19937_64 rng(seed);
  jamba::v1::GenerateRequest request;
  request.mutable_token_ids()->add_ids(1);
  for (int i = 1; i < absl::GetFlag(FLAGS_prompt_tokens); ++i) {
    request.mutable_token_ids()->add_ids(3 + static_cast<int32_t>(rng() % (vocab - 3)));
  }
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_max_new_tokens(absl::GetFlag(FLAGS_output_tokens));
  request.mutable_sampling()->set_ignore_eos(true);
  const bool cancel =
      std::uniform_real_distribution<double>(0, 1)(rng) < absl::GetFlag(FLAGS_cancel_fraction);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(absl::GetFlag(FLAGS_timeout_s)));
  security->Apply(&context);
  const absl::Time start = absl::Now();
  absl::Time last = start;
  std::vector<double> itl;
  double ttft = -1;
  int64_t tokens = 0;
  auto reader = stub->GenerateStream(&context, request);
  jamba::v1::GenerateStreamResponse message;
  while (reader->Read(&message)) {
    if (!message.has_chunk() || message.chunk().token_ids_size() == 0) continue;
    const absl::Time now = absl::Now();
    if (ttft < 0) {
      ttft = absl::ToDoubleSeconds(now - start);
      if (cancel) context.TryCancel();
    } else {
      itl.push_back(absl::ToDoubleSeconds(now - last));
    }
    last = now;
    tokens += message.chunk().token_ids_size();
  }
  const grpc::Status status = reader->Finish();
  std::lock_guard<std::mutex> lock(results->mu);
  results->tokens += tokens;
  if (cancel && status.error_code() == grpc::StatusCode::CANCELLED) {
    ++results->cancelled;
    return;
  }
  if (!status.ok()) {
    ++results->failures[absl::StrCat(status.error_code(), " ", status.error_message())];
    return;
  }
  ++results->completed;
  if (ttft >= 0) results->ttft.push_back(ttft);
  results->itl.insert(results->itl.end(), itl.begin(), itl.end());
  results->e2e.push_back(absl::ToDoubleSeconds(absl::Now() - start));
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<jamba::security::ClientSecurity> security =
      jamba::security::ClientSecurity::FromFlags();
  if (!security.ok()) {
    std::fprintf(stderr, "jamba-load: %s\n", std::string(security.status().message()).c_str());
    return 1;
  }
  auto channel = security->CreateChannel(absl::GetFlag(FLAGS_target));
  auto stub = jamba::v1::JambaService::NewStub(channel);
  jamba::v1::ModelInfo info;
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    security->Apply(&context);
    grpc::Status status = stub->GetModelInfo(&context, {}, &info);
    if (!status.ok()) {
      std::fprintf(stderr, "jamba-load: GetModelInfo: %s\n", status.error_message().c_str());
      return 1;
    }
  }
  const int32_t vocab = static_cast<int32_t>(info.vocab_size());
  const int total = absl::GetFlag(FLAGS_requests);
  const double duration = absl::GetFlag(FLAGS_duration_s);
  const double rate = absl::GetFlag(FLAGS_rate);
  Results results;
  std::atomic<int> next{0};
  const absl::Time start = absl::Now();
  auto more = [&](int i) {
    return (total == 0 || i < total) &&
           (duration <= 0 || absl::Now() - start < absl::Seconds(duration));
  };
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  std::vector<std::thread> threads;
  if (rate > 0) {
    std::mt19937_64 rng(seed);
    std::exponential_distribution<double> gap(rate);
    for (int i = 0; more(i); ++i) {
      threads.emplace_back(RunOne, stub.get(), &*security, seed * 1000003 + i, vocab, &results);
      absl::SleepFor(absl::Seconds(gap(rng)));
    }
  } else {
    for (int c = 0; c < absl::GetFlag(FLAGS_concurrency); ++c) {
      threads.emplace_back([&] {
        for (int i = next++; more(i); i = next++)
          RunOne(stub.get(), &*security, seed * 1000003 + i, vocab, &results);
      });
    }
  }
  for (std::thread& t : threads) t.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  int failed = 0;
  for (const auto& [why, n] : results.failures) failed += n;

  std::printf("requests: %d completed, %d cancelled, %d failed in %.2f s\n", results.completed,
              results.cancelled, failed, elapsed);
  std::printf("throughput: %.1f generated tokens/s\n", results.tokens / elapsed);
  auto line = [](const char* name, const std::vector<double>& v) {
    std::printf("%-5s p50 %8.2f ms  p90 %8.2f ms  p99 %8.2f ms  (n=%zu)\n", name,
                1e3 * Percentile(v, 0.5), 1e3 * Percentile(v, 0.9), 1e3 * Percentile(v, 0.99),
                v.size());
  };
  line("TTFT", results.ttft);
  line("ITL", results.itl);
  line("E2E", results.e2e);
  for (const auto& [why, n] : results.failures) std::printf("failure x%d: %s\n", n, why.c_str());
  if (absl::GetFlag(FLAGS_json)) {
    std::printf(
        "{\"completed\":%d,\"cancelled\":%d,\"failed\":%d,\"seconds\":%.3f,\"tokens_per_s\":%.2f,"
        "\"ttft_p50\":%.6f,\"ttft_p90\":%.6f,\"ttft_p99\":%.6f,\"itl_p50\":%.6f,\"itl_p90\":%.6f,"
        "\"itl_p99\":%.6f,\"e2e_p50\":%.6f,\"e2e_p90\":%.6f,\"e2e_p99\":%.6f}\n",
        results.completed, results.cancelled, failed, elapsed, results.tokens / elapsed,
        Percentile(results.ttft, .5), Percentile(results.ttft, .9), Percentile(results.ttft, .99),
        Percentile(results.itl, .5), Percentile(results.itl, .9), Percentile(results.itl, .99),
        Percentile(results.e2e, .5), Percentile(results.e2e, .9), Percentile(results.e2e, .99));
  }
  return failed == 0 ? 0 : 3;
}
