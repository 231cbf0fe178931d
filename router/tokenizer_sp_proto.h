// A reader for SentencePiece's model file (ModelProto, proto2, from
// sentencepiece_model.proto) that needs no protobuf library: the router also
// links protobuf 3.21 for gRPC, and Debian's libsentencepiece carries its own
// protobuf-lite 3.14 with the same exported symbols, so the two cannot share
// a process (see tools/TOKENIZER.md). Only the fields the encoder and decoder
// use are kept; unknown fields are skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jamba::router {

// ModelProto.SentencePiece.Type.
enum class SpPieceType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct SpPiece {
  std::string piece;
  float score = 0.0f;
  SpPieceType type = SpPieceType::kNormal;
};

// TrainerSpec.ModelType.
enum class SpModelType : int32_t { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

// The fields of ModelProto that encoding and decoding depend on, with the
// proto's defaults.
struct SpModelProto {
  std::vector<SpPiece> pieces;
  // trainer_spec
  SpModelType model_type = SpModelType::kUnigram;
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  std::string unk_piece = "<unk>";
  std::string bos_piece = "<s>";
  std::string eos_piece = "</s>";
  std::string unk_surface = " \xE2\x81\x87 ";
  // normalizer_spec
  std::string normalizer_name;
  std::string precompiled_charsmap;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
  // denormalizer_spec.precompiled_charsmap (non-empty: unsupported).
  std::string denormalizer_charsmap;
};

// Parses a serialized ModelProto. InvalidArgument (naming what is wrong) for
// bytes that are not a well-formed message or have no pieces.
absl::StatusOr<SpModelProto> ParseSpModelProto(absl::string_view bytes);

}  // namespace jamba::router
