// HfBpeTokenizer: a Hugging Face tokenizer.json with a BPE model in the
// SentencePiece style that Llama and Jamba use ("▁" word marker via a
// Replace normalizer or a Metaspace pre-tokenizer, byte fallback, a
// Replace/ByteFallback/Fuse/Strip decoder). Encodes and decodes like the
// `tokenizers` library (checked against it in tests/router), including its
// added tokens: special tokens written in the text ARE recognized (HF's
// default, split_special_tokens=False). Decoding skips special added tokens
// (skip_special_tokens=True). See tokenizer_hf_spec.h for what is supported.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/tokenizer.h"
#include "router/tokenizer_hf_spec.h"

namespace jamba::router {

class HfBpeTokenizer final : public Tokenizer {
 public:
  // Reads tokenizer.json. `bos_token`/`eos_token` name the BOS and EOS
  // tokens (tokenizer_config.json has them); when empty, BOS is the token
  // the post-processor template prepends and there is no EOS. NotFound if
  // the file does not exist; InvalidArgument / Unimplemented as
  // ParseHfTokenizerJson, or when a named token is not in the vocabulary.
  static absl::StatusOr<std::unique_ptr<HfBpeTokenizer>> Load(const std::string& path,
                                                              const std::string& bos_token = "",
                                                              const std::string& eos_token = "");
  // The same from the file's text.
  static absl::StatusOr<std::unique_ptr<HfBpeTokenizer>> FromJson(
      absl::string_view json, const std::string& bos_token = "", const std::string& eos_token = "");

  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text, bool add_bos) const override;
  absl::StatusOr<std::string> DecodeBytes(absl::Span<const int32_t> ids) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  absl::StatusOr<std::string> IdToPiece(int32_t id) const override;
  bool IsSpecial(int32_t id) const override;

 private:
  // Longest-match lookup of added tokens by their text.
  struct AddedMatcher {
    absl::flat_hash_map<std::string, size_t> by_text;  // -> index in spec_.added_tokens
    std::array<bool, 256> first_byte{};
    size_t max_length = 0;
    void Add(std::string text, size_t index);
    // Length of the longest added token at the start of `s` (0: none).
    size_t Match(absl::string_view s, size_t* index) const;
  };
  // A piece of the input: an added token, or text [begin, end).
  struct Segment {
    int32_t token = -1;
    size_t begin = 0;
    size_t end = 0;
  };

  explicit HfBpeTokenizer(HfTokenizerSpec spec) : spec_(std::move(spec)) {}
  absl::Status Init(const std::string& bos_token, const std::string& eos_token);

  // HF AddedVocabulary::find_matches: splits `text` around added tokens
  // (leftmost-longest), applying their lstrip/rstrip.
  std::vector<Segment> SplitAdded(absl::string_view text, const AddedMatcher& matcher) const;
  std::string Normalize(absl::string_view text) const;
  // Pre-tokenizes one normalized segment and appends the ids of its words.
  // `first`: the segment starts the input (Metaspace prepend_scheme first).
  void EncodeSegment(absl::string_view text, bool first, std::vector<int32_t>* ids) const;
  // BPE of one word (HF BPE::merge_word).
  void EncodeWord(absl::string_view word, std::vector<int32_t>* ids) const;

  HfTokenizerSpec spec_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> special_;
  absl::flat_hash_map<std::string, int32_t> vocab_;
  // (left id << 32 | right id) -> (rank, merged id)
  absl::flat_hash_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  std::array<int32_t, 256> byte_ids_{};
  AddedMatcher raw_added_;         // added tokens with normalized = false
  AddedMatcher normalized_added_;  // with normalized = true, matched after normalizing
  int32_t unk_id_ = -1;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
};

}  // namespace jamba::router
