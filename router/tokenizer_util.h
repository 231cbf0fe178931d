// Helpers shared by the tokenizer implementations and the detokenizer:
// UTF-8 validation and repair, and whole-file reads. Stateless and
// thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jamba::router {

// U+FFFD REPLACEMENT CHARACTER in UTF-8.
inline constexpr absl::string_view kReplacementChar = "\xEF\xBF\xBD";

// Length in bytes of the well-formed UTF-8 character at the start of `s`
// (Unicode Table 3-7: no overlongs, surrogates or code points above
// U+10FFFF). 0 if `s` is empty or does not start with one. If `s` is a
// proper prefix of a well-formed character, returns 0 and sets `*incomplete`
// (when given) to true.
size_t Utf8CharLength(absl::string_view s, bool* incomplete = nullptr);

// True if all of `s` is well-formed UTF-8.
bool IsValidUtf8(absl::string_view s);

// Byte offset of the first ill-formed byte of `s`, or s.size() if none.
size_t FirstInvalidUtf8Byte(absl::string_view s);

// `s` with every byte that is not part of a well-formed character replaced
// by U+FFFD, one per byte (SentencePiece's rule for byte-fallback tokens).
std::string SanitizeUtf8(absl::string_view s);

// SanitizeUtf8 of all of `s` but a trailing proper prefix of a well-formed
// character, which is kept as is (more bytes may complete it).
std::string SanitizeUtf8KeepTail(absl::string_view s);

// The length of `s` without a trailing proper prefix of a well-formed
// character (at most 3 bytes): the part that more bytes cannot change.
size_t Utf8StableLength(absl::string_view s);

// The byte of a byte-fallback piece "<0xE2>" (two hex digits), or -1.
int ParseBytePiece(absl::string_view piece);

// True for the Unicode White_Space code points (Rust's char::is_whitespace).
bool IsUnicodeWhitespace(char32_t c);

// Decodes the well-formed character at the start of `s` (length from
// Utf8CharLength, which must be > 0).
char32_t DecodeUtf8Char(absl::string_view s, size_t length);

// The whole file. NotFound when it does not exist, FailedPrecondition when
// it cannot be read.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace jamba::router
