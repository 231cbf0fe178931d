#include "router/tokenizer_util.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace jamba::router {
namespace {

bool IsContinuation(unsigned char b) { return (b & 0xC0) == 0x80; }

}  // namespace

size_t Utf8CharLength(absl::string_view s, bool* incomplete) {
  if (incomplete != nullptr) *incomplete = false;
  if (s.empty()) return 0;
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  size_t length = 0;
  // The allowed range of the second byte depends on the first (Table 3-7).
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t i = 1; i < length; ++i) {
    if (i >= s.size()) {
      if (incomplete != nullptr) *incomplete = true;
      return 0;
    }
    const auto b = static_cast<unsigned char>(s[i]);
    if (i == 1 ? (b < lo || b > hi) : !IsContinuation(b)) return 0;
  }
  return length;
}

bool IsValidUtf8(absl::string_view s) { return FirstInvalidUtf8Byte(s) == s.size(); }

size_t FirstInvalidUtf8Byte(absl::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t n = Utf8CharLength(s.substr(pos));
    if (n == 0) return pos;
    pos += n;
  }
  return s.size();
}

std::string SanitizeUtf8(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t n = Utf8CharLength(s.substr(pos));
    if (n == 0) {
      out.append(kReplacementChar.data(), kReplacementChar.size());
      ++pos;
    } else {
      out.append(s.data() + pos, n);
      pos += n;
    }
  }
  return out;
}

size_t Utf8StableLength(absl::string_view s) {
  // A proper prefix of a character is at most 3 bytes long and starts with a
  // lead byte; look for one among the last 3 bytes.
  const size_t first = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t pos = s.size(); pos > first; --pos) {
    const auto b = static_cast<unsigned char>(s[pos - 1]);
    if (IsContinuation(b)) continue;
    bool incomplete = false;
    Utf8CharLength(s.substr(pos - 1), &incomplete);
    return incomplete ? pos - 1 : s.size();
  }
  return s.size();
}

std::string SanitizeUtf8KeepTail(absl::string_view s) {
  const size_t stable = Utf8StableLength(s);
  std::string out = SanitizeUtf8(s.substr(0, stable));
  out.append(s.data() + stable, s.size() - stable);
  return out;
}

int ParseBytePiece(absl::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int value = 0;
  for (const char c : piece.substr(3, 2)) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

bool IsUnicodeWhitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

char32_t DecodeUtf8Char(absl::string_view s, size_t length) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (length == 1) return b0;
  char32_t c = b0 & (0x7F >> length);
  for (size_t i = 1; i < length; ++i) {
    c = (c << 6) | (static_cast<unsigned char>(s[i]) & 0x3F);
  }
  return c;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::FailedPreconditionError(absl::StrCat(path, ": cannot open: ", std::strerror(err)));
  }
  std::string data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) data.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return absl::FailedPreconditionError(absl::StrCat(path, ": read error"));
  return data;
}

}  // namespace jamba::router
