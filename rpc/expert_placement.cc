#include "rpc/expert_placement.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

namespace jamba::rpc {
namespace {

using json = nlohmann::json;

// A placement's expert list: a range-list string or an array of ids.
absl::StatusOr<std::vector<int>> ParseExpertList(const json& value, int limit,
                                                 const std::string& what) {
  if (value.is_string()) return ParseRangeList(value.get<std::string>(), limit, what);
  if (!value.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a range list such as \"0-3,8\" or an array of ids"));
  }
  std::string joined;
  for (const json& id : value) {
    if (!id.is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has a non-integer entry"));
    }
    const int64_t v = id.get<int64_t>();
    if (v < 0 || v >= limit) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": expert ", v, " is outside [0, ", limit, ")"));
    }
    absl::StrAppend(&joined, joined.empty() ? "" : ",", v);
  }
  return ParseRangeList(joined, limit, what);
}

absl::Status CheckKeys(const json& object, std::initializer_list<absl::string_view> allowed,
                       const std::string& what) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    bool known = false;
    for (absl::string_view key : allowed) known = known || key == it.key();
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has unknown key \"", it.key(),
                                                     "\" (allowed: ", absl::StrJoin(allowed, ", "),
                                                     ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ParseTargets(const json& shard, const std::string& what) {
  auto it = shard.find("targets");
  if (it == shard.end() || !it->is_array() || it->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " needs \"targets\": a non-empty array of addresses"));
  }
  std::vector<std::string> targets;
  for (const json& t : *it) {
    if (!t.is_string() || t.get<std::string>().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " \"targets\" must hold non-empty strings"));
    }
    targets.push_back(t.get<std::string>());
  }
  return targets;
}

}  // namespace

std::string PairName(int layer, int expert) { return absl::StrCat(layer, ":", expert); }

absl::StatusOr<std::vector<int>> ParseRangeList(absl::string_view text, int limit,
                                                absl::string_view what) {
  std::vector<int> ids;
  std::set<int> seen;
  if (absl::StripAsciiWhitespace(text).empty()) return ids;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    std::vector<absl::string_view> ends = absl::StrSplit(item, absl::MaxSplits('-', 1));
    int first = 0, last = 0;
    const bool ok = absl::SimpleAtoi(ends[0], &first) &&
                    absl::SimpleAtoi(ends.size() == 2 ? ends[1] : ends[0], &last) &&
                    !absl::StripAsciiWhitespace(ends[0]).empty();
    if (!ok || first < 0 || last < first) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": '", item, "' is not an id or an ascending range such as 0-3"));
    }
    if (last >= limit) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": '", item, "' goes beyond the last id ", limit - 1));
    }
    for (int id = first; id <= last; ++id) {
      if (!seen.insert(id).second) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": ", id, " is listed twice"));
      }
      ids.push_back(id);
    }
  }
  return ids;
}

absl::StatusOr<HostPredicate> ParseExpertsFlag(absl::string_view text,
                                               const model::JambaConfig& config) {
  std::vector<bool> hosted(config.num_experts, false);
  if (absl::AsciiStrToLower(absl::StripAsciiWhitespace(text)) == "all") {
    hosted.assign(config.num_experts, true);
  } else {
    ASSIGN_OR_RETURN(std::vector<int> ids, ParseRangeList(text, config.num_experts, "--experts"));
    if (ids.empty()) return absl::InvalidArgumentError("--experts: the list is empty");
    for (int e : ids) hosted[e] = true;
  }
  std::vector<bool> moe(config.num_hidden_layers);
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    moe[l] = config.ffn_kind(l) == model::FfnKind::kMoe;
  }
  return HostPredicate([hosted, moe](int layer, int expert) {
    return layer >= 0 && layer < static_cast<int>(moe.size()) && moe[layer] && expert >= 0 &&
           expert < static_cast<int>(hosted.size()) && hosted[expert];
  });
}

absl::StatusOr<ExpertPlacement> ExpertPlacement::Parse(absl::string_view json_text,
                                                       const model::JambaConfig& config,
                                                       absl::string_view source) {
  const std::string src(source);
  const json doc = json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (doc.is_discarded()) return absl::InvalidArgumentError(src + ": not valid JSON");
  if (!doc.is_object()) return absl::InvalidArgumentError(src + ": must be a JSON object");
  RETURN_IF_ERROR(CheckKeys(doc, {"shards"}, src));
  auto shards = doc.find("shards");
  if (shards == doc.end() || !shards->is_array() || shards->empty()) {
    return absl::InvalidArgumentError(src + ": needs \"shards\": a non-empty array");
  }
  ExpertPlacement p;
  p.num_layers_ = config.num_hidden_layers;
  p.num_experts_ = config.num_experts;
  p.owner_.assign(static_cast<size_t>(p.num_layers_) * p.num_experts_, -1);
  for (size_t i = 0; i < shards->size(); ++i) {
    const json& shard = (*shards)[i];
    std::string what = absl::StrCat(src, ": shards[", i, "]");
    if (!shard.is_object()) return absl::InvalidArgumentError(what + " must be an object");
    RETURN_IF_ERROR(CheckKeys(shard, {"name", "targets", "experts", "layer_experts"}, what));
    auto name = shard.find("name");
    if (name == shard.end() || !name->is_string() || name->get<std::string>().empty()) {
      return absl::InvalidArgumentError(what + " needs \"name\": a non-empty string");
    }
    ShardSpec spec;
    spec.name = name->get<std::string>();
    if (p.FindShard(spec.name) >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(src, ": shard name \"", spec.name, "\" is used twice"));
    }
    what = absl::StrCat(src, ": shard \"", spec.name, "\"");
    ASSIGN_OR_RETURN(spec.targets, ParseTargets(shard, what));
    std::vector<int> all_layers;
    if (auto it = shard.find("experts"); it != shard.end()) {
      ASSIGN_OR_RETURN(all_layers, ParseExpertList(*it, p.num_experts_, what + " \"experts\""));
    }
    std::vector<std::vector<int>> lists(p.num_layers_, all_layers);
    if (auto it = shard.find("layer_experts"); it != shard.end()) {
      if (!it->is_object()) {
        return absl::InvalidArgumentError(what + " \"layer_experts\" must be an object");
      }
      for (auto entry = it->begin(); entry != it->end(); ++entry) {
        int layer = -1;
        if (!absl::SimpleAtoi(entry.key(), &layer) || !p.IsMoeLayerInConfig(layer, config)) {
          return absl::InvalidArgumentError(
              absl::StrCat(what, " \"layer_experts\": \"", entry.key(), "\" is not an MoE layer"));
        }
        ASSIGN_OR_RETURN(
            lists[layer],
            ParseExpertList(entry.value(), p.num_experts_,
                            absl::StrCat(what, " \"layer_experts\" of layer ", layer)));
      }
    }
    const int index = static_cast<int>(p.shards_.size());
    p.shards_.push_back(std::move(spec));
    for (int layer = 0; layer < p.num_layers_; ++layer) {
      if (!p.IsMoeLayerInConfig(layer, config)) continue;
      for (int e : lists[layer]) {
        int& owner = p.owner_[static_cast<size_t>(layer) * p.num_experts_ + e];
        if (owner >= 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              src, ": expert ", PairName(layer, e), " (layer:expert) is placed on both shard \"",
              p.shards_[owner].name, "\" and shard \"", p.shards_[index].name, "\""));
        }
        owner = index;
      }
    }
  }
  RETURN_IF_ERROR(p.Validate(config, src));
  return p;
}

absl::StatusOr<ExpertPlacement> ExpertPlacement::Load(const std::string& path,
                                                      const model::JambaConfig& config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open placement file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), config, path);
}

absl::StatusOr<ExpertPlacement> ExpertPlacement::RoundRobin(
    const model::JambaConfig& config, const std::vector<std::vector<std::string>>& shard_targets) {
  const int num_shards = static_cast<int>(shard_targets.size());
  if (num_shards == 0) return absl::InvalidArgumentError("round-robin placement: no shards");
  ExpertPlacement p;
  p.num_layers_ = config.num_hidden_layers;
  p.num_experts_ = config.num_experts;
  p.owner_.assign(static_cast<size_t>(p.num_layers_) * p.num_experts_, -1);
  for (int s = 0; s < num_shards; ++s) {
    ShardSpec spec{absl::StrCat("shard", s), shard_targets[s]};
    for (const std::string& t : spec.targets) {
      if (t.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("round-robin placement: shard ", s, " has an empty target"));
      }
    }
    if (spec.targets.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("round-robin placement: shard ", s, " has no targets"));
    }
    p.shards_.push_back(std::move(spec));
  }
  for (int layer = 0; layer < p.num_layers_; ++layer) {
    if (!p.IsMoeLayerInConfig(layer, config)) continue;
    for (int e = 0; e < p.num_experts_; ++e) {
      p.owner_[static_cast<size_t>(layer) * p.num_experts_ + e] = e % num_shards;
    }
  }
  RETURN_IF_ERROR(p.Validate(config, "round-robin placement"));
  return p;
}

bool ExpertPlacement::IsMoeLayerInConfig(int layer, const model::JambaConfig& config) {
  return layer >= 0 && layer < config.num_hidden_layers &&
         config.ffn_kind(layer) == model::FfnKind::kMoe;
}

absl::Status ExpertPlacement::Validate(const model::JambaConfig& config,
                                       const std::string& source) {
  moe_.assign(num_layers_, false);
  for (int layer = 0; layer < num_layers_; ++layer) {
    moe_[layer] = IsMoeLayerInConfig(layer, config);
    if (!moe_[layer]) continue;
    for (int e = 0; e < num_experts_; ++e) {
      if (owner_[static_cast<size_t>(layer) * num_experts_ + e] < 0) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": expert ", PairName(layer, e),
                                                       " (layer:expert) is on no shard"));
      }
    }
  }
  std::vector<bool> used(shards_.size(), false);
  for (int owner : owner_) {
    if (owner >= 0) used[owner] = true;
  }
  for (size_t s = 0; s < shards_.size(); ++s) {
    if (!used[s]) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": shard \"", shards_[s].name, "\" hosts no expert"));
    }
  }
  return absl::OkStatus();
}

int ExpertPlacement::ShardOf(int layer, int expert) const {
  if (layer < 0 || layer >= num_layers_ || expert < 0 || expert >= num_experts_) return -1;
  return owner_[static_cast<size_t>(layer) * num_experts_ + expert];
}

bool ExpertPlacement::IsMoeLayer(int layer) const {
  return layer >= 0 && layer < num_layers_ && moe_[layer];
}

int ExpertPlacement::FindShard(absl::string_view name) const {
  for (size_t s = 0; s < shards_.size(); ++s) {
    if (shards_[s].name == name) return static_cast<int>(s);
  }
  return -1;
}

absl::StatusOr<HostPredicate> ExpertPlacement::HostedBy(absl::string_view shard_name) const {
  const int shard = FindShard(shard_name);
  if (shard < 0) {
    std::vector<std::string> names;
    for (const ShardSpec& s : shards_) names.push_back(s.name);
    return absl::NotFoundError(
        absl::StrCat("no shard \"", shard_name,
                     "\" in the placement (shards: ", absl::StrJoin(names, ", "), ")"));
  }
  std::vector<int> owner = owner_;
  const int num_experts = num_experts_;
  return HostPredicate([owner, num_experts, shard](int layer, int expert) {
    if (layer < 0 || expert < 0 || expert >= num_experts) return false;
    const size_t i = static_cast<size_t>(layer) * num_experts + expert;
    return i < owner.size() && owner[i] == shard;
  });
}

std::vector<std::pair<int, int>> ExpertPlacement::ExpertsOf(int shard) const {
  std::vector<std::pair<int, int>> pairs;
  for (int layer = 0; layer < num_layers_; ++layer) {
    for (int e = 0; e < num_experts_; ++e) {
      if (ShardOf(layer, e) == shard) pairs.emplace_back(layer, e);
    }
  }
  return pairs;
}

std::string ExpertPlacement::ToString() const {
  std::string out;
  for (size_t s = 0; s < shards_.size(); ++s) {
    absl::StrAppend(&out, shards_[s].name, " [", absl::StrJoin(shards_[s].targets, ", "), "]:");
    for (const auto& [layer, e] : ExpertsOf(static_cast<int>(s))) {
      absl::StrAppend(&out, " ", PairName(layer, e));
    }
    out += "\n";
  }
  return out;
}

}  // namespace jamba::rpc
