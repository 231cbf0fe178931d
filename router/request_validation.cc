#include "router/request_validation.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "router/tokenizer_util.h"

namespace jamba::router {
namespace {

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status CheckTokenId(absl::string_view field, int32_t id, const model::JambaConfig& config) {
  if (id < 0 || id >= config.vocab_size) {
    return FieldError(field, absl::StrCat("token id ", id, " is outside the vocabulary [0, ",
                                          config.vocab_size, ")"));
  }
  return absl::OkStatus();
}

absl::Status PromptTooLong(int64_t tokens, const RequestLimits& limits) {
  return FieldError("input",
                    absl::StrCat("the prompt has ", tokens, " tokens; the context limit is ",
                                 limits.context_limit, " including at least one generated token"));
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> PromptIds(const jamba::v1::TokenIds* ids,
                                               const std::string* text, bool add_bos,
                                               const Tokenizer* tokenizer,
                                               const model::JambaConfig& config,
                                               const RequestLimits& limits) {
  std::vector<int32_t> prompt;
  if (ids != nullptr) {
    // Too long is rejected before anything is copied or looked at.
    if (ids->ids_size() >= limits.context_limit) return PromptTooLong(ids->ids_size(), limits);
    prompt.assign(ids->ids().begin(), ids->ids().end());
    for (size_t i = 0; i < prompt.size(); ++i) {
      RETURN_IF_ERROR(CheckTokenId(absl::StrCat("token_ids.ids[", i, "]"), prompt[i], config));
    }
  } else if (text != nullptr) {
    if (tokenizer == nullptr) {
      return FieldError("text", "this model has no tokenizer; send token_ids");
    }
    if (text->size() > limits.max_text_bytes) {
      return FieldError(
          "text", absl::StrCat(text->size(), " bytes exceed the limit of ", limits.max_text_bytes));
    }
    absl::StatusOr<std::vector<int32_t>> encoded = tokenizer->Encode(*text, add_bos);
    if (!encoded.ok()) return FieldError("text", encoded.status().message());
    prompt = *std::move(encoded);
  } else {
    return FieldError("input", "set text or token_ids");
  }
  if (prompt.empty()) return FieldError("input", "the prompt is empty");
  if (static_cast<int64_t>(prompt.size()) >= limits.context_limit) {
    return PromptTooLong(static_cast<int64_t>(prompt.size()), limits);
  }
  return prompt;
}

absl::StatusOr<GenerationRequest> ValidateGenerateRequest(const jamba::v1::GenerateRequest& request,
                                                          const Tokenizer* tokenizer,
                                                          const model::JambaConfig& config,
                                                          const RequestLimits& limits) {
  GenerationRequest r;
  if (request.request_id().size() > limits.max_request_id_bytes) {
    return FieldError("request_id",
                      absl::StrCat("longer than ", limits.max_request_id_bytes, " bytes"));
  }
  if (!IsValidUtf8(request.request_id())) return FieldError("request_id", "is not valid UTF-8");
  r.request_id = request.request_id();
  const bool add_bos = !request.has_add_bos() || request.add_bos();
  ASSIGN_OR_RETURN(r.prompt, PromptIds(request.has_token_ids() ? &request.token_ids() : nullptr,
                                       request.input_case() == jamba::v1::GenerateRequest::kText
                                           ? &request.text()
                                           : nullptr,
                                       add_bos, tokenizer, config, limits));

  const jamba::v1::SamplingParams& s = request.sampling();
  const uint32_t max_new =
      s.has_max_new_tokens() ? s.max_new_tokens() : limits.default_max_new_tokens;
  if (max_new > limits.max_new_tokens) {
    return FieldError("sampling.max_new_tokens",
                      absl::StrCat(max_new, " is outside [1, ", limits.max_new_tokens, "]"));
  }
  SamplingOptions& o = r.sampling;
  o.max_new_tokens = static_cast<int32_t>(max_new);
  if (s.has_temperature()) o.temperature = s.temperature();
  if (s.has_top_k())
    o.top_k = static_cast<int32_t>(std::min<uint32_t>(s.top_k(), config.vocab_size));
  if (s.has_top_p()) o.top_p = s.top_p();
  if (s.has_min_p()) o.min_p = s.min_p();
  if (s.has_repetition_penalty()) o.repetition_penalty = s.repetition_penalty();
  if (s.has_presence_penalty()) o.presence_penalty = s.presence_penalty();
  if (s.has_frequency_penalty()) o.frequency_penalty = s.frequency_penalty();
  o.seed = s.seed();
  o.stop.assign(s.stop().begin(), s.stop().end());
  o.stop_token_ids.assign(s.stop_token_ids().begin(), s.stop_token_ids().end());
  o.ignore_eos = s.ignore_eos();
  if (s.has_logprobs()) o.logprobs = static_cast<int32_t>(std::min<uint32_t>(s.logprobs(), 1000));
  absl::Status valid = ValidateSamplingOptions(o, static_cast<int32_t>(config.vocab_size));
  if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat("sampling.", valid.message()));
  return r;
}

}  // namespace jamba::router
