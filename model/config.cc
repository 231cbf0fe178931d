// ParseJambaConfig: reads config.json with nlohmann-json in non-throwing
// mode, checking every value's type and range before it is used, so that a
// hostile config can neither throw nor size an absurd allocation.
#include "model/config.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "model/loader_io.h"
#include "nlohmann/json.hpp"

namespace jamba::model {
namespace {

using Json = nlohmann::json;

// Upper bounds: a few times the largest published Jamba, far below what
// would let a config alone exhaust memory.
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxHidden = 65536;
constexpr int64_t kMaxIntermediate = int64_t{1} << 18;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHeads = 1024;
constexpr int64_t kMaxExperts = 1024;
constexpr int64_t kMaxPeriod = 65536;
constexpr int64_t kMaxDState = 1024;
constexpr int64_t kMaxDConv = 64;
constexpr int64_t kMaxExpand = 16;
constexpr int64_t kMaxDtRank = 65536;
constexpr int64_t kMaxPositions = int64_t{1} << 40;
constexpr size_t kMaxEosIds = 1024;
constexpr size_t kMaxConfigBytes = 16 << 20;

// Typed, range-checked access to the fields of one JSON object. Every error
// is InvalidArgument naming the field and the source.
class FieldReader {
 public:
  FieldReader(const Json& root, absl::string_view source) : root_(root), source_(source) {}

  // The value of `key`, or nullptr when absent.
  const Json* Find(const char* key) const {
    auto it = root_.find(key);
    return it == root_.end() ? nullptr : &*it;
  }

  absl::Status Error(absl::string_view key, absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": config field '", key, "' ", message));
  }

  absl::Status TypeError(absl::string_view key, const Json& value, absl::string_view want) const {
    return Error(key, absl::StrCat("must be ", want, ", got ", value.type_name()));
  }

  // An integer within [lo, hi].
  absl::StatusOr<int64_t> IntValue(const char* key, const Json& value, int64_t lo,
                                   int64_t hi) const {
    int64_t v = 0;
    if (value.is_number_unsigned()) {
      const uint64_t u = value.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Error(key, absl::StrCat("= ", u, " is out of range [", lo, ", ", hi, "]"));
      }
      v = static_cast<int64_t>(u);
    } else if (value.is_number_integer()) {
      v = value.get<int64_t>();
    } else {
      return TypeError(key, value, "an integer");
    }
    if (v < lo || v > hi) {
      return Error(key, absl::StrCat("= ", v, " is out of range [", lo, ", ", hi, "]"));
    }
    return v;
  }

  // Reads an integer field into *out; absent leaves *out unless `required`.
  template <typename T>
  absl::Status Int(const char* key, int64_t lo, int64_t hi, bool required, T* out) const {
    const Json* value = Find(key);
    if (value == nullptr) {
      return required ? Error(key, "is required but missing") : absl::OkStatus();
    }
    ASSIGN_OR_RETURN(int64_t v, IntValue(key, *value, lo, hi));
    *out = static_cast<T>(v);
    return absl::OkStatus();
  }

  absl::Status Bool(const char* key, bool* out) const {
    const Json* value = Find(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_boolean()) return TypeError(key, *value, "a boolean");
    *out = value->get<bool>();
    return absl::OkStatus();
  }

  // A token id in [0, vocab); null means "none" (-1).
  absl::Status TokenId(const char* key, int64_t vocab, int* out) const {
    const Json* value = Find(key);
    if (value == nullptr) return absl::OkStatus();
    if (value->is_null()) {
      *out = -1;
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(int64_t v, IntValue(key, *value, 0, vocab - 1));
    *out = static_cast<int>(v);
    return absl::OkStatus();
  }

  absl::Status EosIds(int64_t vocab, std::vector<int>* out) const {
    const char* key = "eos_token_id";
    const Json* value = Find(key);
    if (value == nullptr) return absl::OkStatus();
    out->clear();
    if (value->is_null()) return absl::OkStatus();
    if (value->is_array()) {
      if (value->size() > kMaxEosIds) {
        return Error(key, absl::StrCat("has ", value->size(), " entries, more than ", kMaxEosIds));
      }
      for (const Json& item : *value) {
        ASSIGN_OR_RETURN(int64_t v, IntValue(key, item, 0, vocab - 1));
        out->push_back(static_cast<int>(v));
      }
      return absl::OkStatus();
    }
    if (!value->is_number()) {
      return TypeError(key, *value, "an integer or a list of integers");
    }
    ASSIGN_OR_RETURN(int64_t v, IntValue(key, *value, 0, vocab - 1));
    out->push_back(static_cast<int>(v));
    return absl::OkStatus();
  }

  // A string, or nullptr when absent (or null, if `allow_null`).
  absl::StatusOr<const std::string*> String(const char* key, bool allow_null) const {
    const Json* value = Find(key);
    if (value == nullptr || (allow_null && value->is_null())) return nullptr;
    if (!value->is_string()) return TypeError(key, *value, "a string");
    return value->get_ptr<const std::string*>();
  }

 private:
  const Json& root_;
  absl::string_view source_;
};

absl::Status ReadSizes(const FieldReader& r, JambaConfig* c) {
  RETURN_IF_ERROR(r.Int("vocab_size", 1, kMaxVocab, true, &c->vocab_size));
  RETURN_IF_ERROR(r.Int("hidden_size", 1, kMaxHidden, true, &c->hidden_size));
  RETURN_IF_ERROR(r.Int("intermediate_size", 1, kMaxIntermediate, true, &c->intermediate_size));
  RETURN_IF_ERROR(r.Int("num_hidden_layers", 1, kMaxLayers, true, &c->num_hidden_layers));
  RETURN_IF_ERROR(r.Int("num_attention_heads", 1, kMaxHeads, true, &c->num_attention_heads));
  if (c->hidden_size % c->num_attention_heads != 0) {
    return r.Error("hidden_size",
                   absl::StrCat("= ", c->hidden_size, " is not divisible by num_attention_heads = ",
                                c->num_attention_heads));
  }
  const Json* kv = r.Find("num_key_value_heads");
  if (kv == nullptr || kv->is_null()) {
    c->num_key_value_heads = c->num_attention_heads;
  } else {
    RETURN_IF_ERROR(
        r.Int("num_key_value_heads", 1, c->num_attention_heads, true, &c->num_key_value_heads));
  }
  if (c->num_attention_heads % c->num_key_value_heads != 0) {
    return r.Error(
        "num_attention_heads",
        absl::StrCat("= ", c->num_attention_heads,
                     " is not divisible by num_key_value_heads = ", c->num_key_value_heads));
  }
  return absl::OkStatus();
}

absl::Status ReadSchedule(const FieldReader& r, JambaConfig* c) {
  RETURN_IF_ERROR(r.Int("num_experts", 1, kMaxExperts, false, &c->num_experts));
  RETURN_IF_ERROR(r.Int("num_experts_per_tok", 1, kMaxExperts, false, &c->num_experts_per_tok));
  // With a single expert there is no MoE layer and top-k is unused (HF).
  if (c->num_experts > 1 && c->num_experts_per_tok > c->num_experts) {
    return r.Error("num_experts_per_tok", absl::StrCat("= ", c->num_experts_per_tok,
                                                       " exceeds num_experts = ", c->num_experts));
  }
  RETURN_IF_ERROR(r.Int("expert_layer_period", 1, kMaxPeriod, false, &c->expert_layer_period));
  RETURN_IF_ERROR(r.Int("expert_layer_offset", 0, kMaxPeriod, false, &c->expert_layer_offset));
  RETURN_IF_ERROR(r.Int("attn_layer_period", 1, kMaxPeriod, false, &c->attn_layer_period));
  RETURN_IF_ERROR(r.Int("attn_layer_offset", 0, kMaxPeriod, false, &c->attn_layer_offset));
  if (c->expert_layer_offset >= c->expert_layer_period) {
    return r.Error("expert_layer_offset", absl::StrCat("= ", c->expert_layer_offset,
                                                       " must be less than expert_layer_period = ",
                                                       c->expert_layer_period));
  }
  if (c->attn_layer_offset >= c->attn_layer_period) {
    return r.Error("attn_layer_offset",
                   absl::StrCat("= ", c->attn_layer_offset,
                                " must be less than attn_layer_period = ", c->attn_layer_period));
  }
  return absl::OkStatus();
}

absl::Status ReadMamba(const FieldReader& r, JambaConfig* c) {
  RETURN_IF_ERROR(r.Int("mamba_d_state", 1, kMaxDState, false, &c->mamba_d_state));
  RETURN_IF_ERROR(r.Int("mamba_d_conv", 1, kMaxDConv, false, &c->mamba_d_conv));
  RETURN_IF_ERROR(r.Int("mamba_expand", 1, kMaxExpand, false, &c->mamba_expand));
  const Json* dt_rank = r.Find("mamba_dt_rank");
  if (dt_rank != nullptr && dt_rank->is_string()) {
    if (*dt_rank->get_ptr<const std::string*>() != "auto") {
      return r.Error("mamba_dt_rank", "must be an integer or \"auto\"");
    }
    c->mamba_dt_rank = (c->hidden_size + 15) / 16;
  } else {
    RETURN_IF_ERROR(r.Int("mamba_dt_rank", 1, kMaxDtRank, false, &c->mamba_dt_rank));
  }
  RETURN_IF_ERROR(r.Bool("mamba_conv_bias", &c->mamba_conv_bias));
  RETURN_IF_ERROR(r.Bool("mamba_proj_bias", &c->mamba_proj_bias));
  RETURN_IF_ERROR(r.Bool("mamba_inner_layernorms", &c->mamba_inner_layernorms));
  return absl::OkStatus();
}

absl::Status ReadMisc(const FieldReader& r, absl::string_view source, JambaConfig* c) {
  if (const Json* eps = r.Find("rms_norm_eps"); eps != nullptr) {
    if (!eps->is_number()) return r.TypeError("rms_norm_eps", *eps, "a number");
    const double v = eps->get<double>();
    if (!(v > 0.0 && v < 1.0)) {
      return r.Error("rms_norm_eps", absl::StrCat("= ", v, " is out of range (0, 1)"));
    }
    c->rms_norm_eps = v;
  }
  RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &c->tie_word_embeddings));
  // n_ctx is the legacy (remote-code) spelling of max_position_embeddings.
  const char* positions_key =
      r.Find("max_position_embeddings") != nullptr ? "max_position_embeddings" : "n_ctx";
  RETURN_IF_ERROR(r.Int(positions_key, 1, kMaxPositions, false, &c->max_position_embeddings));
  RETURN_IF_ERROR(r.TokenId("pad_token_id", c->vocab_size, &c->pad_token_id));
  RETURN_IF_ERROR(r.TokenId("bos_token_id", c->vocab_size, &c->bos_token_id));
  RETURN_IF_ERROR(r.EosIds(c->vocab_size, &c->eos_token_ids));
  // transformers v5 writes "dtype" where v4 wrote "torch_dtype".
  const char* dtype_key = r.Find("torch_dtype") != nullptr ? "torch_dtype" : "dtype";
  ASSIGN_OR_RETURN(const std::string* dtype, r.String(dtype_key, true));
  if (dtype != nullptr) c->torch_dtype = *dtype;
  ASSIGN_OR_RETURN(const std::string* act, r.String("hidden_act", false));
  if (act != nullptr && *act != "silu") {
    return absl::UnimplementedError(absl::StrCat(source, ": config field 'hidden_act' = '", *act,
                                                 "' is not supported (only 'silu')"));
  }
  return absl::OkStatus();
}

}  // namespace

bool JambaConfig::is_eos(int token) const {
  return std::find(eos_token_ids.begin(), eos_token_ids.end(), token) != eos_token_ids.end();
}

absl::StatusOr<JambaConfig> ParseJambaConfig(absl::string_view json_text,
                                             absl::string_view source) {
  const Json root = ParseJson(json_text);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": config is not valid JSON"));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": config must be a JSON object, got ", root.type_name()));
  }
  const FieldReader reader(root, source);
  ASSIGN_OR_RETURN(const std::string* model_type, reader.String("model_type", false));
  if (model_type != nullptr && *model_type != "jamba") {
    return reader.Error("model_type", absl::StrCat("= '", *model_type, "', expected 'jamba'"));
  }
  JambaConfig config;
  RETURN_IF_ERROR(ReadSizes(reader, &config));
  RETURN_IF_ERROR(ReadSchedule(reader, &config));
  RETURN_IF_ERROR(ReadMamba(reader, &config));
  RETURN_IF_ERROR(ReadMisc(reader, source, &config));
  return config;
}

absl::StatusOr<JambaConfig> LoadJambaConfig(const std::string& dir) {
  const std::string path = JoinPath(dir, "config.json");
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxConfigBytes));
  return ParseJambaConfig(text, path);
}

}  // namespace jamba::model
