#include "model/greedy.h"

#include <algorithm>

#include "core/status_macros.h"

namespace jamba::model {

int32_t ArgMax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

absl::StatusOr<std::vector<int32_t>> GenerateGreedy(JambaModel& model,
                                                    absl::Span<const int32_t> prompt,
                                                    const GreedyOptions& options) {
  if (prompt.empty()) return absl::InvalidArgumentError("empty prompt");
  const int64_t V = model.config().vocab_size;
  ASSIGN_OR_RETURN(SequenceState state, model.NewSequence());
  const int64_t chunk =
      options.prefill_chunk > 0 ? options.prefill_chunk : static_cast<int64_t>(prompt.size());
  Tensor logits;  // [1, V]
  for (size_t begin = 0; begin < prompt.size(); begin += chunk) {
    const size_t n = std::min(prompt.size() - begin, static_cast<size_t>(chunk));
    SequenceChunk piece{&state, prompt.subspan(begin, n)};
    ASSIGN_OR_RETURN(logits, model.Forward({&piece, 1}, LogitsMode::kLast));
  }
  std::vector<int32_t> generated;
  for (int step = 0; step < options.max_new_tokens; ++step) {
    const int32_t next = ArgMax(logits.data<float>(), V);
    generated.push_back(next);
    if (options.stop_at_eos && model.config().is_eos(next)) break;
    if (step + 1 == options.max_new_tokens) break;
    SequenceChunk piece{&state, absl::MakeConstSpan(&generated.back(), 1)};
    ASSIGN_OR_RETURN(logits, model.Forward({&piece, 1}, LogitsMode::kLast));
  }
  return generated;
}

}  // namespace jamba::model
