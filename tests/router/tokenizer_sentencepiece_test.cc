// SentencePieceTokenizer on the committed fixture, against the goldens that
// Python sentencepiece produced (tests/testdata/tokenizer/golden.json).
#include "router/tokenizer_sentencepiece.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/router_test_util.h"

namespace jamba::router {
namespace {

using ::testing::ElementsAre;
using testing::Golden;
using ::testing::HasSubstr;
using testing::TestDataPath;

const SentencePieceTokenizer& Fixture() {
  static const auto* tokenizer = [] {
    auto t = SentencePieceTokenizer::Load(TestDataPath("tokenizer/tokenizer.model"));
    JAMBA_CHECK(t.ok()) << t.status().ToString();
    return t->release();
  }();
  return *tokenizer;
}

std::vector<int32_t> Ids(const nlohmann::json& list) { return list.get<std::vector<int32_t>>(); }

TEST(SentencePieceTokenizerTest, VocabularyAndSpecialIds) {
  const Tokenizer& t = Fixture();
  EXPECT_EQ(t.vocab_size(), Golden()["vocab_size"].get<int>());
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(*t.IdToPiece(0), "<|pad|>");
  EXPECT_EQ(*t.IdToPiece(1), "<|startoftext|>");
  EXPECT_EQ(*t.IdToPiece(2), "<|endoftext|>");
  EXPECT_EQ(*t.IdToPiece(3), "<|unk|>");
  EXPECT_TRUE(t.IsSpecial(0) && t.IsSpecial(1) && t.IsSpecial(2));
  EXPECT_FALSE(t.IsSpecial(3));  // unknown decodes to " ⁇ ", it is not dropped
  EXPECT_FALSE(t.IsSpecial(512));
  EXPECT_EQ(t.IdToPiece(512).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SentencePieceTokenizerTest, MatchesSentencePieceGoldens) {
  for (const auto& c : Golden()["encode"]) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(text);
    absl::StatusOr<std::vector<int32_t>> ids = Fixture().Encode(text, /*add_bos=*/false);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, Ids(c["sp_ids"]));
    EXPECT_EQ(*Fixture().Decode(*ids), c["sp_decoded"].get<std::string>());
  }
}

TEST(SentencePieceTokenizerTest, DecodesLikeSentencePiece) {
  for (const auto& c : Golden()["decode"]) {
    const std::vector<int32_t> ids = Ids(c["ids"]);
    EXPECT_EQ(*Fixture().Decode(ids), c["sp"].get<std::string>()) << c["ids"].dump();
  }
}

TEST(SentencePieceTokenizerTest, RoundTripsTheCorpus) {
  const std::string corpus = testing::ReadTestFile(TestDataPath("../../tools/corpus/stories.txt"));
  absl::StatusOr<std::vector<int32_t>> ids = Fixture().Encode(corpus, false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_LT(ids->size(), corpus.size() / 2);  // the merges do compress
  EXPECT_EQ(*Fixture().Decode(*ids), corpus);
  for (const char* text : {"  two  spaces  ", "tab\there\n", "日本語 🙂 é", "x"}) {
    EXPECT_EQ(*Fixture().Decode(*Fixture().Encode(text, true)), text);
  }
}

TEST(SentencePieceTokenizerTest, BosIsPrependedOnlyWhenAsked) {
  const std::vector<int32_t> plain = *Fixture().Encode("the bread", false);
  std::vector<int32_t> with_bos = *Fixture().Encode("the bread", true);
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos.front(), 1);
  with_bos.erase(with_bos.begin());
  EXPECT_EQ(with_bos, plain);
  EXPECT_THAT(*Fixture().Encode("", true), ElementsAre(1));
  EXPECT_TRUE(Fixture().Encode("", false)->empty());
  // Specials decode to nothing.
  std::vector<int32_t> framed = {1};
  framed.insert(framed.end(), plain.begin(), plain.end());
  framed.push_back(2);
  framed.push_back(0);
  EXPECT_EQ(*Fixture().Decode(framed), "the bread");
}

TEST(SentencePieceTokenizerTest, SplitsDigitsAndHasNoDummyPrefix) {
  const std::vector<int32_t> ids = *Fixture().Encode("1887", false);
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(*Fixture().IdToPiece(ids[0]), "1");
  EXPECT_EQ(*Fixture().IdToPiece(ids[1]), "8");
  EXPECT_EQ(*Fixture().IdToPiece(ids[2]), "8");
  EXPECT_EQ(*Fixture().IdToPiece(ids[3]), "7");
  // No "▁" is added in front (add_dummy_prefix=false, as Jamba).
  EXPECT_EQ(*Fixture().IdToPiece(Fixture().Encode("the", false)->front()), "t");
  EXPECT_EQ(*Fixture().IdToPiece(Fixture().Encode(" the", false)->front()), "\xE2\x96\x81the");
}

TEST(SentencePieceTokenizerTest, UserDefinedSymbolsAndByteFallback) {
  const std::vector<int32_t> ids = *Fixture().Encode("<|user|>€", false);
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(*Fixture().IdToPiece(ids[0]), "<|user|>");
  EXPECT_EQ(*Fixture().IdToPiece(ids[1]), "<0xE2>");
  EXPECT_EQ(*Fixture().IdToPiece(ids[2]), "<0x82>");
  EXPECT_EQ(*Fixture().IdToPiece(ids[3]), "<0xAC>");
  // Half a character decodes to raw bytes, and to U+FFFD per byte in Decode.
  EXPECT_EQ(*Fixture().DecodeBytes({ids[1], ids[2]}), "\xE2\x82");
  EXPECT_EQ(*Fixture().Decode({ids[1], ids[2]}), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(SentencePieceTokenizerTest, RejectsInvalidUtf8) {
  for (const std::string& bad :
       {std::string("\xFF"), std::string("abc\xC3"), std::string("\xED\xA0\x80"),
        std::string("\xC0\xAF"), std::string("ok\xF4\x90\x80\x80")}) {
    absl::StatusOr<std::vector<int32_t>> ids = Fixture().Encode(bad, true);
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ids.status().message(), HasSubstr("UTF-8"));
  }
}

TEST(SentencePieceTokenizerTest, RejectsOutOfRangeIds) {
  EXPECT_EQ(Fixture().Decode({5, 512}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Fixture().Decode({-1}).status().message(), HasSubstr("-1"));
  EXPECT_EQ(Fixture().TokenText(512), "");
  EXPECT_EQ(Fixture().TokenText(2), "<|endoftext|>");
}

TEST(SentencePieceTokenizerTest, MissingFileIsNotFound) {
  auto t = SentencePieceTokenizer::Load("/nonexistent/dir/tokenizer.model");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(), HasSubstr("/nonexistent/dir/tokenizer.model"));
}

TEST(SentencePieceTokenizerTest, CorruptFilesAreRejected) {
  const std::string good = testing::ReadTestFile(TestDataPath("tokenizer/tokenizer.model"));
  for (const std::string& bad : {std::string("not a model at all"), std::string(),
                                 testing::ReadTestFile(TestDataPath("tokenizer/tokenizer.json"))}) {
    auto t = SentencePieceTokenizer::FromSerialized(bad);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << t.status();
  }
  for (size_t cut : {good.size() / 3, good.size() / 2, good.size() - 1}) {
    EXPECT_FALSE(SentencePieceTokenizer::FromSerialized(good.substr(0, cut)).ok()) << cut;
  }
  const std::string dir = testing::MakeTempDir("corrupt");
  std::ofstream(dir + "/tokenizer.model") << "garbage";
  auto t = SentencePieceTokenizer::Load(dir + "/tokenizer.model");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr(dir + "/tokenizer.model"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace jamba::router
