// Detokenizer: incremental decoding of a token stream for streaming
// responses. Feed generated ids one at a time; each call returns the text
// that became final. It decodes a short window of recent tokens twice (up to
// the last emitted token, and through the new one) and returns the
// difference (the prefix-offset technique of vLLM and TGI), so the
// SentencePiece leading-space rule and multi-token characters come out as in
// a full decode. A character split across byte-fallback tokens is held back
// until complete; bytes that can never form a character become U+FFFD.
//
// Guarantee: the concatenation of every Add() result and Flush() equals
// tokenizer->Decode(ids) for the same ids (with no context). Output is
// always valid UTF-8. Not thread-safe; one per sequence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "router/tokenizer.h"

namespace jamba::router {

class Detokenizer {
 public:
  // `tokenizer` must outlive this. `context` (e.g. the prompt) is decoded
  // with the first tokens so that they get the spacing they have after it;
  // none of its own text is returned. Only its last few ids are kept.
  explicit Detokenizer(const Tokenizer* tokenizer, absl::Span<const int32_t> context = {});

  // Appends one token and returns the newly final text (often empty: a
  // special token, or part of a character). Ids outside the tokenizer's
  // vocabulary (a model with a padded embedding) decode to nothing.
  std::string Add(int32_t id);

  // The text still held back, at the end of the sequence: an incomplete
  // character becomes U+FFFD per byte. Later calls return "".
  std::string Flush();

 private:
  // Decoded bytes of ids_[begin, end).
  std::string DecodeRange(size_t begin, size_t end) const;
  // The new text after ids_[prefix_offset_, read_offset_): valid UTF-8 but
  // for an unfinished character at the end.
  std::string NewBytes() const;

  const Tokenizer* tokenizer_;
  std::vector<int32_t> ids_;  // a window of the sequence, see Add
  size_t prefix_offset_ =
      0;  // ids_[prefix_offset_, read_offset_): already emitted, decoded as context
  size_t read_offset_ = 0;  // ids_[read_offset_, end): not yet fully emitted
  size_t emitted_ = 0;      // bytes of NewBytes() already returned
};

}  // namespace jamba::router
