// ExpertPlacement: which expert-worker shard hosts which (layer, expert).
//
// A shard is a logical unit with a name and one or more interchangeable
// replica targets. A valid placement covers every expert of every MoE layer
// of its JambaConfig exactly once. JSON form:
//
//   {"shards": [
//     {"name": "s0", "targets": ["127.0.0.1:5001"], "experts": "0-3,8"},
//     {"name": "s1", "targets": ["127.0.0.1:5002", "127.0.0.1:5012"],
//      "experts": "4-7", "layer_experts": {"3": "0-1"}}]}
//
// "experts" applies to every MoE layer; "layer_experts" replaces it for the
// listed layers. Immutable after construction, so thread-safe.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/config.h"
#include "model/local_experts.h"

namespace jamba::rpc {

using HostPredicate = model::LocalExperts::HostPredicate;

struct ShardSpec {
  std::string name;
  std::vector<std::string> targets;  // gRPC targets of the replicas, >= 1
};

class ExpertPlacement {
 public:
  // Parses and validates JSON text; errors name `source` and the problem.
  static absl::StatusOr<ExpertPlacement> Parse(absl::string_view json_text,
                                               const model::JambaConfig& config,
                                               absl::string_view source = "placement");
  // Reads and parses a JSON file.
  static absl::StatusOr<ExpertPlacement> Load(const std::string& path,
                                              const model::JambaConfig& config);
  // The default map: expert e of every MoE layer lives on shard e mod S.
  // Shards are named "shard0", "shard1", ...; shard_targets[s] are shard s's
  // replicas. InvalidArgument when some shard would host nothing.
  static absl::StatusOr<ExpertPlacement> RoundRobin(
      const model::JambaConfig& config, const std::vector<std::vector<std::string>>& shard_targets);

  // Index into shards() of the shard hosting (layer, expert); -1 when the
  // pair is not an expert of an MoE layer.
  int ShardOf(int layer, int expert) const;
  const std::vector<ShardSpec>& shards() const { return shards_; }
  // Index of the shard called `name`, or -1.
  int FindShard(absl::string_view name) const;
  // The predicate LocalExperts::Load takes; NotFound for an unknown shard.
  absl::StatusOr<HostPredicate> HostedBy(absl::string_view shard_name) const;
  // The (layer, expert) pairs of shard `shard`, ascending.
  std::vector<std::pair<int, int>> ExpertsOf(int shard) const;

  int num_layers() const { return num_layers_; }
  int num_experts() const { return num_experts_; }
  bool IsMoeLayer(int layer) const;

  // One line per shard: "s0 [t1, t2]: 1:0 1:1 3:0 ...".
  std::string ToString() const;

 private:
  ExpertPlacement() = default;

  static bool IsMoeLayerInConfig(int layer, const model::JambaConfig& config);
  // Fills moe_; checks that every MoE pair has a shard and every shard a pair.
  absl::Status Validate(const model::JambaConfig& config, const std::string& source);

  int num_layers_ = 0;
  int num_experts_ = 0;
  std::vector<ShardSpec> shards_;
  // shard index per (layer * num_experts_ + expert); -1 off MoE layers.
  std::vector<int> owner_;
  std::vector<bool> moe_;  // per layer
};

// "layer:expert", the spelling used in messages and ShardInfoResponse.
std::string PairName(int layer, int expert);

// Parses a range list such as "0-3,8" (whitespace allowed around items) of
// ids in [0, limit). Errors name `what` and the offending item, including
// ids listed twice. The empty string is the empty list.
absl::StatusOr<std::vector<int>> ParseRangeList(absl::string_view text, int limit,
                                                absl::string_view what);

// The worker flag "--experts 0-7": the listed experts of every MoE layer of
// `config` ("all" for every expert).
absl::StatusOr<HostPredicate> ParseExpertsFlag(absl::string_view text,
                                               const model::JambaConfig& config);

}  // namespace jamba::rpc
