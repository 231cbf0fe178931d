// Builds serialized SentencePiece ModelProto bytes for tests. Appending an
// encoded sub-message to a model file overrides its fields, as protobuf
// merges repeated occurrences of a message field.
#pragma once

#include <cstdint>
#include <string>

namespace jamba::router::testing {

inline std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

inline std::string VarintField(int number, uint64_t value) {
  return Varint(static_cast<uint64_t>(number) << 3) + Varint(value);
}

inline std::string BytesField(int number, const std::string& bytes) {
  return Varint(static_cast<uint64_t>(number) << 3 | 2) + Varint(bytes.size()) + bytes;
}

// ModelProto.pieces entry (score 0).
inline std::string PieceField(const std::string& piece, int type) {
  return BytesField(1, BytesField(1, piece) + VarintField(3, type));
}

// ModelProto.normalizer_spec with the three whitespace flags.
inline std::string NormalizerField(bool add_dummy_prefix, bool remove_extra_whitespaces,
                                   bool escape_whitespaces = true) {
  return BytesField(3, VarintField(3, add_dummy_prefix) + VarintField(4, remove_extra_whitespaces) +
                           VarintField(5, escape_whitespaces));
}

}  // namespace jamba::router::testing
