// Tests for Checkpoint: single-file and sharded layouts, f32 conversion,
// legacy Jamba-v0.1 names, and errors that name the tensor and the file.
#include "model/checkpoint.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/model/safetensors_writer.h"

namespace jamba::model {
namespace {

using testing::BuildSafetensors;
using ::testing::ElementsAre;
using testing::F32Bytes;
using ::testing::HasSubstr;
using testing::Json;
using testing::U16Bytes;

// Layer 0: attention + dense MLP; layer 1: Mamba + MoE.
Json TinyConfig() {
  return Json{{"model_type", "jamba"},    {"vocab_size", 16},         {"hidden_size", 8},
              {"intermediate_size", 4},   {"num_hidden_layers", 2},   {"num_attention_heads", 2},
              {"num_key_value_heads", 1}, {"num_experts", 2},         {"num_experts_per_tok", 1},
              {"expert_layer_period", 2}, {"expert_layer_offset", 1}, {"attn_layer_period", 2},
              {"attn_layer_offset", 0},   {"mamba_d_state", 2},       {"mamba_d_conv", 2},
              {"mamba_expand", 1},        {"mamba_dt_rank", 2},       {"hidden_act", "silu"}};
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::WriteFile(dir_.File("config.json"), TinyConfig().dump()); }

  void WriteSingle(const std::vector<testing::RawTensor>& tensors, int data_shift = 0) {
    testing::WriteFile(dir_.File("model.safetensors"), BuildSafetensors(tensors, data_shift));
  }

  void WriteIndex(const Json& weight_map) {
    testing::WriteFile(dir_.File("model.safetensors.index.json"),
                       Json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump());
  }

  absl::StatusOr<std::unique_ptr<Checkpoint>> Open() { return Checkpoint::Open(dir_.path()); }

  // Opening fails with `code` and a message containing every string in `parts`.
  void ExpectOpenError(absl::StatusCode code, const std::vector<std::string>& parts) {
    absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Open();
    ASSERT_FALSE(checkpoint.ok());
    EXPECT_EQ(checkpoint.status().code(), code) << checkpoint.status();
    for (const std::string& part : parts) {
      EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr(part));
    }
  }

  testing::TempDir dir_;
};

std::vector<float> FloatsOf(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

TEST_F(CheckpointTest, SingleFileGetAndConvert) {
  WriteSingle({{"model.embed_tokens.weight", "F32", {2, 3}, F32Bytes({1, 2, 3, 4, 5, 6})},
               {"model.final_layernorm.weight", "BF16", {3}, U16Bytes({0x3f80, 0xc040, 0x3e80})},
               {"lm_head.weight", "F16", {5}, U16Bytes({0x3c00, 0xc500, 0x3400, 0x0001, 0x7c00})}});
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Open();
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const Checkpoint& ckpt = **checkpoint;
  EXPECT_EQ(ckpt.dir(), dir_.path());
  EXPECT_EQ(ckpt.config().hidden_size, 8);
  EXPECT_THAT(ckpt.TensorNames(), ElementsAre("lm_head.weight", "model.embed_tokens.weight",
                                              "model.final_layernorm.weight"));
  EXPECT_TRUE(ckpt.Has("lm_head.weight"));
  EXPECT_FALSE(ckpt.Has("lm_head.bias"));

  absl::StatusOr<Tensor> embed = ckpt.Get("model.embed_tokens.weight", {2, 3});
  ASSERT_TRUE(embed.ok()) << embed.status();
  EXPECT_EQ(embed->dtype(), DType::kF32);
  absl::StatusOr<Tensor> embed_f32 = ckpt.GetF32("model.embed_tokens.weight", {2, 3});
  ASSERT_TRUE(embed_f32.ok()) << embed_f32.status();
  EXPECT_EQ(embed_f32->raw_data(), embed->raw_data());  // zero-copy
  EXPECT_THAT(FloatsOf(*embed_f32), ElementsAre(1, 2, 3, 4, 5, 6));

  absl::StatusOr<Tensor> norm = ckpt.Get("model.final_layernorm.weight", {3});
  ASSERT_TRUE(norm.ok()) << norm.status();
  EXPECT_EQ(norm->dtype(), DType::kBF16);
  absl::StatusOr<Tensor> norm_f32 = ckpt.GetF32("model.final_layernorm.weight", {3});
  ASSERT_TRUE(norm_f32.ok()) << norm_f32.status();
  EXPECT_EQ(norm_f32->dtype(), DType::kF32);
  EXPECT_THAT(FloatsOf(*norm_f32), ElementsAre(1.0f, -3.0f, 0.25f));

  absl::StatusOr<Tensor> head = ckpt.GetF32("lm_head.weight", {5});
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_THAT(FloatsOf(*head), ElementsAre(1.0f, -5.0f, 0.25f, std::ldexp(1.0f, -24),
                                           std::numeric_limits<float>::infinity()));
}

TEST_F(CheckpointTest, MisalignedTensorsConvert) {
  WriteSingle(
      {{"a", "BF16", {2}, U16Bytes({0x4000, 0xbf80})}, {"b", "F32", {2}, F32Bytes({0.5f, -1.5f})}},
      /*data_shift=*/1);
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Open();
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  absl::StatusOr<Tensor> a = (*checkpoint)->GetF32("a", {2});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(FloatsOf(*a), ElementsAre(2.0f, -1.0f));
  absl::StatusOr<Tensor> b = (*checkpoint)->GetF32("b", {2});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(FloatsOf(*b), ElementsAre(0.5f, -1.5f));
}

TEST_F(CheckpointTest, TensorsOutliveCheckpoint) {
  WriteSingle({{"w", "F32", {2}, F32Bytes({3, 4})}});
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Open();
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  absl::StatusOr<Tensor> w = (*checkpoint)->Get("w", {2});
  ASSERT_TRUE(w.ok()) << w.status();
  checkpoint->reset();
  EXPECT_THAT(FloatsOf(*w), ElementsAre(3, 4));
}

TEST_F(CheckpointTest, MissingTensorIsNotFound) {
  WriteSingle({{"w", "F32", {2}, F32Bytes({3, 4})}});
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Open();
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  absl::StatusOr<Tensor> v = (*checkpoint)->GetF32("model.v", {2});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(v.status().message()),
              HasSubstr("tensor model.v not found in checkpoint " + dir_.path()));
}

TEST_F(CheckpointTest, ShapeMismatchIsInvalidArgument) {
  WriteSingle({{"w", "F32", {2, 3}, F32Bytes({1, 2, 3, 4, 5, 6})}});
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Open();
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  for (const Shape& shape : {Shape{3, 2}, Shape{6}, Shape{2, 3, 1}}) {
    absl::StatusOr<Tensor> w = (*checkpoint)->Get("w", shape);
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(w.status().message());
    EXPECT_THAT(message, HasSubstr("tensor w"));
    EXPECT_THAT(message, HasSubstr(dir_.File("model.safetensors")));
    EXPECT_THAT(message, HasSubstr("expected shape " + ShapeString(shape)));
    EXPECT_THAT(message, HasSubstr("got [2, 3]"));
  }
}

TEST_F(CheckpointTest, NoWeightsIsNotFound) {
  ExpectOpenError(absl::StatusCode::kNotFound, {dir_.path(), "model.safetensors"});
}

TEST_F(CheckpointTest, MissingConfigIsNotFound) {
  WriteSingle({{"w", "F32", {1}, F32Bytes({1})}});
  std::remove(dir_.File("config.json").c_str());
  ExpectOpenError(absl::StatusCode::kNotFound, {dir_.File("config.json")});
}

TEST_F(CheckpointTest, BadConfigIsInvalidArgument) {
  WriteSingle({{"w", "F32", {1}, F32Bytes({1})}});
  Json config = TinyConfig();
  config["attn_layer_offset"] = 2;
  testing::WriteFile(dir_.File("config.json"), config.dump());
  ExpectOpenError(absl::StatusCode::kInvalidArgument,
                  {dir_.File("config.json"), "attn_layer_offset"});
}

TEST_F(CheckpointTest, BadSafetensorsFileNamesFile) {
  testing::WriteFile(dir_.File("model.safetensors"), "short");
  ExpectOpenError(absl::StatusCode::kInvalidArgument, {dir_.File("model.safetensors")});
}

TEST_F(CheckpointTest, ShardedCheckpoint) {
  testing::WriteFile(dir_.File("model-00001-of-00002.safetensors"),
                     BuildSafetensors({{"a", "F32", {1}, F32Bytes({1})},
                                       {"b", "BF16", {1}, U16Bytes({0x4040})},
                                       {"unlisted", "F32", {1}, F32Bytes({9})}}));
  testing::WriteFile(dir_.File("model-00002-of-00002.safetensors"),
                     BuildSafetensors({{"c", "F16", {2}, U16Bytes({0x4400, 0x3c00})}}));
  WriteIndex({{"a", "model-00001-of-00002.safetensors"},
              {"b", "model-00001-of-00002.safetensors"},
              {"c", "model-00002-of-00002.safetensors"}});
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Open();
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_THAT((*checkpoint)->TensorNames(), ElementsAre("a", "b", "c"));
  absl::StatusOr<Tensor> b = (*checkpoint)->GetF32("b", {1});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(FloatsOf(*b), ElementsAre(3.0f));
  absl::StatusOr<Tensor> c = (*checkpoint)->GetF32("c", {2});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(FloatsOf(*c), ElementsAre(4.0f, 1.0f));
  absl::StatusOr<Tensor> c_wrong = (*checkpoint)->Get("c", {1});
  ASSERT_FALSE(c_wrong.ok());
  EXPECT_THAT(std::string(c_wrong.status().message()),
              HasSubstr(dir_.File("model-00002-of-00002.safetensors")));
}

TEST_F(CheckpointTest, IndexReferencingMissingFile) {
  testing::WriteFile(dir_.File("shard1.safetensors"),
                     BuildSafetensors({{"a", "F32", {1}, F32Bytes({1})}}));
  WriteIndex({{"a", "shard1.safetensors"}, {"b", "shard2.safetensors"}});
  ExpectOpenError(absl::StatusCode::kNotFound, {"shard2.safetensors", "tensor b"});
}

TEST_F(CheckpointTest, IndexWithPathTraversalIsRejected) {
  // A valid file outside the checkpoint that must never be opened.
  testing::WriteFile(dir_.File("outside.safetensors"),
                     BuildSafetensors({{"a", "F32", {1}, F32Bytes({1})}}));
  const std::string sub = dir_.File("ckpt");
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  testing::WriteFile(sub + "/config.json", TinyConfig().dump());
  const std::vector<std::string> names = {"../outside.safetensors",
                                          "sub/x.safetensors",
                                          dir_.File("outside.safetensors"),
                                          "..",
                                          ".",
                                          "",
                                          "a\\b.safetensors",
                                          std::string("x.safetensors\0.json", 19),
                                          "x\n.safetensors"};
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    testing::WriteFile(sub + "/model.safetensors.index.json",
                       Json{{"weight_map", {{"a", name}}}}.dump());
    absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(sub);
    ASSERT_FALSE(checkpoint.ok());
    EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kInvalidArgument)
        << checkpoint.status();
    EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr("tensor a"));
    EXPECT_THAT(std::string(checkpoint.status().message()),
                HasSubstr(sub + "/model.safetensors.index.json"));
  }
}

TEST_F(CheckpointTest, IndexNamingTensorNotInItsFile) {
  testing::WriteFile(dir_.File("shard1.safetensors"),
                     BuildSafetensors({{"a", "F32", {1}, F32Bytes({1})}}));
  WriteIndex({{"a", "shard1.safetensors"}, {"ghost", "shard1.safetensors"}});
  ExpectOpenError(absl::StatusCode::kNotFound, {"tensor ghost", dir_.File("shard1.safetensors")});
}

TEST_F(CheckpointTest, MalformedIndexIsInvalidArgument) {
  const std::string index = dir_.File("model.safetensors.index.json");
  for (const std::string& text :
       {std::string("{"), std::string("[]"), std::string("{\"metadata\": {}}"),
        std::string("{\"weight_map\": []}"), std::string("{\"weight_map\": {\"a\": 1}}")}) {
    SCOPED_TRACE(text);
    testing::WriteFile(index, text);
    ExpectOpenError(absl::StatusCode::kInvalidArgument, {index});
  }
}

TEST_F(CheckpointTest, LegacyNamesResolveToHfNames) {
  const std::string one = F32Bytes({1});
  WriteSingle({{"model.layers.0.moe.experts.0.gate_proj.weight", "F32", {1}, F32Bytes({10})},
               {"model.layers.0.pre_moe_layernorm.weight", "F32", {1}, one},
               {"model.layers.1.moe.router.weight", "F32", {1}, one},
               {"model.layers.1.moe.experts.0.up_proj.weight", "F32", {1}, one},
               {"model.layers.1.moe.experts.1.down_proj.weight", "F32", {1}, F32Bytes({11})},
               {"model.layers.1.mamba.B_layernorm.weight", "F32", {1}, one},
               {"model.layers.1.mamba.C_layernorm.weight", "F32", {1}, one},
               {"model.layers.1.mamba.dt_layernorm.weight", "F32", {1}, one}});
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Open();
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_THAT(
      (*checkpoint)->TensorNames(),
      ElementsAre(
          "model.layers.0.feed_forward.gate_proj.weight", "model.layers.0.pre_ff_layernorm.weight",
          "model.layers.1.feed_forward.experts.0.up_proj.weight",
          "model.layers.1.feed_forward.experts.1.down_proj.weight",
          "model.layers.1.feed_forward.router.weight", "model.layers.1.mamba.b_layernorm.weight",
          "model.layers.1.mamba.c_layernorm.weight", "model.layers.1.mamba.dt_layernorm.weight"));
  EXPECT_FALSE((*checkpoint)->Has("model.layers.0.moe.experts.0.gate_proj.weight"));
  absl::StatusOr<Tensor> gate =
      (*checkpoint)->GetF32("model.layers.0.feed_forward.gate_proj.weight", {1});
  ASSERT_TRUE(gate.ok()) << gate.status();
  EXPECT_THAT(FloatsOf(*gate), ElementsAre(10));
  absl::StatusOr<Tensor> down =
      (*checkpoint)->GetF32("model.layers.1.feed_forward.experts.1.down_proj.weight", {1});
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_THAT(FloatsOf(*down), ElementsAre(11));
}

TEST_F(CheckpointTest, LegacyNamesInShardedCheckpoint) {
  testing::WriteFile(
      dir_.File("s1.safetensors"),
      BuildSafetensors({{"model.layers.1.moe.router.weight", "F32", {1}, F32Bytes({5})}}));
  WriteIndex({{"model.layers.1.moe.router.weight", "s1.safetensors"}});
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Open();
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_TRUE((*checkpoint)->Has("model.layers.1.feed_forward.router.weight"));
}

TEST_F(CheckpointTest, BothSpellingsOfOneTensorIsAnError) {
  WriteSingle({{"model.layers.0.pre_moe_layernorm.weight", "F32", {1}, F32Bytes({1})},
               {"model.layers.0.pre_ff_layernorm.weight", "F32", {1}, F32Bytes({2})}});
  ExpectOpenError(absl::StatusCode::kInvalidArgument,
                  {"model.layers.0.pre_moe_layernorm.weight",
                   "model.layers.0.pre_ff_layernorm.weight", dir_.File("model.safetensors")});
}

}  // namespace
}  // namespace jamba::model
