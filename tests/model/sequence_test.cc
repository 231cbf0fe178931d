// Sequence-state behaviour of JambaModel: chunked prefill computes what
// one-shot prefill does and sequences batched together what they compute
// alone, both to the bit; bad input leaves state untouched.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/jamba_model.h"
#include "nlohmann/json.hpp"
#include "tests/testing/fixtures.h"

namespace jamba::model {
namespace {

// Chunked, batched and alone compute the same bits: every op computes a
// row the same way whatever its company, and state is carried in f32.
constexpr double kBitForBit = 0.0;

class SequenceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ref_ = testing::LoadReference(GetParam());
    backend_ = std::move(kernels::CreateBackend(kernels::BackendKind::kCpu)).value();
    auto checkpoint = Checkpoint::Open(ref_.dir);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    checkpoint_ = std::move(checkpoint).value();
    auto model = JambaModel::Load(*checkpoint_, backend_.get());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(model).value();
  }

  // Feeds `ids` in chunks of `chunk` tokens, returns the logits of all
  // positions.
  std::vector<float> Prefill(SequenceState* state, const std::vector<int32_t>& ids, size_t chunk) {
    std::vector<float> all;
    for (size_t begin = 0; begin < ids.size(); begin += chunk) {
      SequenceChunk piece{state, absl::MakeConstSpan(ids).subspan(begin, chunk)};
      auto logits = model_->Forward({&piece, 1}, LogitsMode::kAll);
      EXPECT_TRUE(logits.ok()) << logits.status();
      if (!logits.ok()) return all;
      all.insert(all.end(), logits->data<float>(), logits->data<float>() + logits->numel());
    }
    return all;
  }

  std::vector<float> Decode(SequenceState* state, const std::vector<int32_t>& ids) {
    std::vector<float> all;
    for (int32_t id : ids) {
      SequenceChunk piece{state, absl::MakeConstSpan(&id, 1)};
      auto logits = model_->Forward({&piece, 1}, LogitsMode::kLast);
      EXPECT_TRUE(logits.ok()) << logits.status();
      if (!logits.ok()) return all;
      all.insert(all.end(), logits->data<float>(), logits->data<float>() + logits->numel());
    }
    return all;
  }

  testing::Reference ref_;
  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<JambaModel> model_;
};

TEST_P(SequenceTest, ChunkedPrefillEqualsOneShot) {
  SequenceState one_shot = model_->NewSequence().value();
  const std::vector<float> expected_prompt =
      Prefill(&one_shot, ref_.prompt_ids, ref_.prompt_ids.size());
  const std::vector<float> expected_decode = Decode(&one_shot, ref_.greedy_ids);
  for (size_t chunk : {1u, 2u, 3u, 5u}) {
    SequenceState chunked = model_->NewSequence().value();
    const std::vector<float> prompt = Prefill(&chunked, ref_.prompt_ids, chunk);
    ASSERT_EQ(prompt.size(), expected_prompt.size());
    EXPECT_LE(testing::RelativeMaxError(prompt.data(), expected_prompt.data(), prompt.size()),
              kBitForBit)
        << "chunk " << chunk;
    const std::vector<float> decode = Decode(&chunked, ref_.greedy_ids);
    ASSERT_EQ(decode.size(), expected_decode.size());
    EXPECT_LE(testing::RelativeMaxError(decode.data(), expected_decode.data(), decode.size()),
              kBitForBit)
        << "chunk " << chunk;
    EXPECT_EQ(chunked.length(), one_shot.length());
  }
}

TEST_P(SequenceTest, BatchedSequencesMatchSeparateRuns) {
  const std::vector<int32_t>& a = ref_.prompt_ids;
  const std::vector<int32_t> b(ref_.greedy_ids.begin(), ref_.greedy_ids.begin() + 5);
  SequenceState alone_a = model_->NewSequence().value();
  SequenceState alone_b = model_->NewSequence().value();
  const std::vector<float> logits_a = Prefill(&alone_a, a, a.size());
  const std::vector<float> logits_b = Prefill(&alone_b, b, b.size());

  SequenceState batched_a = model_->NewSequence().value();
  SequenceState batched_b = model_->NewSequence().value();
  SequenceChunk batch[] = {{&batched_a, a}, {&batched_b, b}};
  auto logits = model_->Forward(batch, LogitsMode::kAll);
  ASSERT_TRUE(logits.ok()) << logits.status();
  const int64_t V = ref_.vocab_size;
  EXPECT_LE(testing::RelativeMaxError(logits->data<float>(), logits_a.data(), a.size() * V),
            kBitForBit);
  EXPECT_LE(testing::RelativeMaxError(logits->data<float>() + a.size() * V, logits_b.data(),
                                      b.size() * V),
            kBitForBit);

  // One decode step for both, batched, against the same step alone.
  const int32_t next = ref_.greedy_ids[7];
  SequenceChunk step[] = {{&batched_a, absl::MakeConstSpan(&next, 1)},
                          {&batched_b, absl::MakeConstSpan(&next, 1)}};
  auto last = model_->Forward(step, LogitsMode::kLast);
  ASSERT_TRUE(last.ok()) << last.status();
  const std::vector<float> step_a = Decode(&alone_a, {next});
  const std::vector<float> step_b = Decode(&alone_b, {next});
  EXPECT_LE(testing::RelativeMaxError(last->data<float>(), step_a.data(), V), kBitForBit);
  EXPECT_LE(testing::RelativeMaxError(last->data<float>() + V, step_b.data(), V), kBitForBit);
}

TEST_P(SequenceTest, BadInputIsRejectedAndLeavesStateUntouched) {
  SequenceState state = model_->NewSequence().value();
  const std::vector<int32_t> good = {ref_.prompt_ids[0], ref_.prompt_ids[1]};
  Prefill(&state, good, good.size());
  ASSERT_EQ(state.length(), 2);

  const std::vector<int32_t> out_of_vocab = {1, static_cast<int32_t>(ref_.vocab_size)};
  SequenceChunk bad{&state, out_of_vocab};
  auto result = model_->Forward({&bad, 1}, LogitsMode::kLast);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("outside the vocabulary"), std::string::npos);

  const std::vector<int32_t> negative = {-1};
  SequenceChunk bad2{&state, negative};
  EXPECT_EQ(model_->Forward({&bad2, 1}, LogitsMode::kLast).status().code(),
            absl::StatusCode::kInvalidArgument);
  SequenceChunk empty{&state, {}};
  EXPECT_EQ(model_->Forward({&empty, 1}, LogitsMode::kLast).status().code(),
            absl::StatusCode::kInvalidArgument);
  SequenceChunk twice[] = {{&state, good}, {&state, good}};
  EXPECT_EQ(model_->Forward(twice, LogitsMode::kLast).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(state.length(), 2);

  // The state still continues exactly: the rest of the prompt gives the
  // same logits as one-shot prefill.
  const std::vector<int32_t> rest(ref_.prompt_ids.begin() + 2, ref_.prompt_ids.end());
  const std::vector<float> logits = Prefill(&state, rest, rest.size());
  const int64_t V = ref_.vocab_size;
  EXPECT_LE(
      testing::RelativeMaxError(logits.data() + (rest.size() - 1) * V,
                                ref_.prompt_logits.data() + (ref_.prompt_ids.size() - 1) * V, V),
      1e-4);
}

TEST_P(SequenceTest, ContextLimitIsEnforced) {
  // The fixture with its context limit lowered to 16 tokens.
  const std::string dir = ::testing::TempDir() + "/context_limit_" + GetParam();
  std::filesystem::create_directories(dir);
  for (const auto& entry : std::filesystem::directory_iterator(ref_.dir)) {
    const std::string name = entry.path().filename().string();
    if (name == "config.json") continue;
    std::filesystem::remove(dir + "/" + name);
    std::filesystem::create_symlink(entry.path(), dir + "/" + name);
  }
  std::ifstream in(ref_.dir + "/config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["max_position_embeddings"] = 16;
  config.erase("n_ctx");
  std::ofstream(dir + "/config.json") << config.dump();
  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  auto model = JambaModel::Load(**checkpoint, backend_.get());
  ASSERT_TRUE(model.ok()) << model.status();

  SequenceState state = (*model)->NewSequence().value();
  const std::vector<int32_t> too_long(17, 3);
  SequenceChunk chunk{&state, too_long};
  auto result = (*model)->Forward({&chunk, 1}, LogitsMode::kLast);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(result.status().message().find("context limit of 16"), std::string::npos);
  EXPECT_EQ(state.length(), 0);

  const std::vector<int32_t> fits(16, 3);
  SequenceChunk ok_chunk{&state, fits};
  EXPECT_TRUE((*model)->Forward({&ok_chunk, 1}, LogitsMode::kLast).ok());
  const int32_t one_more = 3;
  SequenceChunk over{&state, absl::MakeConstSpan(&one_more, 1)};
  EXPECT_EQ((*model)->Forward({&over, 1}, LogitsMode::kLast).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(state.length(), 16);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SequenceTest, ::testing::ValuesIn(testing::ListFixtures()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace jamba::model
