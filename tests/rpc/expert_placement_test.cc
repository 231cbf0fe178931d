// Tests for ExpertPlacement: parsing, validation messages, round robin,
// the worker's --experts flag and range lists.
#include "rpc/expert_placement.h"

#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jamba::rpc {
namespace {

using ::testing::HasSubstr;

// 8 layers, MoE on odd layers (1, 3, 5, 7), 8 experts.
model::JambaConfig TestConfig() {
  model::JambaConfig c;
  c.num_hidden_layers = 8;
  c.num_experts = 8;
  c.expert_layer_period = 2;
  c.expert_layer_offset = 1;
  return c;
}

constexpr char kTwoShards[] = R"({"shards": [
  {"name": "s0", "targets": ["127.0.0.1:5001"], "experts": "0-3"},
  {"name": "s1", "targets": ["127.0.0.1:5002", "127.0.0.1:5012"], "experts": "4-7"}]})";

void ExpectError(absl::string_view json, const std::string& needle) {
  absl::StatusOr<ExpertPlacement> p = ExpertPlacement::Parse(json, TestConfig(), "test.json");
  ASSERT_FALSE(p.ok()) << "accepted " << json;
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr(needle));
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("test.json"));
}

TEST(ExpertPlacementTest, ParsesSharedAndPerLayerLists) {
  absl::StatusOr<ExpertPlacement> p = ExpertPlacement::Parse(R"({"shards": [
    {"name": "s0", "targets": ["a:1"], "experts": "0-3", "layer_experts": {"3": "0-1"}},
    {"name": "s1", "targets": ["b:1", "c:1"], "experts": [4, 5, 6, 7],
     "layer_experts": {"3": "2-7"}}]})",
                                                             TestConfig());
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->shards().size(), 2u);
  EXPECT_EQ(p->shards()[1].name, "s1");
  EXPECT_EQ(p->shards()[1].targets, (std::vector<std::string>{"b:1", "c:1"}));
  EXPECT_EQ(p->ShardOf(1, 3), 0);
  EXPECT_EQ(p->ShardOf(1, 4), 1);
  EXPECT_EQ(p->ShardOf(3, 1), 0);
  EXPECT_EQ(p->ShardOf(3, 2), 1);
  EXPECT_EQ(p->ShardOf(0, 0), -1);   // dense layer
  EXPECT_EQ(p->ShardOf(1, 8), -1);   // no such expert
  EXPECT_EQ(p->ShardOf(99, 0), -1);  // no such layer
  EXPECT_TRUE(p->IsMoeLayer(7));
  EXPECT_FALSE(p->IsMoeLayer(6));
  EXPECT_EQ(p->ExpertsOf(0).size(), 3u * 4 + 2);
  EXPECT_THAT(p->ToString(), HasSubstr("s0 [a:1]: 1:0 1:1 1:2 1:3 3:0 3:1 5:0"));
}

TEST(ExpertPlacementTest, HostedByMatchesShardOf) {
  absl::StatusOr<ExpertPlacement> p = ExpertPlacement::Parse(
      R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "0-3"},
                     {"name": "s1", "targets": ["b:1"], "experts": "4-7"}]})",
      TestConfig());
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<HostPredicate> s1 = p->HostedBy("s1");
  ASSERT_TRUE(s1.ok()) << s1.status();
  for (int layer = -1; layer < 9; ++layer) {
    for (int e = -1; e < 9; ++e) EXPECT_EQ((*s1)(layer, e), p->ShardOf(layer, e) == 1);
  }
  absl::StatusOr<HostPredicate> none = p->HostedBy("s9");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("s0, s1"));
}

TEST(ExpertPlacementTest, NamesTheUncoveredPair) {
  ExpectError(
      R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "0-3"},
                             {"name": "s1", "targets": ["b:1"], "experts": "4-6"}]})",
      "expert 1:7 (layer:expert) is on no shard");
  ExpectError(
      R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "0-3"},
      {"name": "s1", "targets": ["b:1"], "experts": "4-7", "layer_experts": {"5": "4-6"}}]})",
      "expert 5:7");
}

TEST(ExpertPlacementTest, NamesTheDoublyCoveredPair) {
  ExpectError(
      R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "0-4"},
                             {"name": "s1", "targets": ["b:1"], "experts": "4-7"}]})",
      "expert 1:4 (layer:expert) is placed on both shard \"s0\" and shard "
      "\"s1\"");
  ExpectError(
      R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "0-3,2"},
                             {"name": "s1", "targets": ["b:1"], "experts": "4-7"}]})",
      "2 is listed twice");
}

TEST(ExpertPlacementTest, RejectsBadIdsAndLayers) {
  ExpectError(R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "0-8"}]})",
              "goes beyond the last id 7");
  ExpectError(R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": [0, 9]}]})",
              "expert 9 is outside [0, 8)");
  ExpectError(
      R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "0-7",
                              "layer_experts": {"2": "0"}}]})",
      "\"2\" is not an MoE layer");
  ExpectError(
      R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "0-7",
                              "layer_experts": {"x": "0"}}]})",
      "\"x\" is not an MoE layer");
  ExpectError(R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "3-1"}]})",
              "'3-1' is not an id or an ascending range");
  ExpectError(R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "-1"}]})", "'-1'");
}

TEST(ExpertPlacementTest, RejectsBadShards) {
  ExpectError(R"({"shards": [{"targets": ["a:1"], "experts": "0-7"}]})", "needs \"name\"");
  ExpectError(R"({"shards": [{"name": "", "targets": ["a:1"], "experts": "0-7"}]})",
              "needs \"name\"");
  ExpectError(
      R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "0-3"},
                             {"name": "s0", "targets": ["b:1"], "experts": "4-7"}]})",
      "shard name \"s0\" is used twice");
  ExpectError(R"({"shards": [{"name": "s0", "targets": [], "experts": "0-7"}]})",
              "non-empty array of addresses");
  ExpectError(R"({"shards": [{"name": "s0", "experts": "0-7"}]})", "needs \"targets\"");
  ExpectError(R"({"shards": [{"name": "s0", "targets": [5], "experts": "0-7"}]})",
              "non-empty strings");
  ExpectError(
      R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "0-7"},
                             {"name": "s1", "targets": ["b:1"]}]})",
      "shard \"s1\" hosts no expert");
  ExpectError(R"({"shards": [{"name": "s0", "targets": ["a:1"], "expert": "0-7"}]})",
              "unknown key \"expert\"");
}

TEST(ExpertPlacementTest, RejectsWrongTypes) {
  ExpectError("not json", "not valid JSON");
  ExpectError("[1, 2]", "must be a JSON object");
  ExpectError("{}", "needs \"shards\"");
  ExpectError(R"({"shards": []})", "needs \"shards\"");
  ExpectError(R"({"shards": {"name": "s0"}})", "needs \"shards\"");
  ExpectError(R"({"shards": [7]})", "shards[0] must be an object");
  ExpectError(R"({"shards": [{"name": 3, "targets": ["a:1"], "experts": "0-7"}]})",
              "needs \"name\"");
  ExpectError(R"({"shards": [{"name": "s0", "targets": "a:1", "experts": "0-7"}]})",
              "non-empty array");
  ExpectError(R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": 7}]})",
              "must be a range list");
  ExpectError(R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": [1.5]}]})",
              "non-integer");
  ExpectError(
      R"({"shards": [{"name": "s0", "targets": ["a:1"], "experts": "0-7",
                              "layer_experts": ["1"]}]})",
      "\"layer_experts\" must be an object");
  ExpectError(R"({"shards": [{"name": "s0", "targets": ["a:1"]}], "extra": 1})",
              "unknown key \"extra\"");
}

TEST(ExpertPlacementTest, LoadReadsAFile) {
  const std::string path =
      ::testing::TempDir() + "/placement_" + std::to_string(getpid()) + ".json";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs(kTwoShards, f);
  std::fclose(f);
  absl::StatusOr<ExpertPlacement> p = ExpertPlacement::Load(path, TestConfig());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->ShardOf(7, 7), 1);
  EXPECT_EQ(ExpertPlacement::Load(path + ".missing", TestConfig()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ExpertPlacementTest, RoundRobin) {
  absl::StatusOr<ExpertPlacement> p =
      ExpertPlacement::RoundRobin(TestConfig(), {{"a:1"}, {"b:1", "b:2"}, {"c:1"}});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->shards()[2].name, "shard2");
  for (int layer : {1, 3, 5, 7}) {
    for (int e = 0; e < 8; ++e) EXPECT_EQ(p->ShardOf(layer, e), e % 3);
  }
  EXPECT_EQ(p->ShardOf(2, 0), -1);
  EXPECT_FALSE(ExpertPlacement::RoundRobin(TestConfig(), {}).ok());
  EXPECT_FALSE(ExpertPlacement::RoundRobin(TestConfig(), {{"a:1"}, {}}).ok());
  std::vector<std::vector<std::string>> nine(9, {"a:1"});
  EXPECT_THAT(std::string(ExpertPlacement::RoundRobin(TestConfig(), nine).status().message()),
              HasSubstr("shard \"shard8\" hosts no expert"));
}

TEST(ExpertPlacementTest, RangeLists) {
  EXPECT_EQ(*ParseRangeList("0-3,8", 10, "x"), (std::vector<int>{0, 1, 2, 3, 8}));
  EXPECT_EQ(*ParseRangeList(" 2 , 5-6 ", 10, "x"), (std::vector<int>{2, 5, 6}));
  EXPECT_TRUE(ParseRangeList("", 10, "x")->empty());
  EXPECT_FALSE(ParseRangeList("1,,2", 10, "x").ok());
  EXPECT_FALSE(ParseRangeList("1-", 10, "x").ok());
  EXPECT_FALSE(ParseRangeList("a", 10, "x").ok());
  EXPECT_FALSE(ParseRangeList("0-99999999999", 10, "x").ok());
  EXPECT_THAT(std::string(ParseRangeList("4,1-5", 10, "--experts").status().message()),
              HasSubstr("--experts: 4 is listed twice"));
}

TEST(ExpertPlacementTest, ExpertsFlag) {
  absl::StatusOr<HostPredicate> hosts = ParseExpertsFlag("0-2,7", TestConfig());
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  EXPECT_TRUE((*hosts)(1, 0));
  EXPECT_TRUE((*hosts)(7, 7));
  EXPECT_FALSE((*hosts)(1, 3));
  EXPECT_FALSE((*hosts)(2, 0));  // dense layer
  EXPECT_FALSE((*hosts)(9, 0));
  absl::StatusOr<HostPredicate> all = ParseExpertsFlag("all", TestConfig());
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE((*all)(5, 6));
  EXPECT_FALSE(ParseExpertsFlag("", TestConfig()).ok());
  EXPECT_FALSE(ParseExpertsFlag("0-8", TestConfig()).ok());
}

}  // namespace
}  // namespace jamba::rpc
