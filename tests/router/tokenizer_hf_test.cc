// HfBpeTokenizer on the two tokenizer.json layouts transformers writes for
// the fixture (legacy Replace normalizer; Metaspace pre-tokenizer), against
// goldens from the `tokenizers` library, and LoadTokenizerForModel.
#include "router/tokenizer_hf.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/tokenizer_sentencepiece.h"
#include "tests/router/router_test_util.h"

namespace jamba::router {
namespace {

using testing::Golden;
using ::testing::HasSubstr;
using testing::TestDataPath;

class HfGoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto t = HfBpeTokenizer::Load(TestDataPath("tokenizer/" + GetParam() + ".json"),
                                  "<|startoftext|>", "<|endoftext|>");
    ASSERT_TRUE(t.ok()) << t.status();
    tokenizer_ = *std::move(t);
  }
  std::unique_ptr<HfBpeTokenizer> tokenizer_;
};

TEST_P(HfGoldenTest, EncodesAndDecodesLikeTokenizers) {
  EXPECT_EQ(tokenizer_->vocab_size(), 512);
  EXPECT_EQ(tokenizer_->bos_id(), 1);
  EXPECT_EQ(tokenizer_->eos_id(), 2);
  for (const auto& c : Golden()["encode"]) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(text);
    const auto expected = c[GetParam() + "_ids"].get<std::vector<int32_t>>();
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer_->Encode(text, false);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, expected);
    EXPECT_EQ(*tokenizer_->Decode(expected), c[GetParam() + "_decoded"].get<std::string>());
  }
  for (const auto& c : Golden()["decode"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(*tokenizer_->Decode(ids), c[GetParam()].get<std::string>()) << c["ids"].dump();
  }
}

TEST_P(HfGoldenTest, SpecialTokensInTextAreRecognized) {
  // HF's default: written special tokens become the token (SentencePiece
  // would spell them out in bytes).
  const std::vector<int32_t> ids = *tokenizer_->Encode("a<|endoftext|>b", true);
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[2], 2);
  EXPECT_TRUE(tokenizer_->IsSpecial(2));
  EXPECT_FALSE(tokenizer_->IsSpecial(7));  // <|user|> is added but not special
  EXPECT_EQ(*tokenizer_->Decode(ids), "ab");
}

TEST_P(HfGoldenTest, AgreesWithSentencePieceWithoutSpecialText) {
  auto sp = SentencePieceTokenizer::Load(TestDataPath("tokenizer/tokenizer.model"));
  ASSERT_TRUE(sp.ok());
  for (const auto& c : Golden()["encode"]) {
    const std::string text = c["text"].get<std::string>();
    if (text.find("<|endoftext|>") != std::string::npos ||
        text.find("<|startoftext|>") != std::string::npos) {
      continue;
    }
    EXPECT_EQ(*tokenizer_->Encode(text, true), *(*sp)->Encode(text, true)) << text;
  }
}

TEST_P(HfGoldenTest, RejectsInvalidUtf8AndBadIds) {
  EXPECT_EQ(tokenizer_->Encode("\xC3(", false).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tokenizer_->Decode({512}).status().code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Layouts, HfGoldenTest,
                         ::testing::Values("tokenizer", "tokenizer_metaspace"));

// Layouts derived from the fixture (tools/make_tokenizer_fixture.py,
// make_hf_variants): Llama-2's Prepend + Strip, Metaspace first/split,
// added-token lstrip/rstrip/normalized, unk fusing without byte fallback.
TEST(HfBpeTokenizerTest, VariantLayoutsMatchTokenizers) {
  int checked = 0;
  for (const auto& [name, cases] : Golden()["hf_variants"].items()) {
    SCOPED_TRACE(name);
    auto t = HfBpeTokenizer::Load(TestDataPath("tokenizer/hf_variants/" + name + ".json"));
    ASSERT_TRUE(t.ok()) << t.status();
    for (const auto& c : cases) {
      const std::string text = c["text"].get<std::string>();
      const auto expected = c["ids"].get<std::vector<int32_t>>();
      EXPECT_EQ(*(*t)->Encode(text, false), expected) << "[" << text << "]";
      EXPECT_EQ(*(*t)->Decode(expected), c["decoded"].get<std::string>()) << "[" << text << "]";
      ++checked;
    }
  }
  EXPECT_GE(checked, 4 * 50);
}

TEST(HfBpeTokenizerTest, BosFromTheTemplateWhenNotNamed) {
  auto t = HfBpeTokenizer::Load(TestDataPath("tokenizer/tokenizer.json"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->bos_id(), 1);
  EXPECT_EQ((*t)->eos_id(), -1);
  EXPECT_EQ(
      HfBpeTokenizer::Load(TestDataPath("tokenizer/tokenizer.json"), "<nope>").status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(HfBpeTokenizerTest, ErrorsNameTheProblem) {
  EXPECT_EQ(HfBpeTokenizer::Load("/nonexistent/tokenizer.json").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(HfBpeTokenizer::FromJson("{not json").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HfBpeTokenizer::FromJson("[]").status().code(), absl::StatusCode::kInvalidArgument);
  auto t = HfBpeTokenizer::FromJson(R"({"model": {"type": "WordPiece", "vocab": {}}})");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(t.status().message(), HasSubstr("WordPiece"));
  const std::string bpe =
      R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
  t = HfBpeTokenizer::FromJson("{" + bpe + R"(, "pre_tokenizer": {"type": "ByteLevel"}})");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(t.status().message(), HasSubstr("ByteLevel"));
  t = HfBpeTokenizer::FromJson("{" + bpe + R"(, "normalizer": {"type": "NFKC"}})");
  EXPECT_THAT(t.status().message(), HasSubstr("NFKC"));
  t = HfBpeTokenizer::FromJson(
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("merge 0"));
  t = HfBpeTokenizer::FromJson(R"({"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}})");
  EXPECT_THAT(t.status().message(), HasSubstr("model.vocab"));
}

TEST(HfBpeTokenizerTest, MinimalBpeMergesByRank) {
  // Rank decides, not length: "b c" outranks "a b".
  auto t = HfBpeTokenizer::FromJson(R"({
    "added_tokens": [{"id": 5, "content": "<x>", "special": true, "rstrip": true}],
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4},
              "merges": [["b", "c"], ["a", "b"]]},
    "decoder": {"type": "Fuse"}})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*(*t)->Encode("abc", false), (std::vector<int32_t>{0, 4}));
  EXPECT_EQ(*(*t)->Encode("ab", false), (std::vector<int32_t>{3}));
  // No unk token and no byte fallback: unknown characters are dropped (HF),
  // and their neighbours then merge.
  EXPECT_EQ(*(*t)->Encode("azb", false), (std::vector<int32_t>{3}));
  // rstrip swallows the spaces after the added token.
  EXPECT_EQ(*(*t)->Encode("a<x>   b", false), (std::vector<int32_t>{0, 5, 1}));
  EXPECT_EQ(*(*t)->Decode({0, 5, 4}), "abc");
}

TEST(LoadTokenizerForModelTest, FindsTheFilesOfACheckpoint) {
  auto t = LoadTokenizerForModel(TestDataPath("tiny_model"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->vocab_size(), 512);
  EXPECT_NE(dynamic_cast<const SentencePieceTokenizer*>(t->get()), nullptr);

  const std::string dir = testing::MakeTempDir("hf_only");
  EXPECT_EQ(LoadTokenizerForModel(dir).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadTokenizerForModel(dir + "/missing").status().code(), absl::StatusCode::kNotFound);
  std::filesystem::copy_file(TestDataPath("tiny_model/tokenizer.json"), dir + "/tokenizer.json");
  std::filesystem::copy_file(TestDataPath("tiny_model/tokenizer_config.json"),
                             dir + "/tokenizer_config.json");
  t = LoadTokenizerForModel(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_NE(dynamic_cast<const HfBpeTokenizer*>(t->get()), nullptr);
  EXPECT_EQ((*t)->bos_id(), 1);
  EXPECT_EQ((*t)->eos_id(), 2);

  std::ofstream(dir + "/tokenizer.model") << "garbage";
  EXPECT_EQ(LoadTokenizerForModel(dir).status().code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace jamba::router
