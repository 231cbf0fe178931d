// Greedy decoding over a JambaModel: prefill (optionally in chunks), then
// one token at a time, always taking the arg-max logit.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/jamba_model.h"

namespace jamba::model {

// Index of the largest value of a row (the first one on ties, as torch.argmax).
int32_t ArgMax(const float* logits, int64_t n);

struct GreedyOptions {
  int max_new_tokens = 16;
  bool stop_at_eos = true;
  int64_t prefill_chunk = 0;  // > 0: feed the prompt in pieces of this many tokens
};

// Returns the generated tokens (without the prompt).
absl::StatusOr<std::vector<int32_t>> GenerateGreedy(JambaModel& model,
                                                    absl::Span<const int32_t> prompt,
                                                    const GreedyOptions& options);

}  // namespace jamba::model
