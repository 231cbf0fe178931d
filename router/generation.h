// The request and event types of one generation, independent of the wire
// format: the gRPC service maps jamba.v1 messages to and from these.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "router/sampler_options.h"

namespace jamba::router {

struct GenerationRequest {
  std::string request_id;
  std::vector<int32_t> prompt;  // token ids, validated against the vocabulary
  SamplingOptions sampling;     // validated: sampling, stops, limits, seed, logprobs
  absl::Time arrival;
  absl::Time deadline = absl::InfiniteFuture();
};

enum class FinishReason { kLength, kEos, kStopSequence, kStopToken, kContextLimit };

struct GeneratedToken {
  int32_t id = 0;
  float logprob = 0;                           // when logprobs >= 0
  std::vector<std::pair<int32_t, float>> top;  // top-n alternatives
};

struct FinishInfo {
  FinishReason reason = FinishReason::kLength;
  std::string matched_stop;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  absl::Duration queue_time;
  absl::Duration first_token_time;
  absl::Duration total_time;
  uint64_t seed = 0;
};

// Receives a generation's events, on the engine thread, in order: any
// number of OnTokens, then exactly one of OnFinish or OnError. Must not
// block.
class GenerationObserver {
 public:
  virtual ~GenerationObserver() = default;
  // `text` is the newly decodable text, with stop strings held back.
  virtual void OnTokens(const std::vector<GeneratedToken>& tokens, const std::string& text) = 0;
  virtual void OnFinish(const FinishInfo& info) = 0;
  virtual void OnError(const absl::Status& status) = 0;
};

}  // namespace jamba::router
