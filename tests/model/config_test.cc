// Tests for ParseJambaConfig / LoadJambaConfig: HF rules, legacy keys, and
// rejection of malformed or hostile configs with a named field and source.
#include "model/config.h"

#include <sys/stat.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/model/safetensors_writer.h"

namespace jamba::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kSource[] = "ckpt/config.json";

Json TinyConfig() {
  return Json{{"model_type", "jamba"},
              {"vocab_size", 128},
              {"hidden_size", 64},
              {"intermediate_size", 96},
              {"num_hidden_layers", 4},
              {"num_attention_heads", 8},
              {"num_key_value_heads", 2},
              {"num_experts", 4},
              {"num_experts_per_tok", 2},
              {"expert_layer_period", 2},
              {"expert_layer_offset", 1},
              {"attn_layer_period", 4},
              {"attn_layer_offset", 2},
              {"mamba_d_state", 8},
              {"mamba_d_conv", 4},
              {"mamba_expand", 2},
              {"mamba_dt_rank", 4},
              {"mamba_conv_bias", true},
              {"mamba_proj_bias", false},
              {"rms_norm_eps", 1e-5},
              {"hidden_act", "silu"},
              {"tie_word_embeddings", false},
              {"max_position_embeddings", 1024},
              {"pad_token_id", 0},
              {"bos_token_id", 1},
              {"eos_token_id", 2},
              {"torch_dtype", "bfloat16"},
              {"use_mamba_kernels", true}};
}

absl::StatusOr<JambaConfig> Parse(const Json& json) {
  return ParseJambaConfig(json.dump(), kSource);
}

void ExpectError(const absl::StatusOr<JambaConfig>& result, absl::StatusCode code,
                 const std::string& field) {
  ASSERT_FALSE(result.ok()) << field;
  EXPECT_EQ(result.status().code(), code) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr(field));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr(kSource));
}

TEST(ConfigTest, ParsesEveryField) {
  absl::StatusOr<JambaConfig> c = Parse(TinyConfig());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vocab_size, 128);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 96);
  EXPECT_EQ(c->num_hidden_layers, 4);
  EXPECT_EQ(c->num_attention_heads, 8);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->num_experts, 4);
  EXPECT_EQ(c->num_experts_per_tok, 2);
  EXPECT_EQ(c->expert_layer_period, 2);
  EXPECT_EQ(c->expert_layer_offset, 1);
  EXPECT_EQ(c->attn_layer_period, 4);
  EXPECT_EQ(c->attn_layer_offset, 2);
  EXPECT_EQ(c->mamba_d_state, 8);
  EXPECT_EQ(c->mamba_d_conv, 4);
  EXPECT_EQ(c->mamba_expand, 2);
  EXPECT_EQ(c->mamba_dt_rank, 4);
  EXPECT_TRUE(c->mamba_conv_bias);
  EXPECT_FALSE(c->mamba_proj_bias);
  EXPECT_TRUE(c->mamba_inner_layernorms);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->max_position_embeddings, 1024);
  EXPECT_EQ(c->pad_token_id, 0);
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(2));
  EXPECT_EQ(c->torch_dtype, "bfloat16");
  EXPECT_EQ(c->d_inner(), 128);
  EXPECT_EQ(c->head_dim(), 8);
  EXPECT_EQ(c->mixer_kind(2), MixerKind::kAttention);
  EXPECT_EQ(c->mixer_kind(3), MixerKind::kMamba);
  EXPECT_EQ(c->ffn_kind(0), FfnKind::kDense);
  EXPECT_EQ(c->ffn_kind(1), FfnKind::kMoe);
}

TEST(ConfigTest, OptionalFieldsTakeHfDefaults) {
  const Json minimal = {{"vocab_size", 65536},
                        {"hidden_size", 4096},
                        {"intermediate_size", 14336},
                        {"num_hidden_layers", 32},
                        {"num_attention_heads", 32}};
  absl::StatusOr<JambaConfig> c = Parse(minimal);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_key_value_heads, 32);
  EXPECT_EQ(c->num_experts, 16);
  EXPECT_EQ(c->mamba_dt_rank, 256);
  EXPECT_EQ(c->max_position_embeddings, 262144);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(2));
  int attention = 0, moe = 0;
  for (int i = 0; i < c->num_hidden_layers; ++i) {
    attention += c->mixer_kind(i) == MixerKind::kAttention;
    moe += c->ffn_kind(i) == FfnKind::kMoe;
  }
  EXPECT_EQ(attention, 4);
  EXPECT_EQ(moe, 16);
}

TEST(ConfigTest, NullOrMissingKvHeadsMeansAllHeads) {
  Json json = TinyConfig();
  json["num_key_value_heads"] = nullptr;
  absl::StatusOr<JambaConfig> c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_key_value_heads, 8);
  json.erase("num_key_value_heads");
  c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_key_value_heads, 8);
}

TEST(ConfigTest, DtRankAutoIsCeilHiddenOver16) {
  Json json = TinyConfig();
  json["mamba_dt_rank"] = "auto";
  json["hidden_size"] = 72;
  absl::StatusOr<JambaConfig> c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mamba_dt_rank, 5);  // ceil(72 / 16)
  json["mamba_dt_rank"] = "fast";
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, "mamba_dt_rank");
}

TEST(ConfigTest, EosTokenIdIntListOrNull) {
  Json json = TinyConfig();
  json["eos_token_id"] = {2, 51};
  absl::StatusOr<JambaConfig> c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(2, 51));
  EXPECT_TRUE(c->is_eos(51));
  EXPECT_FALSE(c->is_eos(1));
  json["eos_token_id"] = nullptr;
  c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->eos_token_ids.empty());
  json["eos_token_id"] = {2, "3"};
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, "eos_token_id");
  json["eos_token_id"] = {2, 128};
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, "eos_token_id");
}

TEST(ConfigTest, LegacyKeys) {
  Json json = TinyConfig();
  json.erase("max_position_embeddings");
  json["n_ctx"] = 4096;
  json["mamba_inner_layernorms"] = false;
  json["calc_logits_for_entire_prompt"] = "anything";
  absl::StatusOr<JambaConfig> c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_position_embeddings, 4096);
  EXPECT_FALSE(c->mamba_inner_layernorms);
  json["n_ctx"] = "long";
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, "n_ctx");
}

TEST(ConfigTest, NullPadAndBosMeanNone) {
  Json json = TinyConfig();
  json["pad_token_id"] = nullptr;
  json["bos_token_id"] = nullptr;
  absl::StatusOr<JambaConfig> c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->pad_token_id, -1);
  EXPECT_EQ(c->bos_token_id, -1);
}

TEST(ConfigTest, RejectsMalformedJson) {
  const std::vector<std::string> texts = {"",
                                          "{",
                                          "{\"hidden_size\": 64,}",
                                          "[1, 2]",
                                          "42",
                                          "{} {}",
                                          TinyConfig().dump() + std::string("\0junk", 5)};
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    absl::StatusOr<JambaConfig> c = ParseJambaConfig(text, kSource);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(kSource));
  }
}

TEST(ConfigTest, RejectsWrongTypes) {
  const std::vector<std::pair<std::string, Json>> cases = {
      {"vocab_size", "128"},
      {"hidden_size", 64.5},
      {"hidden_size", 64.0},
      {"intermediate_size", nullptr},
      {"num_hidden_layers", true},
      {"num_attention_heads", Json::array({8})},
      {"num_key_value_heads", "2"},
      {"num_experts", Json::object()},
      {"expert_layer_period", "2"},
      {"attn_layer_offset", 2.0},
      {"mamba_d_state", "8"},
      {"mamba_dt_rank", 4.5},
      {"mamba_conv_bias", 1},
      {"mamba_proj_bias", "false"},
      {"mamba_inner_layernorms", nullptr},
      {"tie_word_embeddings", 0},
      {"rms_norm_eps", "1e-6"},
      {"max_position_embeddings", 1e9},
      {"pad_token_id", "0"},
      {"bos_token_id", false},
      {"eos_token_id", "2"},
      {"torch_dtype", 16},
      {"hidden_act", 1},
      {"model_type", Json::array()},
  };
  for (const auto& [field, value] : cases) {
    SCOPED_TRACE(field + " = " + value.dump());
    Json json = TinyConfig();
    json[field] = value;
    ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, field);
  }
}

TEST(ConfigTest, RejectsMissingRequiredFields) {
  for (const char* field : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads"}) {
    SCOPED_TRACE(field);
    Json json = TinyConfig();
    json.erase(field);
    ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, field);
  }
}

TEST(ConfigTest, RejectsOutOfRangeValues) {
  const std::vector<std::pair<std::string, Json>> cases = {
      {"vocab_size", 0},
      {"vocab_size", (int64_t{1} << 24) + 1},
      {"hidden_size", -64},
      {"hidden_size", 65536 * 2},
      {"hidden_size", 60},  // not divisible by 8 heads
      {"intermediate_size", int64_t{1} << 40},
      {"num_hidden_layers", 1025},
      {"num_hidden_layers", UINT64_MAX},
      {"num_attention_heads", 0},
      {"num_key_value_heads", 3},   // 8 % 3 != 0
      {"num_key_value_heads", 16},  // more than the heads
      {"num_experts", 0},
      {"num_experts", 1 << 20},
      {"num_experts_per_tok", 0},
      {"num_experts_per_tok", 5},
      {"expert_layer_period", 0},
      {"expert_layer_offset", -1},
      {"mamba_d_state", 0},
      {"mamba_d_state", 1 << 20},
      {"mamba_d_conv", 1000},
      {"mamba_expand", 0},
      {"mamba_dt_rank", 1 << 20},
      {"rms_norm_eps", 0.0},
      {"rms_norm_eps", -1e-6},
      {"max_position_embeddings", 0},
      {"pad_token_id", -1},
      {"bos_token_id", 128},
      {"eos_token_id", 1 << 30},
      {"model_type", "mamba"},
  };
  for (const auto& [field, value] : cases) {
    SCOPED_TRACE(field + " = " + value.dump());
    Json json = TinyConfig();
    json[field] = value;
    ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, field);
  }
}

TEST(ConfigTest, SingleExpertIgnoresTopK) {
  Json json = TinyConfig();
  json["num_experts"] = 1;
  json["num_experts_per_tok"] = 2;
  absl::StatusOr<JambaConfig> c = Parse(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ffn_kind(1), FfnKind::kDense);
}

TEST(ConfigTest, RejectsOffsetNotBelowPeriod) {
  Json json = TinyConfig();
  json["expert_layer_offset"] = 2;
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, "expert_layer_offset");
  json = TinyConfig();
  json["attn_layer_offset"] = 4;
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, "attn_layer_offset");
  json["attn_layer_offset"] = 7;
  ExpectError(Parse(json), absl::StatusCode::kInvalidArgument, "attn_layer_period");
}

TEST(ConfigTest, RejectsActivationOtherThanSilu) {
  Json json = TinyConfig();
  json["hidden_act"] = "gelu";
  ExpectError(Parse(json), absl::StatusCode::kUnimplemented, "hidden_act");
  absl::StatusOr<JambaConfig> c = Parse(json);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("gelu"));
}

TEST(ConfigTest, LoadReadsConfigJson) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("config.json"), TinyConfig().dump());
  absl::StatusOr<JambaConfig> c = LoadJambaConfig(dir.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 64);

  testing::WriteFile(dir.File("config.json"), "{\"hidden_size\": \"big\"}");
  c = LoadJambaConfig(dir.path());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(dir.File("config.json")));
}

TEST(ConfigTest, LoadFifoFailsWithoutBlocking) {
  testing::TempDir dir;
  ASSERT_EQ(::mkfifo(dir.File("config.json").c_str(), 0600), 0);
  absl::StatusOr<JambaConfig> c = LoadJambaConfig(dir.path());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(dir.File("config.json")));
}

TEST(ConfigTest, LoadMissingFileIsNotFound) {
  testing::TempDir dir;
  absl::StatusOr<JambaConfig> c = LoadJambaConfig(dir.path());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(dir.File("config.json")));
}

}  // namespace
}  // namespace jamba::model
