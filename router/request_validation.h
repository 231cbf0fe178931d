// Validation of public API requests: every field is checked before any
// work is queued; errors are InvalidArgument naming the field and the
// allowed range, in the proto's field names.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "jamba/v1/jamba.pb.h"
#include "model/config.h"
#include "router/generation.h"
#include "router/tokenizer.h"

namespace jamba::router {

struct RequestLimits {
  int64_t context_limit = 0;  // prompt + generated tokens
  uint32_t max_new_tokens = 4096;
  uint32_t default_max_new_tokens = 64;
  size_t max_request_id_bytes = 256;
  size_t max_text_bytes = 1 << 20;
};

// Tokenizes (text input needs a tokenizer) and validates the ids.
absl::StatusOr<std::vector<int32_t>> PromptIds(const jamba::v1::TokenIds* ids,
                                               const std::string* text, bool add_bos,
                                               const Tokenizer* tokenizer,
                                               const model::JambaConfig& config,
                                               const RequestLimits& limits);

// Maps a GenerateRequest to a GenerationRequest (seed and request id still
// to be filled in when unset).
absl::StatusOr<GenerationRequest> ValidateGenerateRequest(const jamba::v1::GenerateRequest& request,
                                                          const Tokenizer* tokenizer,
                                                          const model::JambaConfig& config,
                                                          const RequestLimits& limits);

}  // namespace jamba::router
