#include "router/tokenizer_hf_spec.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

namespace jamba::router {
namespace {

using Json = nlohmann::json;

// The member `key` of `obj`, or nullptr when absent or null.
const Json* Find(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

absl::Status WrongType(const std::string& path, const char* expected) {
  return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: ", path, " must be ", expected));
}

// Reads an optional member into `out` (left as is when absent or null).
absl::Status Get(const Json& obj, const char* key, const std::string& path, std::string* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_string()) return WrongType(absl::StrCat(path, ".", key), "a string");
  *out = v->get_ref<const std::string&>();
  return absl::OkStatus();
}

absl::Status Get(const Json& obj, const char* key, const std::string& path, bool* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_boolean()) return WrongType(absl::StrCat(path, ".", key), "a boolean");
  *out = v->get<bool>();
  return absl::OkStatus();
}

absl::Status Get(const Json& obj, const char* key, const std::string& path, int* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > (1 << 30)) {
    return WrongType(absl::StrCat(path, ".", key), "a non-negative integer");
  }
  *out = static_cast<int>(v->get<int64_t>());
  return absl::OkStatus();
}

absl::StatusOr<std::string> TypeOf(const Json& component, const std::string& path) {
  std::string type;
  RETURN_IF_ERROR(Get(component, "type", path, &type));
  if (type.empty()) return WrongType(path + ".type", "a component type name");
  return type;
}

absl::Status Unsupported(const std::string& path, const std::string& type) {
  return absl::UnimplementedError(
      absl::StrCat("tokenizer.json: ", path, " of type ", type, " is not supported"));
}

// Replace {"pattern": {"String": p}, "content": c}; regex patterns are not supported.
absl::Status ParseReplace(const Json& j, const std::string& path, std::string* pattern,
                          std::string* content) {
  const Json* p = Find(j, "pattern");
  if (p == nullptr || Find(*p, "Regex") != nullptr) return Unsupported(path, "Replace (regex)");
  RETURN_IF_ERROR(Get(*p, "String", path + ".pattern", pattern));
  if (pattern->empty()) return WrongType(path + ".pattern.String", "a non-empty string");
  return Get(j, "content", path, content);
}

absl::Status ParseMetaspace(const Json& j, const std::string& path, HfMetaspace* m) {
  RETURN_IF_ERROR(Get(j, "replacement", path, &m->replacement));
  std::string scheme = "always";
  RETURN_IF_ERROR(Get(j, "prepend_scheme", path, &scheme));
  bool add_prefix_space = true;
  RETURN_IF_ERROR(Get(j, "add_prefix_space", path, &add_prefix_space));
  if (scheme == "always") {
    m->prepend_scheme = HfPrependScheme::kAlways;
  } else if (scheme == "first") {
    m->prepend_scheme = HfPrependScheme::kFirst;
  } else if (scheme == "never") {
    m->prepend_scheme = HfPrependScheme::kNever;
  } else {
    return WrongType(path + ".prepend_scheme", "always, first or never");
  }
  if (!add_prefix_space) m->prepend_scheme = HfPrependScheme::kNever;
  return Get(j, "split", path, &m->split);
}

absl::Status ParseNormalizer(const Json& j, const std::string& path, HfTokenizerSpec* spec) {
  ASSIGN_OR_RETURN(const std::string type, TypeOf(j, path));
  if (type == "Sequence") {
    const Json* list = Find(j, "normalizers");
    if (list == nullptr || !list->is_array()) return WrongType(path + ".normalizers", "an array");
    for (size_t i = 0; i < list->size(); ++i) {
      RETURN_IF_ERROR(ParseNormalizer((*list)[i], absl::StrCat(path, "[", i, "]"), spec));
    }
    return absl::OkStatus();
  }
  HfNormalizerStep step;
  if (type == "Replace") {
    step.kind = HfNormalizerStep::Kind::kReplace;
    RETURN_IF_ERROR(ParseReplace(j, path, &step.pattern, &step.content));
  } else if (type == "Prepend") {
    step.kind = HfNormalizerStep::Kind::kPrepend;
    RETURN_IF_ERROR(Get(j, "prepend", path, &step.content));
  } else {
    return Unsupported(path, type);
  }
  spec->normalizer.push_back(std::move(step));
  return absl::OkStatus();
}

absl::Status ParsePreTokenizer(const Json& j, const std::string& path, HfTokenizerSpec* spec) {
  ASSIGN_OR_RETURN(const std::string type, TypeOf(j, path));
  if (type == "Sequence") {
    const Json* list = Find(j, "pretokenizers");
    if (list == nullptr || !list->is_array() || list->size() != 1) {
      return Unsupported(path, "Sequence (other than of one Metaspace)");
    }
    return ParsePreTokenizer((*list)[0], path + "[0]", spec);
  }
  if (type != "Metaspace") return Unsupported(path, type);
  spec->has_pre_tokenizer = true;
  return ParseMetaspace(j, path, &spec->pre_tokenizer);
}

absl::Status ParseDecoder(const Json& j, const std::string& path, HfTokenizerSpec* spec) {
  ASSIGN_OR_RETURN(const std::string type, TypeOf(j, path));
  if (type == "Sequence") {
    const Json* list = Find(j, "decoders");
    if (list == nullptr || !list->is_array()) return WrongType(path + ".decoders", "an array");
    for (size_t i = 0; i < list->size(); ++i) {
      RETURN_IF_ERROR(ParseDecoder((*list)[i], absl::StrCat(path, "[", i, "]"), spec));
    }
    return absl::OkStatus();
  }
  HfDecoderStep step;
  if (type == "Replace") {
    step.kind = HfDecoderStep::Kind::kReplace;
    RETURN_IF_ERROR(ParseReplace(j, path, &step.pattern, &step.content));
  } else if (type == "ByteFallback") {
    step.kind = HfDecoderStep::Kind::kByteFallback;
  } else if (type == "Fuse") {
    step.kind = HfDecoderStep::Kind::kFuse;
  } else if (type == "Strip") {
    step.kind = HfDecoderStep::Kind::kStrip;
    RETURN_IF_ERROR(Get(j, "content", path, &step.content));
    RETURN_IF_ERROR(Get(j, "start", path, &step.strip_start));
    RETURN_IF_ERROR(Get(j, "stop", path, &step.strip_stop));
  } else if (type == "Metaspace") {
    step.kind = HfDecoderStep::Kind::kMetaspace;
    RETURN_IF_ERROR(ParseMetaspace(j, path, &step.metaspace));
  } else {
    return Unsupported(path, type);
  }
  spec->decoder.push_back(std::move(step));
  return absl::OkStatus();
}

absl::Status ParseModel(const Json& j, HfTokenizerSpec* spec) {
  ASSIGN_OR_RETURN(const std::string type, TypeOf(j, "model"));
  if (type != "BPE") return Unsupported("model", type);
  std::string prefix, suffix;
  RETURN_IF_ERROR(Get(j, "continuing_subword_prefix", "model", &prefix));
  RETURN_IF_ERROR(Get(j, "end_of_word_suffix", "model", &suffix));
  if (!prefix.empty() || !suffix.empty()) return Unsupported("model", "BPE with subword affixes");
  if (const Json* dropout = Find(j, "dropout"); dropout != nullptr && *dropout != 0.0) {
    return Unsupported("model", "BPE with dropout");
  }
  RETURN_IF_ERROR(Get(j, "unk_token", "model", &spec->unk_token));
  RETURN_IF_ERROR(Get(j, "byte_fallback", "model", &spec->byte_fallback));
  RETURN_IF_ERROR(Get(j, "fuse_unk", "model", &spec->fuse_unk));
  RETURN_IF_ERROR(Get(j, "ignore_merges", "model", &spec->ignore_merges));
  const Json* vocab = Find(j, "vocab");
  if (vocab == nullptr || !vocab->is_object()) return WrongType("model.vocab", "an object");
  for (const auto& [token, id] : vocab->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 24)) {
      return WrongType(absl::StrCat("model.vocab[\"", token, "\"]"), "an id in [0, 2^24)");
    }
    spec->vocab.emplace_back(token, static_cast<int32_t>(id.get<int64_t>()));
  }
  const Json* merges = Find(j, "merges");
  if (merges == nullptr || !merges->is_array()) return WrongType("model.merges", "an array");
  for (size_t i = 0; i < merges->size(); ++i) {
    const Json& m = (*merges)[i];
    if (m.is_string()) {  // "left right"
      std::vector<std::string> parts = absl::StrSplit(m.get_ref<const std::string&>(), ' ');
      if (parts.size() == 2) {
        spec->merges.emplace_back(std::move(parts[0]), std::move(parts[1]));
        continue;
      }
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      spec->merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      continue;
    }
    return WrongType(absl::StrCat("model.merges[", i, "]"), "\"a b\" or [\"a\", \"b\"]");
  }
  return absl::OkStatus();
}

absl::Status ParseAddedTokens(const Json& list, HfTokenizerSpec* spec) {
  if (!list.is_array()) return WrongType("added_tokens", "an array");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = absl::StrCat("added_tokens[", i, "]");
    HfAddedToken t;
    int id = -1;
    bool single_word = false;
    RETURN_IF_ERROR(Get(list[i], "id", path, &id));
    RETURN_IF_ERROR(Get(list[i], "content", path, &t.content));
    RETURN_IF_ERROR(Get(list[i], "special", path, &t.special));
    RETURN_IF_ERROR(Get(list[i], "lstrip", path, &t.lstrip));
    RETURN_IF_ERROR(Get(list[i], "rstrip", path, &t.rstrip));
    RETURN_IF_ERROR(Get(list[i], "normalized", path, &t.normalized));
    RETURN_IF_ERROR(Get(list[i], "single_word", path, &single_word));
    if (id < 0 || t.content.empty()) return WrongType(path, "an object with an id and a content");
    if (single_word) return Unsupported(path, "single_word added token");
    t.id = id;
    spec->added_tokens.push_back(std::move(t));
  }
  return absl::OkStatus();
}

// The special token in front of the sequence in TemplateProcessing.single.
absl::Status ParsePostProcessor(const Json& j, HfTokenizerSpec* spec) {
  std::string type;
  RETURN_IF_ERROR(Get(j, "type", "post_processor", &type));
  const Json* single = Find(j, "single");
  if (type != "TemplateProcessing" || single == nullptr || !single->is_array()) {
    return absl::OkStatus();
  }
  for (const Json& piece : *single) {
    if (Find(piece, "Sequence") != nullptr) break;
    if (const Json* special = Find(piece, "SpecialToken"); special != nullptr) {
      return Get(*special, "id", "post_processor.single", &spec->template_bos);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HfTokenizerSpec> ParseHfTokenizerJson(absl::string_view json) {
  const Json j = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("tokenizer.json is not a JSON object");
  }
  HfTokenizerSpec spec;
  const Json* model = Find(j, "model");
  if (model == nullptr) return WrongType("model", "an object");
  RETURN_IF_ERROR(ParseModel(*model, &spec));
  if (const Json* n = Find(j, "normalizer"); n != nullptr) {
    RETURN_IF_ERROR(ParseNormalizer(*n, "normalizer", &spec));
  }
  if (const Json* p = Find(j, "pre_tokenizer"); p != nullptr) {
    RETURN_IF_ERROR(ParsePreTokenizer(*p, "pre_tokenizer", &spec));
  }
  if (const Json* d = Find(j, "decoder"); d != nullptr) {
    spec.has_decoder = true;
    RETURN_IF_ERROR(ParseDecoder(*d, "decoder", &spec));
  }
  if (const Json* a = Find(j, "added_tokens"); a != nullptr) {
    RETURN_IF_ERROR(ParseAddedTokens(*a, &spec));
  }
  if (const Json* p = Find(j, "post_processor"); p != nullptr) {
    RETURN_IF_ERROR(ParsePostProcessor(*p, &spec));
  }
  return spec;
}

}  // namespace jamba::router
