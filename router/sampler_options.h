// SamplingOptions: the per-request generation settings, the C++ side of
// jamba.v1.SamplingParams (the service maps the proto onto this struct and
// fills in the proto's defaults), and their validation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace jamba::router {

inline constexpr int kMaxStopStrings = 16;
inline constexpr int kMaxStopStringBytes = 256;
inline constexpr int kMaxStopTokenIds = 64;
inline constexpr int kMaxLogprobs = 20;

struct SamplingOptions {
  int32_t max_new_tokens = 64;      // >= 1
  float temperature = 1.0f;         // >= 0, finite; 0 = greedy
  int32_t top_k = 0;                // >= 0; 0 = no limit
  float top_p = 1.0f;               // in (0, 1]
  float min_p = 0.0f;               // in [0, 1]
  float repetition_penalty = 1.0f;  // > 0, finite; 1 = off
  float presence_penalty = 0.0f;    // in [-2, 2]
  float frequency_penalty = 0.0f;   // in [-2, 2]
  uint64_t seed = 0;
  std::vector<std::string> stop;        // <= 16, each 1..256 bytes of valid UTF-8
  std::vector<int32_t> stop_token_ids;  // <= 64, each in [0, vocab)
  bool ignore_eos = false;
  int32_t logprobs = -1;  // -1: none; else 0..20 alternatives
};

// OK, or InvalidArgument whose message starts with the proto field name and
// gives the allowed range, e.g. "top_p = 0 is outside (0, 1]".
absl::Status ValidateSamplingOptions(const SamplingOptions& options, int32_t vocab_size);

}  // namespace jamba::router
