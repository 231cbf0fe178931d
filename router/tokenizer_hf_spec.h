// HfTokenizerSpec: the parts of a Hugging Face tokenizer.json that a
// SentencePiece-style BPE tokenizer (Llama, Jamba) uses, parsed and checked.
// Components outside that family (ByteLevel, WordPiece, Unicode
// normalizers, regex patterns, ...) are rejected with Unimplemented naming
// the component, never silently ignored.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jamba::router {

enum class HfPrependScheme { kAlways, kFirst, kNever };

// The Metaspace pre-tokenizer or decoder.
struct HfMetaspace {
  std::string replacement = "\xE2\x96\x81";
  HfPrependScheme prepend_scheme = HfPrependScheme::kAlways;
  bool split = true;
};

// One normalizer of the (flattened) normalizer sequence.
struct HfNormalizerStep {
  enum class Kind { kReplace, kPrepend };
  Kind kind = Kind::kReplace;
  std::string pattern;  // kReplace: the literal text replaced
  std::string content;  // kReplace: the replacement; kPrepend: the prefix
};

// One decoder of the (flattened) decoder sequence.
struct HfDecoderStep {
  enum class Kind { kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
  Kind kind = Kind::kFuse;
  std::string pattern;  // kReplace
  std::string content;  // kReplace: replacement; kStrip: the character stripped
  int strip_start = 0;  // kStrip: at most this many leading `content` chars
  int strip_stop = 0;   // kStrip: at most this many trailing
  HfMetaspace metaspace;
};

struct HfAddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

struct HfTokenizerSpec {
  std::vector<HfNormalizerStep> normalizer;
  bool has_pre_tokenizer = false;  // false: each segment is one word
  HfMetaspace pre_tokenizer;
  // model (BPE)
  std::vector<std::pair<std::string, int32_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::string unk_token;                                    // empty: none
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;
  std::vector<HfAddedToken> added_tokens;
  bool has_decoder = false;  // false: tokens are joined with spaces
  std::vector<HfDecoderStep> decoder;
  // The special token before the sequence in a TemplateProcessing "single"
  // template (the BOS that add_special_tokens prepends), or empty.
  std::string template_bos;
};

// Parses tokenizer.json text. InvalidArgument for malformed JSON or fields
// of the wrong type; Unimplemented for unsupported components.
absl::StatusOr<HfTokenizerSpec> ParseHfTokenizerJson(absl::string_view json);

}  // namespace jamba::router
