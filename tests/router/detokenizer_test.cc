// Detokenizer: streamed text equals the full decode, characters are never
// split, and SentencePiece's leading-space rule survives the windowing.
#include "router/detokenizer.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/tokenizer_hf.h"
#include "router/tokenizer_sentencepiece.h"
#include "router/tokenizer_util.h"
#include "tests/router/router_test_util.h"
#include "tests/router/sp_proto_writer.h"

namespace jamba::router {
namespace {

using ::testing::ElementsAre;
using testing::TestDataPath;

std::unique_ptr<Tokenizer> LoadSp(const std::string& suffix = "") {
  auto t = SentencePieceTokenizer::FromSerialized(
      testing::ReadTestFile(TestDataPath("tokenizer/tokenizer.model")) + suffix);
  JAMBA_CHECK(t.ok()) << t.status().ToString();
  return *std::move(t);
}

// Every Add() result, then Flush().
std::vector<std::string> Stream(const Tokenizer& t, const std::vector<int32_t>& ids,
                                const std::vector<int32_t>& context = {}) {
  Detokenizer detok(&t, context);
  std::vector<std::string> out;
  for (const int32_t id : ids) out.push_back(detok.Add(id));
  out.push_back(detok.Flush());
  return out;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string s;
  for (const std::string& p : parts) s += p;
  return s;
}

int32_t Piece(const Tokenizer& t, const std::string& piece) {
  for (int32_t id = 0; id < t.vocab_size(); ++id) {
    if (*t.IdToPiece(id) == piece) return id;
  }
  JAMBA_CHECK(false) << "no piece " << piece;
  return -1;
}

class DetokenizerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "hf") {
      auto t = HfBpeTokenizer::Load(TestDataPath("tokenizer/tokenizer.json"));
      ASSERT_TRUE(t.ok()) << t.status();
      tokenizer_ = *std::move(t);
    } else if (GetParam() == "sp_dummy_prefix") {
      tokenizer_ = LoadSp(testing::NormalizerField(true, false));
    } else {
      tokenizer_ = LoadSp();
    }
  }
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_P(DetokenizerTest, StreamEqualsFullDecodeAndNeverSplitsCharacters) {
  const Tokenizer& t = *tokenizer_;
  for (const char* text :
       {"The lighthouse on the northern cape was built in 1887.", "  spaces   and\ttabs\n",
        "日本語のテキストと中文", "emoji 🙂👍🏽 flag 🇫🇷 and € signs", "café naïve",
        "▁ literal", "<|user|>Hi<|eom|>"}) {
    SCOPED_TRACE(text);
    const std::vector<int32_t> ids = *t.Encode(text, /*add_bos=*/true);
    const std::vector<std::string> parts = Stream(t, ids);
    EXPECT_EQ(Join(parts), *t.Decode(ids));
    for (const std::string& p : parts) {
      EXPECT_TRUE(IsValidUtf8(p)) << p;
      EXPECT_EQ(p.find(std::string(kReplacementChar)), std::string::npos) << p;
    }
  }
}

TEST_P(DetokenizerTest, RandomTokenStreamsMatchTheFullDecode) {
  // Half of the ids are byte tokens (ids 9-264 in the fixture) and some are
  // specials, to split, complete and break characters in every way.
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> any(0, tokenizer_->vocab_size() - 1);
  std::uniform_int_distribution<int32_t> byte(9, 264);
  std::uniform_int_distribution<int32_t> special(0, 3);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<int32_t> ids(1 + trial % 60);
    for (int32_t& i : ids) {
      const uint32_t kind = rng() % 10;
      i = kind < 5 ? byte(rng) : kind < 6 ? special(rng) : any(rng);
    }
    const std::vector<std::string> parts = Stream(*tokenizer_, ids);
    EXPECT_EQ(Join(parts), *tokenizer_->Decode(ids)) << trial;
    for (const std::string& p : parts) EXPECT_TRUE(IsValidUtf8(p));
  }
}

TEST_P(DetokenizerTest, HoldsAByteFallbackCharacterUntilComplete) {
  const Tokenizer& t = *tokenizer_;
  const int32_t e2 = Piece(t, "<0xE2>"), x82 = Piece(t, "<0x82>"), xac = Piece(t, "<0xAC>");
  const int32_t a = Piece(t, "a");
  EXPECT_THAT(Stream(t, {a, e2, x82, xac, a}), ElementsAre("a", "", "", "€", "a", ""));
  // 4-byte emoji from its bytes.
  EXPECT_EQ(Join(Stream(t, *t.Encode("🙂", false))), "🙂");
  // Bytes that can never form a character are replaced as soon as that is known.
  const int32_t ff = Piece(t, "<0xFF>");
  EXPECT_THAT(Stream(t, {ff, a}), ElementsAre("\xEF\xBF\xBD", "a", ""));
  EXPECT_THAT(Stream(t, {e2, a}), ElementsAre("",
                                              "\xEF\xBF\xBD"
                                              "a",
                                              ""));
  // An unfinished character at the end comes out of Flush as U+FFFD per byte.
  EXPECT_THAT(Stream(t, {a, e2, x82}), ElementsAre("a", "", "", "\xEF\xBF\xBD\xEF\xBF\xBD"));
}

TEST_P(DetokenizerTest, SpecialAndOutOfRangeTokensAddNothing) {
  const Tokenizer& t = *tokenizer_;
  const std::vector<int32_t> the = *t.Encode("the", false);
  std::vector<int32_t> ids = {1};
  ids.insert(ids.end(), the.begin(), the.end());
  ids.push_back(2);
  std::vector<int32_t> in_range = ids;
  in_range.insert(in_range.end(), the.begin(), the.end());
  ids.push_back(t.vocab_size() + 10);
  ids.insert(ids.end(), the.begin(), the.end());
  EXPECT_EQ(Join(Stream(t, ids)), *t.Decode(in_range));
  EXPECT_THAT(Stream(t, {2, 1, 0}), ElementsAre("", "", "", ""));
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, DetokenizerTest,
                         ::testing::Values("sp", "sp_dummy_prefix", "hf"));

TEST(DetokenizerLeadingSpaceTest, ContextGivesTheFirstTokenItsSpace) {
  // With add_dummy_prefix, "▁water" alone decodes to "water"; after a prompt
  // it is " water".
  std::unique_ptr<Tokenizer> t = LoadSp(testing::NormalizerField(true, false));
  const std::vector<int32_t> prompt = *t->Encode("the", true);
  const int32_t water = Piece(*t,
                              "\xE2\x96\x81"
                              "water");
  EXPECT_THAT(Stream(*t, {water}), ElementsAre("water", ""));
  EXPECT_THAT(Stream(*t, {water}, prompt), ElementsAre(" water", ""));
  // A special token between words does not eat the next word's space.
  EXPECT_EQ(Join(Stream(*t, {water, 2, water})), "water water");
  EXPECT_EQ(*t->Decode({water, 2, water}), "water water");
}

TEST(DetokenizerLeadingSpaceTest, LongStreamsKeepWorking) {
  std::unique_ptr<Tokenizer> t = LoadSp();
  const std::string text = testing::ReadTestFile(TestDataPath("../../tools/corpus/stories.txt"));
  const std::vector<int32_t> ids = *t->Encode(text, true);
  EXPECT_EQ(Join(Stream(*t, ids)), text);
}

}  // namespace
}  // namespace jamba::router
