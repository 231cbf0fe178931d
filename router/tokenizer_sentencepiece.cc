#include "router/tokenizer_sentencepiece.h"

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"
#include "router/tokenizer_bpe.h"
#include "router/tokenizer_util.h"

namespace jamba::router {
namespace {

constexpr absl::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581

}  // namespace

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::Load(
    const std::string& path) {
  ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(path));
  auto tokenizer = FromSerialized(bytes);
  if (!tokenizer.ok()) {
    const absl::Status& s = tokenizer.status();
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::FromSerialized(
    absl::string_view bytes) {
  ASSIGN_OR_RETURN(SpModelProto model, ParseSpModelProto(bytes));
  std::unique_ptr<SentencePieceTokenizer> tokenizer(new SentencePieceTokenizer(std::move(model)));
  RETURN_IF_ERROR(tokenizer->Init());
  return tokenizer;
}

absl::Status SentencePieceTokenizer::Init() {
  if (model_.model_type != SpModelType::kBpe) {
    return absl::UnimplementedError(absl::StrCat("SentencePiece model type ",
                                                 static_cast<int>(model_.model_type),
                                                 " is not supported (only BPE, type 2)"));
  }
  if (!model_.precompiled_charsmap.empty() || !model_.denormalizer_charsmap.empty()) {
    return absl::UnimplementedError(
        absl::StrCat("SentencePiece normalization rule '", model_.normalizer_name,
                     "' (a precompiled charsmap) is not supported; only 'identity'"));
  }
  if (model_.treat_whitespace_as_suffix) {
    return absl::UnimplementedError("SentencePiece treat_whitespace_as_suffix is not supported");
  }
  byte_ids_.fill(-1);
  for (size_t i = 0; i < model_.pieces.size(); ++i) {
    const SpPiece& p = model_.pieces[i];
    const auto id = static_cast<int32_t>(i);
    if (p.piece.empty()) return absl::InvalidArgumentError(absl::StrCat("piece ", i, " is empty"));
    const bool normal = p.type == SpPieceType::kNormal || p.type == SpPieceType::kUserDefined ||
                        p.type == SpPieceType::kUnused;
    if (!(normal ? pieces_ : reserved_).emplace(p.piece, id).second) {
      return absl::InvalidArgumentError(absl::StrCat("piece '", p.piece, "' is defined twice"));
    }
    if (p.type == SpPieceType::kUserDefined) {
      user_defined_.insert(p.piece);
      user_defined_first_byte_[static_cast<unsigned char>(p.piece[0])] = true;
      max_user_defined_length_ = std::max(max_user_defined_length_, p.piece.size());
    }
    if (p.type == SpPieceType::kUnknown) {
      if (unk_id_ >= 0) return absl::InvalidArgumentError("more than one unknown piece");
      unk_id_ = id;
    }
    if (p.type == SpPieceType::kByte) {
      const int byte = ParseBytePiece(p.piece);
      if (byte < 0 || !model_.byte_fallback) {
        return absl::InvalidArgumentError(
            absl::StrCat("byte piece '", p.piece, "' is invalid or byte_fallback is off"));
      }
      byte_ids_[byte] = id;
    }
  }
  if (unk_id_ < 0) return absl::InvalidArgumentError("the model has no unknown piece");
  for (int b = 0; model_.byte_fallback && b < 256; ++b) {
    if (byte_ids_[b] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("byte_fallback is on but byte piece ", b, " is missing"));
    }
  }
  auto control_id = [this](const std::string& piece) {
    const auto it = reserved_.find(piece);
    return it != reserved_.end() && model_.pieces[it->second].type == SpPieceType::kControl
               ? it->second
               : -1;
  };
  bos_id_ = control_id(model_.bos_piece);
  eos_id_ = control_id(model_.eos_piece);
  return absl::OkStatus();
}

size_t SentencePieceTokenizer::MatchUserDefined(absl::string_view s) const {
  if (s.empty() || !user_defined_first_byte_[static_cast<unsigned char>(s[0])]) return 0;
  for (size_t n = std::min(s.size(), max_user_defined_length_); n > 0; --n) {
    if (user_defined_.contains(s.substr(0, n))) return n;
  }
  return 0;
}

std::string SentencePieceTokenizer::Normalize(absl::string_view text) const {
  const bool remove_extra = model_.remove_extra_whitespaces;
  const absl::string_view space = model_.escape_whitespaces ? kSpaceSymbol : " ";
  if (remove_extra) {
    while (absl::ConsumePrefix(&text, " ")) {
    }
  }
  std::string out;
  if (text.empty()) return out;
  out.reserve(text.size() * 3 / 2 + 3);
  if (model_.add_dummy_prefix) out.append(space.data(), space.size());
  bool prev_space = remove_extra;
  while (!text.empty()) {
    size_t n = MatchUserDefined(text);
    if (n == 0) n = std::max<size_t>(1, Utf8CharLength(text));
    absl::string_view unit = text.substr(0, n);
    text.remove_prefix(n);
    while (prev_space && absl::ConsumePrefix(&unit, " ")) {
    }
    if (!unit.empty()) {
      for (const char c : unit) {
        if (c == ' ') {
          out.append(space.data(), space.size());
        } else {
          out.push_back(c);
        }
      }
      prev_space = absl::EndsWith(unit, " ");
    }
    if (!remove_extra) prev_space = false;
  }
  if (remove_extra) {
    while (absl::EndsWith(out, space)) out.resize(out.size() - space.size());
  }
  return out;
}

int32_t SentencePieceTokenizer::PieceToId(absl::string_view piece) const {
  if (const auto it = reserved_.find(piece); it != reserved_.end()) return it->second;
  if (const auto it = pieces_.find(piece); it != pieces_.end()) return it->second;
  return unk_id_;
}

void SentencePieceTokenizer::AppendResegmented(
    absl::string_view piece, const absl::flat_hash_map<std::string, size_t>& splits,
    std::vector<int32_t>* ids) const {
  const int32_t id = PieceToId(piece);
  const auto split = splits.find(piece);
  if (model_.pieces[id].type != SpPieceType::kUnused || split == splits.end()) {
    ids->push_back(id);
    return;
  }
  AppendResegmented(piece.substr(0, split->second), splits, ids);
  AppendResegmented(piece.substr(split->second), splits, ids);
}

std::vector<int32_t> SentencePieceTokenizer::EncodeNormalized(absl::string_view normalized) const {
  std::vector<BpeSymbol> symbols;
  for (size_t pos = 0; pos < normalized.size();) {
    const absl::string_view rest = normalized.substr(pos);
    size_t n = MatchUserDefined(rest);
    const bool frozen = n > 0;
    if (!frozen) n = std::max<size_t>(1, Utf8CharLength(rest));
    symbols.push_back(BpeSymbol{pos, pos + n, -1, frozen});
    pos += n;
  }
  // Merged pieces of type UNUSED are split back afterwards: remember where.
  absl::flat_hash_map<std::string, size_t> unused_splits;
  const BpeMergeFn merge = [&](const BpeSymbol& l, const BpeSymbol& r) -> std::optional<BpeMerge> {
    const absl::string_view piece = normalized.substr(l.begin, r.end - l.begin);
    const auto it = pieces_.find(piece);
    if (it == pieces_.end()) return std::nullopt;
    const SpPiece& p = model_.pieces[it->second];
    if (p.type == SpPieceType::kUnused) unused_splits[piece] = l.end - l.begin;
    return BpeMerge{-static_cast<double>(p.score), it->second};
  };
  std::vector<int32_t> ids;
  bool prev_unk = false;
  for (const BpeSymbol& s : BpeMergeAll(std::move(symbols), merge)) {
    const absl::string_view piece = normalized.substr(s.begin, s.end - s.begin);
    const size_t first = ids.size();
    AppendResegmented(piece, unused_splits, &ids);
    const bool unk = ids.size() == first + 1 && ids.back() == unk_id_;
    if (unk && model_.byte_fallback) {
      ids.pop_back();
      for (const char c : piece) ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);
    } else if (unk && prev_unk) {
      ids.pop_back();  // runs of unknown characters become one unknown token
    }
    prev_unk = unk && !model_.byte_fallback;
  }
  return ids;
}

absl::StatusOr<std::vector<int32_t>> SentencePieceTokenizer::Encode(absl::string_view text,
                                                                    bool add_bos) const {
  if (const size_t bad = FirstInvalidUtf8Byte(text); bad != text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("text is not valid UTF-8 (byte ", bad, " of ", text.size(), ")"));
  }
  std::vector<int32_t> ids;
  if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
  const std::vector<int32_t> body = EncodeNormalized(Normalize(text));
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

absl::StatusOr<std::string> SentencePieceTokenizer::DecodeBytes(
    absl::Span<const int32_t> ids) const {
  RETURN_IF_ERROR(CheckTokenIds(ids, vocab_size()));
  const bool strip_first_space = model_.add_dummy_prefix || model_.remove_extra_whitespaces;
  std::string text;
  bool at_start = true;  // SentencePiece's is_bos_ws
  bool stripped = false;
  size_t run = std::string::npos;  // start of the current run of byte pieces
  for (const int32_t id : ids) {
    const SpPiece& p = model_.pieces[id];
    if (p.type == SpPieceType::kByte) {
      if (run == std::string::npos) run = text.size();
      text.push_back(static_cast<char>(ParseBytePiece(p.piece)));
      continue;
    }
    // Any other piece ends a run of bytes: what is not a character by now
    // never will be (SentencePiece decodes each run on its own). Only a run
    // at the very end stays raw.
    if (run != std::string::npos) {
      text.replace(run, std::string::npos, SanitizeUtf8(text.substr(run)));
      run = std::string::npos;
    }
    if (stripped || !text.empty()) at_start = false;
    stripped = false;
    if (p.type == SpPieceType::kControl) continue;
    if (p.type == SpPieceType::kUnknown) {
      text += model_.unk_surface;
      continue;
    }
    absl::string_view piece = p.piece;
    if (at_start && strip_first_space) {
      stripped = absl::ConsumePrefix(&piece, kSpaceSymbol) && !model_.remove_extra_whitespaces;
    }
    text += absl::StrReplaceAll(piece, {{kSpaceSymbol, " "}});
  }
  return text;
}

absl::StatusOr<std::string> SentencePieceTokenizer::IdToPiece(int32_t id) const {
  RETURN_IF_ERROR(CheckTokenIds({id}, vocab_size()));
  return model_.pieces[id].piece;
}

bool SentencePieceTokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && model_.pieces[id].type == SpPieceType::kControl;
}

}  // namespace jamba::router
