#include "router/tokenizer_bpe.h"

#include <queue>

namespace jamba::router {
namespace {

struct Node {
  BpeSymbol symbol;
  int prev = -1;
  int next = -1;
  bool alive = true;
};

// A possible merge of nodes `left` and `right`, valid while both still span
// what they spanned when it was queued.
struct Candidate {
  double priority;
  int left;
  int right;
  size_t left_end;
  size_t right_end;
  int32_t id;
};

struct WorseCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.priority != b.priority) return a.priority > b.priority;
    return a.left > b.left;
  }
};

}  // namespace

std::vector<BpeSymbol> BpeMergeAll(std::vector<BpeSymbol> symbols, const BpeMergeFn& merge) {
  if (symbols.size() < 2) return symbols;
  std::vector<Node> nodes(symbols.size());
  for (size_t i = 0; i < symbols.size(); ++i) {
    nodes[i].symbol = symbols[i];
    nodes[i].prev = static_cast<int>(i) - 1;
    nodes[i].next = i + 1 < symbols.size() ? static_cast<int>(i) + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, WorseCandidate> queue;
  auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const BpeSymbol& l = nodes[left].symbol;
    const BpeSymbol& r = nodes[right].symbol;
    if (l.frozen || r.frozen) return;
    const std::optional<BpeMerge> m = merge(l, r);
    if (!m.has_value()) return;
    queue.push(Candidate{m->priority, left, right, l.end, r.end, m->id});
  };
  for (size_t i = 1; i < nodes.size(); ++i) consider(static_cast<int>(i) - 1, static_cast<int>(i));

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Node& left = nodes[top.left];
    Node& right = nodes[top.right];
    if (!left.alive || !right.alive || left.next != top.right || left.symbol.end != top.left_end ||
        right.symbol.end != top.right_end) {
      continue;  // stale: one side has merged since
    }
    left.symbol.end = right.symbol.end;
    left.symbol.id = top.id;
    left.next = right.next;
    if (right.next >= 0) nodes[right.next].prev = top.left;
    right.alive = false;
    consider(left.prev, top.left);
    consider(top.left, left.next);
  }

  std::vector<BpeSymbol> out;
  for (int i = 0; i >= 0; i = nodes[i].next) out.push_back(nodes[i].symbol);
  return out;
}

}  // namespace jamba::router
