#include "router/stop_matcher.h"

#include <deque>

#include "core/check.h"

namespace jamba::router {

int StopMatcher::Child(int node, unsigned char byte) const {
  const auto it = children_.find(static_cast<uint64_t>(node) << 8 | byte);
  return it == children_.end() ? -1 : it->second;
}

int StopMatcher::Step(int state, unsigned char byte) const {
  for (;;) {
    const int next = Child(state, byte);
    if (next >= 0) return next;
    if (state == 0) return 0;
    state = nodes_[state].fail;
  }
}

StopMatcher::StopMatcher(const std::vector<std::string>& stops) : stops_(stops) {
  nodes_.emplace_back();
  // The trie of the stop strings.
  for (size_t i = 0; i < stops_.size(); ++i) {
    JAMBA_CHECK(!stops_[i].empty()) << "empty stop string " << i;
    int node = 0;
    for (const char c : stops_[i]) {
      const auto byte = static_cast<unsigned char>(c);
      int next = Child(node, byte);
      if (next < 0) {
        next = static_cast<int>(nodes_.size());
        nodes_.push_back(Node{0, nodes_[node].depth + 1, -1});
        children_.emplace(static_cast<uint64_t>(node) << 8 | byte, next);
      }
      node = next;
    }
    if (nodes_[node].output < 0) nodes_[node].output = static_cast<int>(i);
  }
  // Failure links breadth-first; a node without its own output inherits
  // the longest one among its proper suffixes.
  std::vector<std::vector<std::pair<unsigned char, int>>> edges(nodes_.size());
  for (const auto& [key, child] : children_) {
    edges[key >> 8].emplace_back(static_cast<unsigned char>(key & 0xFF), child);
  }
  std::deque<int> queue;
  for (const auto& [byte, child] : edges[0]) queue.push_back(child);
  while (!queue.empty()) {
    const int node = queue.front();
    queue.pop_front();
    for (const auto& [byte, child] : edges[node]) {
      nodes_[child].fail = Step(nodes_[node].fail, byte);
      if (nodes_[child].output < 0) nodes_[child].output = nodes_[nodes_[child].fail].output;
      queue.push_back(child);
    }
  }
}

StopMatcher::Result StopMatcher::Feed(absl::string_view delta) {
  Result result;
  if (matched_) return result;
  const size_t base = held_.size();
  held_.append(delta.data(), delta.size());
  for (size_t i = 0; i < delta.size(); ++i) {
    state_ = Step(state_, static_cast<unsigned char>(delta[i]));
    const int index = nodes_[state_].output;
    if (index < 0) continue;
    const size_t end = base + i + 1;
    result.text = held_.substr(0, end - stops_[index].size());
    result.matched = true;
    result.stop = stops_[index];
    result.index = index;
    matched_ = true;
    held_.clear();
    return result;
  }
  // Hold back the longest suffix that is a prefix of some stop string.
  const size_t keep = static_cast<size_t>(nodes_[state_].depth);
  result.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return result;
}

std::string StopMatcher::Flush() {
  std::string rest;
  rest.swap(held_);
  state_ = 0;
  return rest;
}

}  // namespace jamba::router
