#include "router/sampler.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>
#include <queue>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace jamba::router {
namespace {

// NaN -> -inf, +inf -> FLT_MAX, so that max-subtracted exponentials work.
float Clean(float x) {
  if (std::isnan(x)) return -INFINITY;
  return x == INFINITY ? FLT_MAX : x;
}

// Uniform double in [0, 1) from the top 53 bits of one 64-bit draw.
double UniformDouble(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

float TopPThreshold(std::vector<float> probs, double top_p) {
  double total = 0.0;
  for (const float p : probs) total += p;
  const double target = top_p * total;
  // probs[0, lo) are kept, all >= everything in [lo, hi); acc is their sum,
  // and acc < target.
  size_t lo = 0;
  size_t hi = probs.size();
  double acc = 0.0;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(probs.begin() + lo, probs.begin() + mid, probs.begin() + hi,
                     std::greater<float>());
    double left = 0.0;
    for (size_t i = lo; i < mid; ++i) left += probs[i];
    if (acc + left >= target) {
      hi = mid;
    } else if (acc + left + probs[mid] >= target) {
      return probs[mid];
    } else {
      acc += left + probs[mid];
      lo = mid + 1;
    }
  }
  // Rounding left the target out of reach: keep everything.
  return probs.empty() ? 0.0f : *std::min_element(probs.begin(), probs.end());
}

void ApplyPenalties(const SamplingOptions& options, const absl::flat_hash_set<int32_t>& seen,
                    const absl::flat_hash_map<int32_t, int32_t>& output_counts,
                    absl::Span<float> logits) {
  const auto in_range = [&](int32_t id) {
    return id >= 0 && static_cast<size_t>(id) < logits.size();
  };
  const float rp = options.repetition_penalty;
  if (rp != 1.0f) {
    for (const int32_t id : seen) {
      if (!in_range(id)) continue;
      float& x = logits[id];
      x = x > 0.0f ? x / rp : x * rp;
    }
  }
  const float freq = options.frequency_penalty;
  const float presence = options.presence_penalty;
  if (freq == 0.0f && presence == 0.0f) return;
  for (const auto& [id, count] : output_counts) {
    if (in_range(id) && count > 0) logits[id] -= freq * static_cast<float>(count) + presence;
  }
}

Sampler::Sampler(const SamplingOptions& options, absl::Span<const int32_t> prompt)
    : options_(options), rng_(options.seed) {
  if (options_.repetition_penalty != 1.0f) seen_.insert(prompt.begin(), prompt.end());
}

int32_t Sampler::Draw(float max_logit) {
  const size_t vocab = work_.size();
  const double inv_t = 1.0 / options_.temperature;
  // Temperature, keeping the largest scaled logit at 0.
  for (float& x : work_) x = static_cast<float>((static_cast<double>(x) - max_logit) * inv_t);
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < vocab) {
    probs_ = work_;
    std::nth_element(probs_.begin(), probs_.begin() + (options_.top_k - 1), probs_.end(),
                     std::greater<float>());
    const float kth = probs_[options_.top_k - 1];
    for (float& x : work_) {
      if (x < kth) x = -INFINITY;
    }
  }
  probs_.resize(vocab);
  for (size_t i = 0; i < vocab; ++i) probs_[i] = std::exp(work_[i]);  // max is exp(0) = 1
  if (options_.top_p < 1.0f) {
    std::vector<float> kept;
    for (const float p : probs_) {
      if (p > 0.0f) kept.push_back(p);
    }
    const float threshold = TopPThreshold(std::move(kept), options_.top_p);
    for (float& p : probs_) {
      if (p < threshold) p = 0.0f;
    }
  }
  if (options_.min_p > 0.0f) {
    for (float& p : probs_) {
      if (p < options_.min_p) p = 0.0f;  // the top probability is 1
    }
  }
  double total = 0.0;
  for (const float p : probs_) total += p;
  const double u = UniformDouble(rng_) * total;
  double acc = 0.0;
  int32_t last = 0;
  for (size_t i = 0; i < vocab; ++i) {
    if (probs_[i] <= 0.0f) continue;
    acc += probs_[i];
    last = static_cast<int32_t>(i);
    if (acc > u) return last;
  }
  return last;  // u rounded up to the total
}

void Sampler::FillLogprobs(absl::Span<const float> logits, SampleResult* result) const {
  double max = -INFINITY;
  for (const float x : logits) max = std::max<double>(max, Clean(x));
  double sum = 0.0;
  for (const float x : logits) sum += std::exp(Clean(x) - max);
  const double lse = max + std::log(sum);
  auto logprob = [&](int32_t id) { return static_cast<float>(Clean(logits[id]) - lse); };
  result->logprob = logprob(result->token);
  const size_t n = std::min<size_t>(options_.logprobs, logits.size());
  if (n == 0) return;
  // A min-heap of the n best (logit desc, id asc) seen so far.
  auto better = [&](int32_t a, int32_t b) {
    const float la = Clean(logits[a]);
    const float lb = Clean(logits[b]);
    return la > lb || (la == lb && a < b);
  };
  std::priority_queue<int32_t, std::vector<int32_t>, decltype(better)> heap(better);
  for (int32_t id = 0; id < static_cast<int32_t>(logits.size()); ++id) {
    if (heap.size() < n) {
      heap.push(id);
    } else if (better(id, heap.top())) {
      heap.pop();
      heap.push(id);
    }
  }
  result->top.resize(n);
  for (size_t i = n; i > 0; --i) {
    result->top[i - 1] = {heap.top(), logprob(heap.top())};
    heap.pop();
  }
}

absl::StatusOr<SampleResult> Sampler::Sample(absl::Span<const float> logits) {
  if (logits.empty()) return absl::InvalidArgumentError("Sampler::Sample: no logits");
  work_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) work_[i] = Clean(logits[i]);
  ApplyPenalties(options_, seen_, output_counts_, absl::MakeSpan(work_));
  // Arg-max, first index on ties; also the max for the softmax below.
  int32_t best = 0;
  for (size_t i = 1; i < work_.size(); ++i) {
    if (work_[i] > work_[best]) best = static_cast<int32_t>(i);
  }
  if (work_[best] == -INFINITY) {
    return absl::InternalError(
        absl::StrCat("Sampler::Sample: all ", logits.size(), " logits are NaN or -inf"));
  }
  SampleResult result;
  result.token = options_.temperature == 0.0f ? best : Draw(work_[best]);
  if (options_.logprobs >= 0) FillLogprobs(logits, &result);
  output_.push_back(result.token);
  ++output_counts_[result.token];
  if (options_.repetition_penalty != 1.0f) seen_.insert(result.token);
  return result;
}

}  // namespace jamba::router
