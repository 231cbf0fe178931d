// StopMatcher: finds stop strings in streamed text across token boundaries
// and makes sure they are never emitted.
//
// Feed it each text delta; it returns the part that is safe to emit now,
// holding back the longest suffix that could still grow into a stop string.
// On a match it returns the text before the match and stops: nothing after
// the match is ever returned. The match is the one that completes first in
// the stream (the longest such stop string when several end at the same
// byte), so the result does not depend on how the text is split into
// deltas. Matching is byte-exact on UTF-8, with an Aho-Corasick automaton
// over the stop strings: each Feed costs O(held back + delta), independent
// of the output so far. Not thread-safe; one per sequence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace jamba::router {

class StopMatcher {
 public:
  struct Result {
    std::string text;      // safe to emit now
    bool matched = false;  // a stop string completed: generation must stop
    std::string stop;      // the stop string that matched
    int index = -1;        // its index in the constructor's list
  };

  // REQUIRES: no stop string is empty (ValidateSamplingOptions checks).
  explicit StopMatcher(const std::vector<std::string>& stops);

  // Consumes the next piece of generated text. After a match, returns an
  // empty result with matched = false.
  Result Feed(absl::string_view delta);

  // The text held back, at the end of generation (no match is possible any
  // more). "" after a match.
  std::string Flush();

  bool matched() const { return matched_; }
  // Bytes currently held back.
  size_t held_back() const { return held_.size(); }

 private:
  struct Node {
    int fail = 0;
    int depth = 0;
    int output = -1;  // index of the longest stop string ending here, or -1
  };
  int Child(int node, unsigned char byte) const;
  int Step(int state, unsigned char byte) const;

  std::vector<std::string> stops_;
  std::vector<Node> nodes_;
  absl::flat_hash_map<uint64_t, int> children_;  // (node << 8 | byte) -> node
  int state_ = 0;
  std::string held_;
  bool matched_ = false;
};

}  // namespace jamba::router
