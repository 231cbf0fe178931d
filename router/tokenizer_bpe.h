// The byte-pair merge loop shared by SentencePieceTokenizer and
// HfBpeTokenizer: repeatedly merge the adjacent pair with the best priority,
// the leftmost one on ties. This is SentencePiece's bpe::Model::Encode
// (priority = -score of the merged piece) and HF tokenizers'
// Word::merge_all (priority = merge rank). O(n log n) in the word length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace jamba::router {

// One symbol of a word: a byte range of the text being encoded and its id
// (-1 when not in the vocabulary). Frozen symbols never merge.
struct BpeSymbol {
  size_t begin = 0;
  size_t end = 0;
  int32_t id = -1;
  bool frozen = false;
};

// What merging two adjacent symbols gives: the new id, and its priority
// (lower merges first).
struct BpeMerge {
  double priority = 0.0;
  int32_t id = -1;
};

// Returns the merge of `left` and `right` (adjacent, left first), or nullopt
// when they do not merge.
using BpeMergeFn =
    std::function<std::optional<BpeMerge>(const BpeSymbol& left, const BpeSymbol& right)>;

// Applies all merges to `symbols` (in text order) and returns the result.
std::vector<BpeSymbol> BpeMergeAll(std::vector<BpeSymbol> symbols, const BpeMergeFn& merge);

}  // namespace jamba::router
