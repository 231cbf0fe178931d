// Tokenizer: text <-> token ids for the router.
//
// Implementations: SentencePieceTokenizer (tokenizer.model, BPE) and
// HfBpeTokenizer (Hugging Face tokenizer.json, BPE). Both are immutable after
// loading; every method is const and safe to call from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace jamba::router {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // The token ids of `text`, preceded by bos_id() when `add_bos` is true and
  // the model has a BOS token. InvalidArgument if `text` is not valid UTF-8.
  virtual absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                                      bool add_bos) const = 0;

  // The bytes that `ids` decode to. Special tokens (IsSpecial) decode to
  // nothing. Byte-fallback tokens ("<0xE2>") give their raw byte, so the
  // result can hold incomplete or ill-formed UTF-8 (SentencePiece: only in
  // the byte run at the end): the Detokenizer needs that to hold back a
  // character split across tokens. InvalidArgument for an id outside
  // [0, vocab_size()).
  virtual absl::StatusOr<std::string> DecodeBytes(absl::Span<const int32_t> ids) const = 0;

  // DecodeBytes with each byte that is not part of a well-formed UTF-8
  // character replaced by U+FFFD. Always valid UTF-8.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const;

  // Text for showing one token (e.g. next to its log-probability): its
  // decoded text, or for special tokens the piece itself ("<|endoftext|>").
  // Valid UTF-8; empty for an out-of-range id.
  std::string TokenText(int32_t id) const;

  virtual int32_t vocab_size() const = 0;
  // -1 when the model has no such token.
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;

  // The vocabulary entry of `id`, e.g. "▁the", "<0x0A>", "<|endoftext|>".
  // InvalidArgument when `id` is out of range.
  virtual absl::StatusOr<std::string> IdToPiece(int32_t id) const = 0;

  // True for control tokens (BOS, EOS, pad, ...) that decoding drops.
  // False for out-of-range ids.
  virtual bool IsSpecial(int32_t id) const = 0;
};

// InvalidArgument naming the first id outside [0, vocab_size).
absl::Status CheckTokenIds(absl::Span<const int32_t> ids, int32_t vocab_size);

// Loads the tokenizer of a checkpoint directory: tokenizer.model
// (SentencePiece) when present, else tokenizer.json (Hugging Face; BOS/EOS
// names come from tokenizer_config.json when present). NotFound when the
// directory has neither (the router then accepts token ids only); any other
// error means a file exists but cannot be used.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerForModel(const std::string& dir);

}  // namespace jamba::router
