// SentencePieceTokenizer on hand-built and modified model files: the
// normalizer flags Jamba does not use, and model kinds we refuse to load.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/tokenizer_sentencepiece.h"
#include "router/tokenizer_sp_proto.h"
#include "tests/router/router_test_util.h"
#include "tests/router/sp_proto_writer.h"

namespace jamba::router {
namespace {

using testing::BytesField;
using ::testing::HasSubstr;
using testing::NormalizerField;
using testing::PieceField;
using testing::VarintField;

std::string FixtureBytes() {
  return testing::ReadTestFile(testing::TestDataPath("tokenizer/tokenizer.model"));
}

std::unique_ptr<SentencePieceTokenizer> Variant(const std::string& suffix) {
  auto t = SentencePieceTokenizer::FromSerialized(FixtureBytes() + suffix);
  JAMBA_CHECK(t.ok()) << t.status().ToString();
  return *std::move(t);
}

TEST(SpProtoTest, ReadsTheFixture) {
  absl::StatusOr<SpModelProto> model = ParseSpModelProto(FixtureBytes());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->pieces.size(), 512u);
  EXPECT_EQ(model->model_type, SpModelType::kBpe);
  EXPECT_TRUE(model->byte_fallback);
  EXPECT_FALSE(model->add_dummy_prefix);
  EXPECT_FALSE(model->remove_extra_whitespaces);
  EXPECT_EQ(model->normalizer_name, "identity");
  EXPECT_EQ(model->pieces[3].type, SpPieceType::kUnknown);
  EXPECT_EQ(model->pieces[7].piece, "<|user|>");
  EXPECT_EQ(model->pieces[7].type, SpPieceType::kUserDefined);
}

TEST(SpVariantsTest, AddDummyPrefixPrependsAndStripsOneSpace) {
  auto t = Variant(NormalizerField(/*add_dummy_prefix=*/true, false));
  const std::vector<int32_t> ids = *t->Encode("the bread", false);
  EXPECT_EQ(*t->IdToPiece(ids.front()), "\xE2\x96\x81the");
  EXPECT_EQ(*t->Decode(ids), "the bread");
  // Only the first token of a decode loses its space.
  const std::vector<int32_t> the = *t->Encode("the", false);
  std::vector<int32_t> twice = the;
  twice.insert(twice.end(), the.begin(), the.end());
  EXPECT_EQ(*t->Decode(twice), "the the");
  EXPECT_EQ(*t->Decode({1, the[0]}), "the");  // a leading control token changes nothing
}

TEST(SpVariantsTest, RemoveExtraWhitespacesCollapsesRuns) {
  auto t = Variant(NormalizerField(false, /*remove_extra_whitespaces=*/true));
  EXPECT_EQ(*t->Decode(*t->Encode("   the    bread  ", false)), "the bread");
  EXPECT_EQ(*t->Encode("  the bread", false), *t->Encode("the   bread   ", false));
  EXPECT_TRUE(t->Encode("     ", false)->empty());
}

TEST(SpVariantsTest, UnescapedWhitespaceIsKept) {
  auto t = Variant(NormalizerField(false, false, /*escape_whitespaces=*/false));
  EXPECT_EQ(*t->Decode(*t->Encode("a b", false)), "a b");
}

TEST(SpVariantsTest, UnsupportedModelsAreUnimplemented) {
  const std::string unigram = BytesField(2, VarintField(3, 1));
  auto t = SentencePieceTokenizer::FromSerialized(FixtureBytes() + unigram);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(t.status().message(), HasSubstr("only BPE"));
  const std::string nfkc = BytesField(3, BytesField(1, "nmt_nfkc") + BytesField(2, "charsmap"));
  t = SentencePieceTokenizer::FromSerialized(FixtureBytes() + nfkc);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(t.status().message(), HasSubstr("nmt_nfkc"));
}

TEST(SpVariantsTest, InconsistentModelsAreInvalid) {
  const std::string bpe = BytesField(2, VarintField(3, 2));
  // No unknown piece.
  auto t = SentencePieceTokenizer::FromSerialized(PieceField("a", 1) + bpe);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("unknown piece"));
  // A duplicated piece.
  t = SentencePieceTokenizer::FromSerialized(PieceField("<unk>", 2) + PieceField("a", 1) +
                                             PieceField("a", 1) + bpe);
  EXPECT_THAT(t.status().message(), HasSubstr("defined twice"));
  // Byte fallback without the byte pieces.
  t = SentencePieceTokenizer::FromSerialized(PieceField("<unk>", 2) +
                                             BytesField(2, VarintField(3, 2) + VarintField(35, 1)));
  EXPECT_THAT(t.status().message(), HasSubstr("byte piece 0 is missing"));
  // A bad piece type.
  t = SentencePieceTokenizer::FromSerialized(PieceField("<unk>", 9) + bpe);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SpVariantsTest, MinimalModelWithoutByteFallbackUsesUnk) {
  // pieces: <unk> <s> </s> a b ab; merges by score.
  const std::string model = PieceField("<unk>", 2) + PieceField("<s>", 3) + PieceField("</s>", 3) +
                            PieceField("a", 1) + PieceField("b", 1) + PieceField("ab", 1) +
                            BytesField(2, VarintField(3, 2)) + NormalizerField(false, false);
  auto t = SentencePieceTokenizer::FromSerialized(model);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->bos_id(), 1);
  EXPECT_EQ((*t)->eos_id(), 2);
  // "xyz" is one unknown run -> one <unk>; unknown decodes to " ⁇ ".
  EXPECT_EQ(*(*t)->Encode("abxyzab", true), (std::vector<int32_t>{1, 5, 0, 5}));
  EXPECT_EQ(*(*t)->Decode({5, 0}), "ab \xE2\x81\x87 ");
}

}  // namespace
}  // namespace jamba::router
