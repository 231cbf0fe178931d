#include "router/metrics.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace jamba::router {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// 1 ms .. ~60 s, roughly x2 per bucket.
const Histogram::BucketBoundaries kLatencyBuckets = {
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 60};
// 25 us .. 1 s for one expert round trip; about x1.3 per bucket up to 5 ms,
// so that an interpolated p50 is within ~15% (the target is 150 us).
const Histogram::BucketBoundaries kRoundTripBuckets = {
    25e-6,  50e-6,  75e-6,  100e-6, 125e-6, 150e-6,  200e-6, 250e-6, 300e-6,
    400e-6, 500e-6, 600e-6, 750e-6, 1e-3,   1.25e-3, 1.5e-3, 2e-3,   2.5e-3,
    3e-3,   4e-3,   5e-3,   0.01,   0.02,   0.05,    0.1,    1};

const char* FailureReasonName(FailureReason reason) {
  switch (reason) {
    case FailureReason::kValidation:
      return "validation";
    case FailureReason::kOverloaded:
      return "overloaded";
    case FailureReason::kCancelled:
      return "cancelled";
    case FailureReason::kDeadline:
      return "deadline";
    case FailureReason::kUnavailable:
      return "unavailable";
    case FailureReason::kInternal:
      return "internal";
  }
  return "internal";
}

}  // namespace

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kStopSequence:
      return "stop_sequence";
    case FinishReason::kStopToken:
      return "stop_token";
    case FinishReason::kContextLimit:
      return "context_limit";
  }
  return "length";
}

FailureReason FailureReasonOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return FailureReason::kValidation;
    case absl::StatusCode::kResourceExhausted:
      return FailureReason::kOverloaded;
    case absl::StatusCode::kCancelled:
      return FailureReason::kCancelled;
    case absl::StatusCode::kDeadlineExceeded:
      return FailureReason::kDeadline;
    case absl::StatusCode::kUnavailable:
      return FailureReason::kUnavailable;
    default:
      return FailureReason::kInternal;
  }
}

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  ttft_ = &BuildHistogram()
               .Name("jamba_time_to_first_token_seconds")
               .Help("From arrival to the first generated token.")
               .Register(r)
               .Add({}, kLatencyBuckets);
  itl_ = &BuildHistogram()
              .Name("jamba_inter_token_latency_seconds")
              .Help("Between consecutive generated tokens of a request.")
              .Register(r)
              .Add({}, kLatencyBuckets);
  e2e_ = &BuildHistogram()
              .Name("jamba_e2e_request_latency_seconds")
              .Help("From arrival to the end of a finished request.")
              .Register(r)
              .Add({}, kLatencyBuckets);
  queue_ = &BuildHistogram()
                .Name("jamba_request_queue_time_seconds")
                .Help("From arrival to admission into the running batch.")
                .Register(r)
                .Add({}, kLatencyBuckets);
  expert_rtt_ = &BuildHistogram()
                     .Name("jamba_expert_round_trip_seconds")
                     .Help("One MoE layer's expert call to one shard, send to reply.")
                     .Register(r);
  expert_worker_ = &BuildHistogram()
                        .Name("jamba_expert_worker_seconds")
                        .Help(
                            "The part of an expert round trip the worker spent on the request, "
                            "from reading it to answering.")
                        .Register(r);
  running_ = &BuildGauge()
                  .Name("jamba_requests_running")
                  .Help("Requests in the running batch.")
                  .Register(r)
                  .Add({});
  waiting_ = &BuildGauge()
                  .Name("jamba_requests_waiting")
                  .Help("Requests in the waiting queue.")
                  .Register(r)
                  .Add({});
  pool_used_ =
      &BuildGauge()
           .Name("jamba_state_pool_used_bytes")
           .Help("Sequence state (KV cache, conv/SSM state) reserved by admitted requests.")
           .Register(r)
           .Add({});
  pool_capacity_ = &BuildGauge()
                        .Name("jamba_state_pool_capacity_bytes")
                        .Help("The state pool's budget.")
                        .Register(r)
                        .Add({});
  prompt_tokens_ = &BuildCounter()
                        .Name("jamba_prompt_tokens_total")
                        .Help("Prompt tokens of finished requests.")
                        .Register(r)
                        .Add({});
  generated_tokens_ = &BuildCounter()
                           .Name("jamba_generation_tokens_total")
                           .Help("Generated tokens.")
                           .Register(r)
                           .Add({});
  routed_ = &BuildCounter()
                 .Name("jamba_expert_routed_tokens_total")
                 .Help("Token rows routed to each expert, by MoE layer and expert id.")
                 .Register(r);
  finished_ = &BuildCounter()
                   .Name("jamba_requests_finished_total")
                   .Help("Requests that finished, by finish reason.")
                   .Register(r);
  failures_ = &BuildCounter()
                   .Name("jamba_request_failures_total")
                   .Help("Requests that ended in an error, by reason.")
                   .Register(r);
}

absl::Status Metrics::Serve(const std::string& address) {
  // prometheus-cpp reports a bind failure by throwing; this is the one
  // place we catch a library exception and turn it into a Status.
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? 0 : ports[0];
  return absl::OkStatus();
}

std::string Metrics::Render() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void Metrics::ObserveFinished(FinishReason reason, double e2e_seconds, int prompt_tokens,
                              int generated_tokens) {
  e2e_->Observe(e2e_seconds);
  prompt_tokens_->Increment(prompt_tokens);
  finished_->Add({{"reason", FinishReasonName(reason)}}).Increment();
}

void Metrics::CountFailure(FailureReason reason) {
  failures_->Add({{"reason", FailureReasonName(reason)}}).Increment();
}

void Metrics::SetStatePool(int64_t used_bytes, int64_t capacity_bytes) {
  pool_used_->Set(static_cast<double>(used_bytes));
  pool_capacity_->Set(static_cast<double>(capacity_bytes));
}

void Metrics::ObserveExpertRoundTrip(const std::string& shard, double seconds,
                                     double worker_seconds) {
  std::pair<prometheus::Histogram*, prometheus::Histogram*> h;
  {
    absl::MutexLock lock(&mu_);
    auto [it, added] = rtt_by_shard_.try_emplace(shard);
    if (added) {
      it->second = {&expert_rtt_->Add({{"shard", shard}}, kRoundTripBuckets),
                    &expert_worker_->Add({{"shard", shard}}, kRoundTripBuckets)};
    }
    h = it->second;
  }
  h.first->Observe(seconds);
  h.second->Observe(worker_seconds);
}

void Metrics::CountRoutedTokens(int layer, int expert, int64_t tokens) {
  prometheus::Counter* c;
  {
    absl::MutexLock lock(&mu_);
    auto [it, added] = routed_by_expert_.try_emplace({layer, expert}, nullptr);
    if (added) {
      it->second =
          &routed_->Add({{"layer", absl::StrCat(layer)}, {"expert", absl::StrCat(expert)}});
    }
    c = it->second;
  }
  c->Increment(static_cast<double>(tokens));
}

}  // namespace jamba::router
