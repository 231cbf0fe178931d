// Drives a loaded tokenizer through every public method, for the fuzzers.
#pragma once

#include "absl/strings/string_view.h"
#include "router/tokenizer.h"

namespace jamba::fuzz {

// Encodes a fixed set of texts (checking that each id is in range and that
// decoding gives valid UTF-8), decodes the first ids of the vocabulary one
// by one and together, and streams them through a Detokenizer. Traps on a
// broken invariant.
void ExerciseTokenizer(const router::Tokenizer& tokenizer);

// Encodes `text` (with and without BOS) and streams the ids back through a
// Detokenizer; `ids_bytes` reinterpreted as int32 ids (any values) goes
// through DecodeBytes, Decode and the Detokenizer too.
void EncodeDecode(const router::Tokenizer& tokenizer, absl::string_view text,
                  absl::string_view ids_bytes);

}  // namespace jamba::fuzz
