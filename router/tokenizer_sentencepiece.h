// SentencePieceTokenizer: a SentencePiece BPE model (tokenizer.model), as
// Jamba ships it, encoded and decoded like sentencepiece's
// SentencePieceProcessor (checked against it token for token in
// tests/router). The model file is read with our own wire-format reader
// rather than libsentencepiece, which cannot share a process with gRPC's
// protobuf on Debian 12 (see tools/TOKENIZER.md).
//
// Supported: BPE models with identity normalization (no precompiled
// charsmap), byte fallback, user-defined symbols, add_dummy_prefix,
// remove_extra_whitespaces, escape_whitespaces. Other models fail to load
// with Unimplemented.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/tokenizer.h"
#include "router/tokenizer_sp_proto.h"

namespace jamba::router {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Reads a tokenizer.model file. NotFound if it does not exist,
  // InvalidArgument if it is not a usable SentencePiece model, Unimplemented
  // for model kinds listed above as unsupported.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> Load(const std::string& path);
  // The same from the file's bytes.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> FromSerialized(
      absl::string_view bytes);

  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text, bool add_bos) const override;
  absl::StatusOr<std::string> DecodeBytes(absl::Span<const int32_t> ids) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(model_.pieces.size()); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  absl::StatusOr<std::string> IdToPiece(int32_t id) const override;
  bool IsSpecial(int32_t id) const override;

 private:
  explicit SentencePieceTokenizer(SpModelProto model) : model_(std::move(model)) {}
  absl::Status Init();

  // SentencePiece's Normalizer::Normalize for an identity normalization rule.
  std::string Normalize(absl::string_view text) const;
  // Length of the longest user-defined symbol at the start of `s`, or 0.
  size_t MatchUserDefined(absl::string_view s) const;
  // Id of a piece as SentencePieceProcessor::PieceToId (unk when unknown).
  int32_t PieceToId(absl::string_view piece) const;
  // Appends the ids of `piece`, splitting UNUSED pieces back into the pair
  // they were merged from.
  void AppendResegmented(absl::string_view piece,
                         const absl::flat_hash_map<std::string, size_t>& splits,
                         std::vector<int32_t>* ids) const;
  // The ids of a normalized string (no BOS).
  std::vector<int32_t> EncodeNormalized(absl::string_view normalized) const;

  SpModelProto model_;
  absl::flat_hash_map<std::string, int32_t> pieces_;    // NORMAL, USER_DEFINED, UNUSED
  absl::flat_hash_map<std::string, int32_t> reserved_;  // CONTROL, UNKNOWN, BYTE
  absl::flat_hash_set<std::string> user_defined_;
  std::array<bool, 256> user_defined_first_byte_{};
  size_t max_user_defined_length_ = 0;
  std::array<int32_t, 256> byte_ids_{};
  int32_t unk_id_ = -1;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
};

}  // namespace jamba::router
