#include "router/tokenizer.h"

#include <filesystem>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"
#include "router/tokenizer_hf.h"
#include "router/tokenizer_sentencepiece.h"
#include "router/tokenizer_util.h"

namespace jamba::router {
namespace {

bool FileExists(const std::string& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error);
}

// A token named in tokenizer_config.json: "<s>" or {"content": "<s>", ...}.
std::string ConfigToken(const nlohmann::json& config, const char* key) {
  if (!config.is_object()) return "";
  const auto it = config.find(key);
  if (it == config.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    const auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return "";
}

}  // namespace

absl::Status CheckTokenIds(absl::Span<const int32_t> ids, int32_t vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", ids[i], " (at index ", i,
                                                     ") is outside [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids) const {
  ASSIGN_OR_RETURN(const std::string bytes, DecodeBytes(ids));
  return SanitizeUtf8(bytes);
}

std::string Tokenizer::TokenText(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  if (IsSpecial(id)) {
    absl::StatusOr<std::string> piece = IdToPiece(id);
    return piece.ok() ? SanitizeUtf8(*piece) : "";
  }
  absl::StatusOr<std::string> text = Decode({id});
  return text.ok() ? *std::move(text) : "";
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerForModel(const std::string& dir) {
  const std::string sp_path = dir + "/tokenizer.model";
  if (FileExists(sp_path)) {
    ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, SentencePieceTokenizer::Load(sp_path));
    return tokenizer;
  }
  const std::string hf_path = dir + "/tokenizer.json";
  if (!FileExists(hf_path)) {
    return absl::NotFoundError(
        absl::StrCat(dir, " has no tokenizer.model or tokenizer.json: token ids only"));
  }
  std::string bos, eos;
  const std::string config_path = dir + "/tokenizer_config.json";
  if (FileExists(config_path)) {
    ASSIGN_OR_RETURN(const std::string text, ReadFileToString(config_path));
    const auto config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(config_path, " is not a JSON object"));
    }
    bos = ConfigToken(config, "bos_token");
    eos = ConfigToken(config, "eos_token");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, HfBpeTokenizer::Load(hf_path, bos, eos));
  return tokenizer;
}

}  // namespace jamba::router
