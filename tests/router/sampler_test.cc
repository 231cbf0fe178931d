// Sampler: greedy, seeding, truncation (top-k, top-p, min-p), penalties with
// hand-computed values, and log-probabilities of the raw logits.
#include "router/sampler.h"

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "core/check.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jamba::router {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

SamplingOptions Options(float temperature, uint64_t seed = 0) {
  SamplingOptions o;
  o.temperature = temperature;
  o.seed = seed;
  return o;
}

int32_t SampleOnce(const SamplingOptions& o, const std::vector<float>& logits,
                   const std::vector<int32_t>& prompt = {}) {
  Sampler s(o, prompt);
  absl::StatusOr<SampleResult> r = s.Sample(logits);
  JAMBA_CHECK(r.ok()) << r.status().ToString();
  return r->token;
}

// How often each token comes out of `n` draws with one sampler.
std::map<int32_t, int> Histogram(const SamplingOptions& o, const std::vector<float>& logits,
                                 int n) {
  Sampler s(o, {});
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) ++counts[s.Sample(logits)->token];
  return counts;
}

std::vector<float> RandomLogits(std::mt19937& rng, int vocab, float scale = 3.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab);
  for (float& x : logits) x = normal(rng);
  return logits;
}

int32_t ArgMax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// log([0.1, 0.2, 0.3, 0.4])
const std::vector<float> kFour = {std::log(0.1f), std::log(0.2f), std::log(0.3f), std::log(0.4f)};

TEST(SamplerTest, GreedyIsArgMaxWithFirstIndexOnTies) {
  EXPECT_EQ(SampleOnce(Options(0), {1.0f, 3.0f, 3.0f, 2.0f}), 1);
  EXPECT_EQ(SampleOnce(Options(0), {-5.0f, -4.0f}), 1);
  std::mt19937 rng(1);
  for (int i = 0; i < 50; ++i) {
    const std::vector<float> logits = RandomLogits(rng, 1000);
    EXPECT_EQ(SampleOnce(Options(0, i), logits), ArgMax(logits));
  }
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedDifferentTokens) {
  std::mt19937 rng(2);
  std::vector<std::vector<float>> steps;
  for (int i = 0; i < 64; ++i) steps.push_back(RandomLogits(rng, 100, 1.0f));
  auto run = [&](uint64_t seed) {
    Sampler s(Options(1.0f, seed), {3, 4});
    for (const auto& logits : steps) EXPECT_TRUE(s.Sample(logits).ok());
    return s.output();
  };
  EXPECT_EQ(run(1234), run(1234));
  EXPECT_NE(run(1234), run(1235));
  EXPECT_NE(run(0), run(1ull << 63));
}

TEST(SamplerTest, TopKOneAndTinyTopPAreGreedy) {
  std::mt19937 rng(3);
  for (int i = 0; i < 50; ++i) {
    const std::vector<float> logits = RandomLogits(rng, 500, 1.0f);
    SamplingOptions k1 = Options(1.5f, i);
    k1.top_k = 1;
    EXPECT_EQ(SampleOnce(k1, logits), ArgMax(logits));
    SamplingOptions p = Options(1.5f, i);
    p.top_p = 1e-6f;
    EXPECT_EQ(SampleOnce(p, logits), ArgMax(logits));
    SamplingOptions m = Options(1.5f, i);
    m.min_p = 1.0f;
    EXPECT_EQ(SampleOnce(m, logits), ArgMax(logits));
  }
}

TEST(SamplerTest, TemperatureOneFollowsTheDistribution) {
  const std::map<int32_t, int> h = Histogram(Options(1.0f, 9), kFour, 40000);
  for (int t = 0; t < 4; ++t) EXPECT_NEAR(h.at(t) / 40000.0, 0.1 * (t + 1), 0.01) << t;
  // T = 0.1 raises the probabilities to the 10th power before renormalizing:
  // 0.4^10 / (0.1^10 + 0.2^10 + 0.3^10 + 0.4^10) = 0.9458.
  EXPECT_NEAR(Histogram(Options(0.1f, 9), kFour, 20000).at(3) / 20000.0, 0.9458, 0.01);
}

TEST(SamplerTest, TopKKeepsTheKLargest) {
  SamplingOptions o = Options(1.0f, 5);
  o.top_k = 2;
  const std::map<int32_t, int> h = Histogram(o, kFour, 20000);
  EXPECT_EQ(h.count(0) + h.count(1), 0u);
  EXPECT_NEAR(h.at(3) / 20000.0, 0.4 / 0.7, 0.015);
}

TEST(SamplerTest, TopPKeepsTheSmallestSetReachingP) {
  SamplingOptions o = Options(1.0f, 6);
  o.top_p = 0.65f;  // 0.4 + 0.3 = 0.7 >= 0.65; 0.4 alone is not
  std::map<int32_t, int> h = Histogram(o, kFour, 20000);
  EXPECT_EQ(h.count(0) + h.count(1), 0u);
  EXPECT_NEAR(h.at(3) / 20000.0, 0.4 / 0.7, 0.015);
  o.top_p = 0.75f;  // needs 0.2 too
  h = Histogram(o, kFour, 20000);
  EXPECT_EQ(h.count(0), 0u);
  EXPECT_NEAR(h.at(1) / 20000.0, 0.2 / 0.9, 0.015);
}

TEST(SamplerTest, MinPDropsTokensBelowAFractionOfTheTop) {
  SamplingOptions o = Options(1.0f, 7);
  o.min_p = 0.6f;  // threshold 0.24: keeps 0.3 and 0.4
  const std::map<int32_t, int> h = Histogram(o, kFour, 20000);
  EXPECT_EQ(h.count(0) + h.count(1), 0u);
  EXPECT_NEAR(h.at(2) / 20000.0, 0.3 / 0.7, 0.015);
}

TEST(SamplerTest, TopPThresholdMatchesSorting) {
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> probs(1 + trial % 40);
    for (float& p : probs) p = trial % 3 == 0 ? std::round(u(rng) * 4) / 4 + 0.25f : u(rng);
    const double top_p = 0.05 + 0.9 * u(rng);
    std::vector<float> sorted = probs;
    std::sort(sorted.rbegin(), sorted.rend());
    double total = 0.0;
    for (const float p : probs) total += p;
    double acc = 0.0;
    float expected = sorted.back();
    for (const float p : sorted) {
      acc += p;
      if (acc >= top_p * total) {
        expected = p;
        break;
      }
    }
    EXPECT_EQ(TopPThreshold(probs, top_p), expected) << trial;
  }
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingOptions o;
  o.repetition_penalty = 2.0f;
  std::vector<float> logits = {2.0f, -1.5f, 0.0f, 3.0f};
  ApplyPenalties(o, {0, 1, 2, 99}, {}, absl::MakeSpan(logits));
  EXPECT_THAT(logits, ElementsAre(1.0f, -3.0f, 0.0f, 3.0f));
  o.repetition_penalty = 0.5f;  // < 1 encourages repeats
  logits = {2.0f, -1.5f};
  ApplyPenalties(o, {0, 1}, {}, absl::MakeSpan(logits));
  EXPECT_THAT(logits, ElementsAre(4.0f, -0.75f));
}

TEST(SamplerTest, FrequencyAndPresencePenaltiesSubtract) {
  SamplingOptions o;
  o.frequency_penalty = 0.5f;
  o.presence_penalty = 0.25f;
  std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  ApplyPenalties(o, {}, {{0, 2}, {2, 1}, {7, 3}}, absl::MakeSpan(logits));
  EXPECT_THAT(logits, ElementsAre(-0.25f, 1.0f, 0.25f, 1.0f));
  o.frequency_penalty = -1.0f;  // negative values encourage repeats
  o.presence_penalty = 0.0f;
  logits = {1.0f, 1.0f};
  ApplyPenalties(o, {}, {{1, 2}}, absl::MakeSpan(logits));
  EXPECT_THAT(logits, ElementsAre(1.0f, 3.0f));
}

TEST(SamplerTest, PenaltiesApplyToGreedyOverPromptAndOutput) {
  // Repetition over the prompt: 2.0 / 2 = 1.0 < 1.5.
  SamplingOptions rep = Options(0);
  rep.repetition_penalty = 2.0f;
  EXPECT_EQ(SampleOnce(rep, {2.0f, 1.5f}, /*prompt=*/{0}), 1);
  EXPECT_EQ(SampleOnce(rep, {2.0f, 1.5f}, /*prompt=*/{1}), 0);
  // Frequency over the output only: 1.0 vs 0.9 alternate as counts grow.
  SamplingOptions freq = Options(0);
  freq.frequency_penalty = 0.2f;
  Sampler s(freq, /*prompt=*/{0, 0, 0});
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(s.Sample({1.0f, 0.9f}).ok());
  // counts (0,0): 1.0 > 0.9 -> 0; (1,0): 0.8 < 0.9 -> 1; (1,1): 0.8 > 0.7 -> 0; ...
  EXPECT_THAT(s.output(), ElementsAre(0, 1, 0, 1, 0, 1));
}

TEST(SamplerTest, LogprobsComeFromTheRawLogits) {
  std::mt19937 rng(11);
  const std::vector<float> logits = RandomLogits(rng, 300);
  double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (const float x : logits) sum += std::exp(x - max);
  const double lse = max + std::log(sum);
  SamplingOptions o = Options(0.7f, 3);  // temperature, penalties, truncation
  o.top_k = 5;
  o.repetition_penalty = 1.3f;
  o.frequency_penalty = 1.0f;
  o.logprobs = 4;
  Sampler s(o, {1, 2, 3});
  for (int step = 0; step < 5; ++step) {
    absl::StatusOr<SampleResult> r = s.Sample(logits);
    ASSERT_TRUE(r.ok());
    EXPECT_NEAR(r->logprob, logits[r->token] - lse, 1e-5);
    std::vector<int32_t> order(logits.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    ASSERT_EQ(r->top.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(r->top[i].first, order[i]);
      EXPECT_NEAR(r->top[i].second, logits[order[i]] - lse, 1e-5);
    }
  }
  // Ties list the lower id first; logprobs = 0 gives only the chosen token.
  SamplingOptions ties = Options(0);
  ties.logprobs = 2;
  Sampler t(ties, {});
  const SampleResult r = *t.Sample({0.0f, 1.0f, 1.0f, 1.0f});
  EXPECT_EQ(r.token, 1);
  EXPECT_EQ(r.top[0].first, 1);
  EXPECT_EQ(r.top[1].first, 2);
  EXPECT_NEAR(r.logprob, std::log(std::exp(1.0) / (1 + 3 * std::exp(1.0))), 1e-6);
  ties.logprobs = 0;
  Sampler u(ties, {});
  EXPECT_TRUE(u.Sample({0.0f, 1.0f})->top.empty());
}

TEST(SamplerTest, NanAndInfinityLogits) {
  EXPECT_EQ(SampleOnce(Options(0), {NAN, 1.0f, NAN}), 1);
  EXPECT_EQ(SampleOnce(Options(1.0f), {NAN, -INFINITY, 0.5f}), 2);
  EXPECT_EQ(SampleOnce(Options(1.0f), {0.0f, INFINITY, 5.0f}), 1);
  Sampler s(Options(1.0f), {});
  EXPECT_EQ(s.Sample({NAN, -INFINITY}).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.Sample({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SamplerTest, LargeVocabularyIsLinear) {
  // 262144 logits, nucleus over a flat-ish distribution: runs in well under
  // a second when the cost per token is O(V) (an O(V^2) path would not).
  std::mt19937 rng(12);
  const std::vector<float> logits = RandomLogits(rng, 1 << 18, 0.5f);
  SamplingOptions o = Options(1.0f, 1);
  o.top_p = 0.99f;
  o.logprobs = 20;
  o.repetition_penalty = 1.1f;
  Sampler s(o, std::vector<int32_t>(4096, 7));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s.Sample(logits).ok());
}

}  // namespace
}  // namespace jamba::router
