#include "router/tokenizer_sp_proto.h"

#include <cstring>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace jamba::router {
namespace {

// Protobuf wire types.
constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;
constexpr int kFixed32 = 5;

// One field as read from the wire.
struct Field {
  int number = 0;
  int wire_type = 0;
  uint64_t varint = 0;     // kVarint, kFixed32, kFixed64
  absl::string_view data;  // kLengthDelimited
};

class WireReader {
 public:
  explicit WireReader(absl::string_view data) : data_(data) {}

  bool done() const { return pos_ >= data_.size(); }

  absl::StatusOr<Field> Next() {
    Field field;
    ASSIGN_OR_RETURN(const uint64_t key, ReadVarint());
    field.number = static_cast<int>(key >> 3);
    field.wire_type = static_cast<int>(key & 7);
    if (field.number == 0) return Malformed("field number 0");
    switch (field.wire_type) {
      case kVarint: {
        ASSIGN_OR_RETURN(field.varint, ReadVarint());
        return field;
      }
      case kFixed64:
      case kFixed32: {
        const size_t n = field.wire_type == kFixed64 ? 8 : 4;
        if (data_.size() - pos_ < n) return Malformed("truncated fixed-width field");
        for (size_t i = 0; i < n; ++i) {
          field.varint |= static_cast<uint64_t>(static_cast<unsigned char>(data_[pos_ + i]))
                          << (8 * i);
        }
        pos_ += n;
        return field;
      }
      case kLengthDelimited: {
        ASSIGN_OR_RETURN(const uint64_t n, ReadVarint());
        if (n > data_.size() - pos_) return Malformed("truncated length-delimited field");
        field.data = data_.substr(pos_, n);
        pos_ += n;
        return field;
      }
      default:
        return Malformed(absl::StrCat("unsupported wire type ", field.wire_type));
    }
  }

 private:
  absl::StatusOr<uint64_t> ReadVarint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return Malformed("truncated varint");
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      value |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return value;
    }
    return Malformed("varint longer than 10 bytes");
  }

  absl::Status Malformed(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("not a SentencePiece model: ", what, " at byte ", pos_));
  }

  absl::string_view data_;
  size_t pos_ = 0;
};

// Calls `on_field` for every field of the message in `data`.
absl::Status ForEachField(absl::string_view data,
                          const std::function<absl::Status(const Field&)>& on_field) {
  WireReader reader(data);
  while (!reader.done()) {
    ASSIGN_OR_RETURN(const Field field, reader.Next());
    RETURN_IF_ERROR(on_field(field));
  }
  return absl::OkStatus();
}

float AsFloat(uint64_t bits) {
  const auto u = static_cast<uint32_t>(bits);
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

absl::Status ParsePiece(absl::string_view data, SpPiece* piece) {
  return ForEachField(data, [piece](const Field& f) {
    if (f.number == 1 && f.wire_type == kLengthDelimited) piece->piece = std::string(f.data);
    if (f.number == 2 && f.wire_type == kFixed32) piece->score = AsFloat(f.varint);
    if (f.number == 3 && f.wire_type == kVarint) {
      if (f.varint < 1 || f.varint > 6) {
        return absl::InvalidArgumentError(
            absl::StrCat("SentencePiece model: piece type ", f.varint, " is unknown"));
      }
      piece->type = static_cast<SpPieceType>(f.varint);
    }
    return absl::OkStatus();
  });
}

absl::Status ParseTrainerSpec(absl::string_view data, SpModelProto* model) {
  return ForEachField(data, [model](const Field& f) {
    const bool is_string = f.wire_type == kLengthDelimited;
    const bool is_varint = f.wire_type == kVarint;
    if (f.number == 3 && is_varint) model->model_type = static_cast<SpModelType>(f.varint);
    if (f.number == 24 && is_varint) model->treat_whitespace_as_suffix = f.varint != 0;
    if (f.number == 35 && is_varint) model->byte_fallback = f.varint != 0;
    if (f.number == 44 && is_string) model->unk_surface = std::string(f.data);
    if (f.number == 45 && is_string) model->unk_piece = std::string(f.data);
    if (f.number == 46 && is_string) model->bos_piece = std::string(f.data);
    if (f.number == 47 && is_string) model->eos_piece = std::string(f.data);
    return absl::OkStatus();
  });
}

absl::Status ParseNormalizerSpec(absl::string_view data, SpModelProto* model) {
  return ForEachField(data, [model](const Field& f) {
    const bool is_varint = f.wire_type == kVarint;
    if (f.number == 1 && f.wire_type == kLengthDelimited) {
      model->normalizer_name = std::string(f.data);
    }
    if (f.number == 2 && f.wire_type == kLengthDelimited) {
      model->precompiled_charsmap = std::string(f.data);
    }
    if (f.number == 3 && is_varint) model->add_dummy_prefix = f.varint != 0;
    if (f.number == 4 && is_varint) model->remove_extra_whitespaces = f.varint != 0;
    if (f.number == 5 && is_varint) model->escape_whitespaces = f.varint != 0;
    return absl::OkStatus();
  });
}

}  // namespace

absl::StatusOr<SpModelProto> ParseSpModelProto(absl::string_view bytes) {
  SpModelProto model;
  RETURN_IF_ERROR(ForEachField(bytes, [&model](const Field& f) -> absl::Status {
    if (f.wire_type != kLengthDelimited) return absl::OkStatus();
    switch (f.number) {
      case 1:
        model.pieces.emplace_back();
        return ParsePiece(f.data, &model.pieces.back());
      case 2:
        return ParseTrainerSpec(f.data, &model);
      case 3:
        return ParseNormalizerSpec(f.data, &model);
      case 5:
        return ForEachField(f.data, [&model](const Field& g) {
          if (g.number == 2 && g.wire_type == kLengthDelimited) {
            model.denormalizer_charsmap = std::string(g.data);
          }
          return absl::OkStatus();
        });
      default:
        return absl::OkStatus();
    }
  }));
  if (model.pieces.empty()) {
    return absl::InvalidArgumentError("not a SentencePiece model: it has no pieces");
  }
  return model;
}

}  // namespace jamba::router
