// SentencePieceTokenizer against libsentencepiece itself (Debian 0.1.97) on
// seeded random text and random id sequences, for the fixture model and for
// variants with add_dummy_prefix / remove_extra_whitespaces switched on.
#include <random>

#include "gtest/gtest.h"
#include "router/tokenizer_sentencepiece.h"
#include "tests/router/router_test_util.h"
#include "tests/router/sp_proto_writer.h"
#include "tests/router/spm_reference.h"

namespace jamba::router {
namespace {

// Random UTF-8 mixing what tokenizers get wrong: space runs, digits,
// user-defined symbols, U+2581, multi-byte characters, special names.
std::string RandomText(std::mt19937& rng) {
  static const std::vector<std::string> kAtoms = {"a",
                                                  "e",
                                                  "t",
                                                  "h",
                                                  "the",
                                                  " ",
                                                  "  ",
                                                  "   ",
                                                  "\n",
                                                  "\t",
                                                  "0",
                                                  "1",
                                                  "7",
                                                  ".",
                                                  ",",
                                                  "!",
                                                  "light",
                                                  "house",
                                                  " bread",
                                                  "<|user|>",
                                                  "<|eom|>",
                                                  "<|endoftext|>",
                                                  "<",
                                                  "|",
                                                  "\xE2\x96\x81",
                                                  "é",
                                                  "ß",
                                                  "日",
                                                  "本",
                                                  "語",
                                                  "한",
                                                  "🙂",
                                                  "👍🏽",
                                                  "€",
                                                  "\xC2\xA0",
                                                  "\xE2\x80\x8B",
                                                  "Q",
                                                  "Z"};
  std::string text;
  const int n = static_cast<int>(rng() % 24);
  for (int i = 0; i < n; ++i) text += kAtoms[rng() % kAtoms.size()];
  return text;
}

class SpmParityTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    std::string bytes = testing::ReadTestFile(testing::TestDataPath("tokenizer/tokenizer.model"));
    if (GetParam() == 1) bytes += testing::NormalizerField(true, false);
    if (GetParam() == 2) bytes += testing::NormalizerField(true, true);
    if (GetParam() == 3) bytes += testing::NormalizerField(false, true);
    std::string error;
    ASSERT_TRUE(reference_.Load(bytes, &error)) << error;
    auto t = SentencePieceTokenizer::FromSerialized(bytes);
    ASSERT_TRUE(t.ok()) << t.status();
    tokenizer_ = *std::move(t);
  }
  testing::SpmReference reference_;
  std::unique_ptr<SentencePieceTokenizer> tokenizer_;
};

TEST_P(SpmParityTest, EncodeMatches) {
  EXPECT_EQ(tokenizer_->bos_id(), reference_.bos_id());
  EXPECT_EQ(tokenizer_->eos_id(), reference_.eos_id());
  std::mt19937 rng(100 + GetParam());
  for (int i = 0; i < 3000; ++i) {
    const std::string text = RandomText(rng);
    const std::vector<int> expected = reference_.Encode(text);
    const std::vector<int32_t> ids = *tokenizer_->Encode(text, false);
    ASSERT_EQ(std::vector<int>(ids.begin(), ids.end()), expected) << "text: [" << text << "]";
    ASSERT_EQ(*tokenizer_->Decode(ids), reference_.Decode(expected)) << "text: [" << text << "]";
  }
}

TEST_P(SpmParityTest, DecodeOfRandomIdsMatches) {
  std::mt19937 rng(200 + GetParam());
  for (int i = 0; i < 3000; ++i) {
    std::vector<int> ids(rng() % 12);
    for (int& id : ids) id = static_cast<int>(rng() % tokenizer_->vocab_size());
    const std::vector<int32_t> ours(ids.begin(), ids.end());
    std::string trace;
    for (const int id : ids) trace += std::to_string(id) + " ";
    ASSERT_EQ(*tokenizer_->Decode(ours), reference_.Decode(ids)) << "ids: " << trace;
  }
}

std::string VariantName(const ::testing::TestParamInfo<int>& info) {
  static const char* const kNames[] = {"Fixture", "DummyPrefix", "DummyPrefixRemoveExtra",
                                       "RemoveExtra"};
  return kNames[info.param];
}

INSTANTIATE_TEST_SUITE_P(Normalizers, SpmParityTest, ::testing::Values(0, 1, 2, 3), VariantName);

}  // namespace
}  // namespace jamba::router
