#include "router/tokenizer_hf_decoder.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "router/tokenizer_util.h"

namespace jamba::router {
namespace {

// HF Strip: removes up to `start` leading and `stop` trailing copies of `c`.
void StripChar(absl::string_view c, int start, int stop, std::string* s) {
  absl::string_view view = *s;
  for (int i = 0; i < start && !c.empty() && absl::ConsumePrefix(&view, c); ++i) {
  }
  for (int i = 0; i < stop && !c.empty() && absl::ConsumeSuffix(&view, c); ++i) {
  }
  *s = std::string(view);
}

}  // namespace

std::string ApplyHfDecoder(const HfTokenizerSpec& spec, std::vector<std::string> tokens) {
  if (!spec.has_decoder) return absl::StrJoin(tokens, " ");
  for (const HfDecoderStep& step : spec.decoder) {
    switch (step.kind) {
      case HfDecoderStep::Kind::kReplace:
        for (std::string& t : tokens) t = absl::StrReplaceAll(t, {{step.pattern, step.content}});
        break;
      case HfDecoderStep::Kind::kByteFallback:
        for (std::string& t : tokens) {
          if (const int b = ParseBytePiece(t); b >= 0) t = std::string(1, static_cast<char>(b));
        }
        break;
      case HfDecoderStep::Kind::kFuse:
        tokens = {absl::StrJoin(tokens, "")};
        break;
      case HfDecoderStep::Kind::kStrip:
        for (std::string& t : tokens)
          StripChar(step.content, step.strip_start, step.strip_stop, &t);
        break;
      case HfDecoderStep::Kind::kMetaspace: {
        // Every replacement character of the first token is dropped unless
        // the scheme is never; elsewhere it becomes a space.
        const HfMetaspace& m = step.metaspace;
        for (size_t i = 0; i < tokens.size(); ++i) {
          const bool drop = i == 0 && m.prepend_scheme != HfPrependScheme::kNever;
          tokens[i] = absl::StrReplaceAll(tokens[i], {{m.replacement, drop ? "" : " "}});
        }
        break;
      }
    }
  }
  return absl::StrJoin(tokens, "");
}

}  // namespace jamba::router
