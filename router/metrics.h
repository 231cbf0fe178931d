// Metrics: the router's Prometheus metrics and their HTTP /metrics endpoint
// (prometheus-cpp, text format). Names follow Prometheus conventions
// (`_seconds`, `_total`); labels are bounded (finish reason, failure
// reason, shard name, layer and expert ids). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "router/generation.h"

namespace jamba::router {

// Why a request failed, for jamba_request_failures_total{reason}.
enum class FailureReason {
  kValidation,
  kOverloaded,
  kCancelled,
  kDeadline,
  kUnavailable,
  kInternal
};

class Metrics {
 public:
  Metrics();

  // Serves /metrics on `address` ("127.0.0.1:0" picks a port).
  absl::Status Serve(const std::string& address);
  int port() const { return port_; }
  // The current text exposition, as /metrics returns it.
  std::string Render() const;

  void ObserveQueueTime(double seconds) { queue_->Observe(seconds); }
  void ObserveFirstToken(double seconds) { ttft_->Observe(seconds); }
  void ObserveInterToken(double seconds) { itl_->Observe(seconds); }
  void ObserveFinished(FinishReason reason, double e2e_seconds, int prompt_tokens,
                       int generated_tokens);
  void CountFailure(FailureReason reason);
  void CountGeneratedToken() { generated_tokens_->Increment(); }
  void SetRunning(int n) { running_->Set(n); }
  void SetWaiting(int n) { waiting_->Set(n); }
  void SetStatePool(int64_t used_bytes, int64_t capacity_bytes);
  // One expert request to `shard`: send to reply, and the part of it the
  // worker spent (the rest is transport and queueing).
  void ObserveExpertRoundTrip(const std::string& shard, double seconds, double worker_seconds);
  void CountRoutedTokens(int layer, int expert, int64_t tokens);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* itl_;
  prometheus::Histogram* e2e_;
  prometheus::Histogram* queue_;
  prometheus::Family<prometheus::Histogram>* expert_rtt_;
  prometheus::Family<prometheus::Histogram>* expert_worker_;
  prometheus::Gauge* running_;
  prometheus::Gauge* waiting_;
  prometheus::Gauge* pool_used_;
  prometheus::Gauge* pool_capacity_;
  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generated_tokens_;
  prometheus::Family<prometheus::Counter>* routed_;
  prometheus::Family<prometheus::Counter>* finished_;
  prometheus::Family<prometheus::Counter>* failures_;

  mutable absl::Mutex mu_;  // guards the lazily created labelled children
  // Per shard: round trip and worker time.
  std::map<std::string, std::pair<prometheus::Histogram*, prometheus::Histogram*>> rtt_by_shard_
      ABSL_GUARDED_BY(mu_);
  std::map<std::pair<int, int>, prometheus::Counter*> routed_by_expert_ ABSL_GUARDED_BY(mu_);
};

const char* FinishReasonName(FinishReason reason);
FailureReason FailureReasonOf(const absl::Status& status);

}  // namespace jamba::router
