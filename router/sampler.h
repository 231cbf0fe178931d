// Sampler: picks each next token of one sequence from the model's logits.
//
// Greedy when temperature == 0: the penalties below, then arg-max with the
// first index winning ties (torch.argmax). Otherwise, in vLLM/HF order:
//   1. repetition penalty over prompt + output tokens:
//      logit > 0 ? logit / p : logit * p
//   2. frequency and presence penalties over output tokens:
//      logit -= frequency * count + presence * (count > 0)
//   3. temperature: logit / T
//   4. top-k: keep logits >= the k-th largest (ties at the boundary stay)
//   5. top-p: keep the most likely tokens whose probability reaches top_p
//      (the smallest such set, plus ties with its least likely member)
//   6. min-p: keep tokens with probability >= min_p * the top probability
//   7. draw from the renormalized rest with std::mt19937_64 seeded from
//      options.seed, mapping its 64-bit output to [0, 1) ourselves (no
//      std:: distribution, whose results differ between standard libraries).
// Determinism: the same seed, options, prompt and sequence of logits give
// the same tokens, on any platform with IEEE floats.
//
// Log-probabilities (options.logprobs >= 0) come from the UNMODIFIED model
// distribution, log_softmax of the raw logits (before penalties,
// temperature and truncation), as the proto's TokenInfo documents.
//
// NaN logits count as -inf and +inf as the largest float. Cost per token:
// O(V) plus O(distinct tokens seen) plus O(V log n) for n log-probabilities.
// Not thread-safe; one per sequence.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "router/sampler_options.h"

namespace jamba::router {

struct SampleResult {
  int32_t token = -1;
  // log_softmax(raw logits)[token]; 0 unless options.logprobs >= 0.
  float logprob = 0.0f;
  // The options.logprobs most likely tokens under the raw logits, most
  // likely first (lower id first on ties), with their log-probabilities.
  std::vector<std::pair<int32_t, float>> top;
};

class Sampler {
 public:
  // REQUIRES: ValidateSamplingOptions(options, ...) is OK. `prompt` feeds
  // the repetition penalty.
  Sampler(const SamplingOptions& options, absl::Span<const int32_t> prompt);

  // Picks the next token from `logits` [vocab] and records it as output
  // for the penalties. InvalidArgument if `logits` is empty; Internal if no
  // logit is above -inf (all NaN or -inf).
  absl::StatusOr<SampleResult> Sample(absl::Span<const float> logits);

  const std::vector<int32_t>& output() const { return output_; }

 private:
  // Steps 3-7 on work_; max_logit is the largest value in work_.
  int32_t Draw(float max_logit);
  // Fills result->logprob and result->top from the raw logits.
  void FillLogprobs(absl::Span<const float> logits, SampleResult* result) const;

  SamplingOptions options_;
  std::mt19937_64 rng_;
  absl::flat_hash_set<int32_t> seen_;  // prompt + output
  absl::flat_hash_map<int32_t, int32_t> output_counts_;
  std::vector<int32_t> output_;
  std::vector<float> work_;   // [V] the logits being processed
  std::vector<float> probs_;  // [V] unnormalized probabilities, scratch
};

// Steps 1-2 on `logits`: the repetition penalty for every id in `seen`,
// the frequency and presence penalties for every id in `output_counts`
// (ids outside `logits` are ignored). Exposed for tests.
void ApplyPenalties(const SamplingOptions& options, const absl::flat_hash_set<int32_t>& seen,
                    const absl::flat_hash_map<int32_t, int32_t>& output_counts,
                    absl::Span<float> logits);

// Threshold of top-p over unnormalized probabilities `probs` (all > 0, order
// not kept): the smallest p such that the probabilities >= p sum to at least
// top_p * sum(probs). Expected O(n). Exposed for tests.
float TopPThreshold(std::vector<float> probs, double top_p);

}  // namespace jamba::router
