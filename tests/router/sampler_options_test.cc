// ValidateSamplingOptions: every field, its boundaries, and that the error
// names the field and the allowed range.
#include "router/sampler_options.h"

#include <cmath>
#include <functional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jamba::router {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int32_t kVocab = 512;

absl::Status With(const std::function<void(SamplingOptions&)>& change) {
  SamplingOptions o;
  change(o);
  return ValidateSamplingOptions(o, kVocab);
}

void ExpectInvalid(const std::function<void(SamplingOptions&)>& change, const std::string& field,
                   const std::string& range) {
  const absl::Status s = With(change);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_THAT(std::string(s.message()), StartsWith(field));
  EXPECT_THAT(std::string(s.message()), HasSubstr(range));
}

TEST(ValidateSamplingOptionsTest, DefaultsAndBoundariesAreValid) {
  EXPECT_TRUE(ValidateSamplingOptions(SamplingOptions(), kVocab).ok());
  EXPECT_TRUE(With([](SamplingOptions& o) {
                o.temperature = 0.0f;
                o.top_p = 1.0f;
                o.min_p = 1.0f;
                o.top_k = 1 << 20;
                o.repetition_penalty = 1e-3f;
                o.presence_penalty = -2.0f;
                o.frequency_penalty = 2.0f;
                o.logprobs = 20;
                o.max_new_tokens = 1;
                o.stop.assign(16, std::string(256, 'x'));
                o.stop_token_ids.assign(64, kVocab - 1);
              }).ok());
  EXPECT_TRUE(With([](SamplingOptions& o) { o.logprobs = 0; }).ok());
  EXPECT_TRUE(With([](SamplingOptions& o) { o.stop = {"終", "🛑"}; }).ok());
}

TEST(ValidateSamplingOptionsTest, EveryFieldIsCheckedAndNamed) {
  ExpectInvalid([](SamplingOptions& o) { o.max_new_tokens = 0; }, "max_new_tokens", ">= 1");
  ExpectInvalid([](SamplingOptions& o) { o.temperature = -0.1f; }, "temperature", ">= 0");
  ExpectInvalid([](SamplingOptions& o) { o.temperature = NAN; }, "temperature", "finite");
  ExpectInvalid([](SamplingOptions& o) { o.temperature = INFINITY; }, "temperature", "finite");
  ExpectInvalid([](SamplingOptions& o) { o.top_k = -1; }, "top_k", ">= 0");
  ExpectInvalid([](SamplingOptions& o) { o.top_p = 0.0f; }, "top_p", "(0, 1]");
  ExpectInvalid([](SamplingOptions& o) { o.top_p = 1.01f; }, "top_p", "(0, 1]");
  ExpectInvalid([](SamplingOptions& o) { o.top_p = NAN; }, "top_p", "(0, 1]");
  ExpectInvalid([](SamplingOptions& o) { o.min_p = -0.01f; }, "min_p", "[0, 1]");
  ExpectInvalid([](SamplingOptions& o) { o.min_p = 1.5f; }, "min_p", "[0, 1]");
  ExpectInvalid([](SamplingOptions& o) { o.repetition_penalty = 0.0f; }, "repetition_penalty",
                "(0, inf)");
  ExpectInvalid([](SamplingOptions& o) { o.repetition_penalty = INFINITY; }, "repetition_penalty",
                "(0, inf)");
  ExpectInvalid([](SamplingOptions& o) { o.repetition_penalty = NAN; }, "repetition_penalty",
                "(0, inf)");
  ExpectInvalid([](SamplingOptions& o) { o.presence_penalty = 2.5f; }, "presence_penalty",
                "[-2, 2]");
  ExpectInvalid([](SamplingOptions& o) { o.frequency_penalty = -2.01f; }, "frequency_penalty",
                "[-2, 2]");
  ExpectInvalid([](SamplingOptions& o) { o.logprobs = 21; }, "logprobs", "[0, 20]");
  ExpectInvalid([](SamplingOptions& o) { o.logprobs = -2; }, "logprobs", "[0, 20]");
}

TEST(ValidateSamplingOptionsTest, StopStringsAndIds) {
  ExpectInvalid([](SamplingOptions& o) { o.stop.assign(17, "x"); }, "stop", "16");
  ExpectInvalid([](SamplingOptions& o) { o.stop = {"ok", ""}; }, "stop[1]", "[1, 256] bytes");
  ExpectInvalid([](SamplingOptions& o) { o.stop = {std::string(257, 'x')}; }, "stop[0]",
                "[1, 256] bytes");
  ExpectInvalid([](SamplingOptions& o) { o.stop = {"\xC3"}; }, "stop[0]", "UTF-8");
  ExpectInvalid([](SamplingOptions& o) { o.stop_token_ids.assign(65, 1); }, "stop_token_ids", "64");
  ExpectInvalid(
      [](SamplingOptions& o) {
        o.stop_token_ids = {1, kVocab};
      },
      "stop_token_ids[1]", "[0, 512)");
  ExpectInvalid([](SamplingOptions& o) { o.stop_token_ids = {-1}; }, "stop_token_ids[0]",
                "[0, 512)");
}

}  // namespace
}  // namespace jamba::router
