#include "router/detokenizer.h"

#include <algorithm>
#include <utility>

#include "core/check.h"
#include "router/tokenizer_util.h"

namespace jamba::router {
namespace {

// Context tokens kept in front of the first generated one (vLLM keeps 5).
constexpr size_t kContextTokens = 6;
// The window is trimmed once this many decoded tokens precede it.
constexpr size_t kTrimThreshold = 64;
// A window of tokens without text is cut short at this length.
constexpr size_t kMaxWindow = 32;

}  // namespace

Detokenizer::Detokenizer(const Tokenizer* tokenizer, absl::Span<const int32_t> context)
    : tokenizer_(tokenizer) {
  JAMBA_CHECK(tokenizer != nullptr);
  const size_t n = std::min(context.size(), kContextTokens);
  for (const int32_t id : context.subspan(context.size() - n)) {
    if (id >= 0 && id < tokenizer_->vocab_size()) ids_.push_back(id);
  }
  read_offset_ = ids_.size();
}

std::string Detokenizer::DecodeRange(size_t begin, size_t end) const {
  absl::StatusOr<std::string> bytes =
      tokenizer_->DecodeBytes(absl::MakeConstSpan(ids_).subspan(begin, end - begin));
  JAMBA_CHECK(bytes.ok()) << bytes.status().ToString();
  return *std::move(bytes);
}

std::string Detokenizer::NewBytes() const {
  // Bytes that cannot become a character are compared as the U+FFFD they
  // decode to: a decoder may already have replaced them in `full` (a
  // SentencePiece byte run that a later token ended) but not in `prefix`.
  const std::string prefix = SanitizeUtf8KeepTail(DecodeRange(prefix_offset_, read_offset_));
  std::string full = SanitizeUtf8KeepTail(DecodeRange(prefix_offset_, ids_.size()));
  // Decoding is concatenative past the window's first token; if a decoder
  // ever shortened the text, there is nothing new yet.
  if (full.size() <= prefix.size()) return "";
  return full.substr(prefix.size());
}

std::string Detokenizer::Add(int32_t id) {
  if (id < 0 || id >= tokenizer_->vocab_size()) return "";
  ids_.push_back(id);
  const std::string fresh = NewBytes();
  const size_t stable = Utf8StableLength(fresh);
  std::string out;
  if (stable > emitted_) {
    out = SanitizeUtf8(absl::string_view(fresh).substr(emitted_, stable - emitted_));
  }
  if (stable < fresh.size()) {
    emitted_ = std::max(emitted_, stable);  // wait for the rest of the character
    return out;
  }
  // The next window starts at the tokens just emitted, unless they made no
  // text (special tokens): a window must start at text, or SentencePiece's
  // leading-space rule would apply to the wrong token.
  if (!fresh.empty() || read_offset_ - prefix_offset_ > kMaxWindow) prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  emitted_ = 0;
  if (prefix_offset_ >= kTrimThreshold) {
    ids_.erase(ids_.begin(), ids_.begin() + prefix_offset_);
    read_offset_ -= prefix_offset_;
    prefix_offset_ = 0;
  }
  return out;
}

std::string Detokenizer::Flush() {
  const std::string fresh = NewBytes();
  std::string out;
  if (fresh.size() > emitted_) out = SanitizeUtf8(absl::string_view(fresh).substr(emitted_));
  ids_.clear();
  prefix_offset_ = read_offset_ = emitted_ = 0;
  return out;
}

}  // namespace jamba::router
