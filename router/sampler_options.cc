#include "router/sampler_options.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "router/tokenizer_util.h"

namespace jamba::router {
namespace {

absl::Status Invalid(absl::string_view field, const absl::AlphaNum& value,
                     absl::string_view requirement) {
  return absl::InvalidArgumentError(absl::StrCat(field, " = ", value, " ", requirement));
}

// `value` within [lo, hi], with open ends where asked; NaN always fails.
absl::Status CheckRange(absl::string_view field, float value, float lo, bool lo_open, float hi,
                        bool hi_open) {
  const bool ok = (lo_open ? value > lo : value >= lo) && (hi_open ? value < hi : value <= hi);
  if (ok) return absl::OkStatus();
  return Invalid(
      field, value,
      absl::StrCat("is outside ", lo_open ? "(" : "[", lo, ", ", hi, hi_open ? ")" : "]"));
}

absl::Status CheckStops(const SamplingOptions& o, int32_t vocab_size) {
  if (o.stop.size() > kMaxStopStrings) {
    return Invalid("stop", absl::StrCat(o.stop.size(), " strings"),
                   absl::StrCat("exceeds the limit of ", kMaxStopStrings));
  }
  for (size_t i = 0; i < o.stop.size(); ++i) {
    const std::string& s = o.stop[i];
    const std::string field = absl::StrCat("stop[", i, "]");
    if (s.empty() || s.size() > kMaxStopStringBytes) {
      return Invalid(field, absl::StrCat(s.size(), " bytes"),
                     absl::StrCat("is outside [1, ", kMaxStopStringBytes, "] bytes"));
    }
    if (!IsValidUtf8(s)) {
      return absl::InvalidArgumentError(absl::StrCat(field, " is not valid UTF-8"));
    }
  }
  if (o.stop_token_ids.size() > kMaxStopTokenIds) {
    return Invalid("stop_token_ids", absl::StrCat(o.stop_token_ids.size(), " ids"),
                   absl::StrCat("exceeds the limit of ", kMaxStopTokenIds));
  }
  for (size_t i = 0; i < o.stop_token_ids.size(); ++i) {
    const int32_t id = o.stop_token_ids[i];
    if (id < 0 || id >= vocab_size) {
      return Invalid(absl::StrCat("stop_token_ids[", i, "]"), id,
                     absl::StrCat("is outside [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSamplingOptions(const SamplingOptions& o, int32_t vocab_size) {
  constexpr float kInf = INFINITY;
  if (o.max_new_tokens < 1) return Invalid("max_new_tokens", o.max_new_tokens, "must be >= 1");
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature)) {
    return Invalid("temperature", o.temperature, "must be finite and >= 0");
  }
  if (o.top_k < 0) return Invalid("top_k", o.top_k, "must be >= 0 (0: no limit)");
  if (auto s = CheckRange("top_p", o.top_p, 0, true, 1, false); !s.ok()) return s;
  if (auto s = CheckRange("min_p", o.min_p, 0, false, 1, false); !s.ok()) return s;
  if (auto s = CheckRange("repetition_penalty", o.repetition_penalty, 0, true, kInf, true);
      !s.ok()) {
    return s;
  }
  if (auto s = CheckRange("presence_penalty", o.presence_penalty, -2, false, 2, false); !s.ok()) {
    return s;
  }
  if (auto s = CheckRange("frequency_penalty", o.frequency_penalty, -2, false, 2, false); !s.ok()) {
    return s;
  }
  if (o.logprobs < -1 || o.logprobs > kMaxLogprobs) {
    return Invalid("logprobs", o.logprobs,
                   absl::StrCat("is outside [0, ", kMaxLogprobs, "] (-1: none)"));
  }
  return CheckStops(o, vocab_size);
}

}  // namespace jamba::router
