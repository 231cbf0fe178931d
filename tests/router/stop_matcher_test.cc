// StopMatcher: stop strings across deltas, held-back prefixes, overlapping
// candidates, and the guarantee that nothing from a match on is emitted.
#include "router/stop_matcher.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jamba::router {
namespace {

// Feeds `deltas` and returns everything emitted (including Flush when no
// match), plus the match.
struct Outcome {
  std::string text;
  bool matched = false;
  std::string stop;
  int index = -1;
};

Outcome FeedAll(const std::vector<std::string>& stops, const std::vector<std::string>& deltas) {
  StopMatcher m(stops);
  Outcome out;
  for (const std::string& d : deltas) {
    StopMatcher::Result r = m.Feed(d);
    out.text += r.text;
    if (r.matched) {
      out.matched = true;
      out.stop = r.stop;
      out.index = r.index;
    }
  }
  if (!out.matched) out.text += m.Flush();
  return out;
}

TEST(StopMatcherTest, NoStopsPassesEverythingThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.Feed("hello").text, "hello");
  EXPECT_EQ(m.held_back(), 0u);
  EXPECT_EQ(m.Flush(), "");
}

TEST(StopMatcherTest, MatchAcrossDeltas) {
  const Outcome o = FeedAll({"STOP"}, {"abc S", "T", "OP and more", "even more"});
  EXPECT_TRUE(o.matched);
  EXPECT_EQ(o.text, "abc ");
  EXPECT_EQ(o.stop, "STOP");
  EXPECT_EQ(o.index, 0);
}

TEST(StopMatcherTest, PartialPrefixIsHeldBackThenReleased) {
  StopMatcher m({"STOP"});
  StopMatcher::Result r = m.Feed("abc ST");
  EXPECT_EQ(r.text, "abc ");
  EXPECT_FALSE(r.matched);
  EXPECT_EQ(m.held_back(), 2u);
  r = m.Feed("O");
  EXPECT_EQ(r.text, "");
  r = m.Feed("NE");  // "STONE" is not "STOP": release all of it
  EXPECT_EQ(r.text, "STONE");
  EXPECT_EQ(m.held_back(), 0u);
  r = m.Feed("S");
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(m.Flush(), "S");  // end of generation: the held text is plain text
}

TEST(StopMatcherTest, HeldBackRestartsInsideAFailedCandidate) {
  // "SSTOP": the first S fails, the second starts the real match.
  EXPECT_EQ(FeedAll({"STOP"}, {"xS", "S", "TO", "P!"}).text, "xS");
  // "abab" then "c": the held "abab" must keep its suffix "ab".
  StopMatcher m({"abac"});
  EXPECT_EQ(m.Feed("ab").text, "");
  EXPECT_EQ(m.Feed("ab").text, "ab");
  EXPECT_EQ(m.held_back(), 2u);
  StopMatcher::Result r = m.Feed("ac");
  EXPECT_TRUE(r.matched);
  EXPECT_EQ(r.text, "");
}

TEST(StopMatcherTest, MultipleStopStrings) {
  const Outcome o = FeedAll({"\n\n", "User:", "###"}, {"Answer: 42", " ##", "# tail"});
  EXPECT_TRUE(o.matched);
  EXPECT_EQ(o.text, "Answer: 42 ");
  EXPECT_EQ(o.stop, "###");
  EXPECT_EQ(o.index, 2);
  EXPECT_EQ(FeedAll({"\n\n", "User:"}, {"a\nUser", ":"}).stop, "User:");
}

TEST(StopMatcherTest, OverlappingStopStrings) {
  // The stop that completes first wins, wherever it started.
  Outcome o = FeedAll({"abcd", "bc"}, {"xabcd"});
  EXPECT_EQ(o.stop, "bc");
  EXPECT_EQ(o.text, "xa");
  // Two ending at the same byte: the longer (earlier-starting) one.
  o = FeedAll({"b", "ab"}, {"xa", "b"});
  EXPECT_EQ(o.stop, "ab");
  EXPECT_EQ(o.text, "x");
  // One stop is a prefix of another: the shorter completes first.
  o = FeedAll({"abc", "ab"}, {"zab", "c"});
  EXPECT_EQ(o.stop, "ab");
  EXPECT_EQ(o.text, "z");
  // Duplicates report the first index.
  EXPECT_EQ(FeedAll({"x", "x"}, {"ax"}).index, 0);
}

TEST(StopMatcherTest, StopAtTheVeryStart) {
  const Outcome o = FeedAll({"<end>"}, {"<en", "d>rest"});
  EXPECT_TRUE(o.matched);
  EXPECT_EQ(o.text, "");
}

TEST(StopMatcherTest, NothingIsEmittedAfterAMatch) {
  StopMatcher m({"."});
  StopMatcher::Result r = m.Feed("one. two");
  EXPECT_TRUE(r.matched);
  EXPECT_EQ(r.text, "one");
  r = m.Feed("three.");
  EXPECT_FALSE(r.matched);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(m.Flush(), "");
  EXPECT_TRUE(m.matched());
}

TEST(StopMatcherTest, MultiByteStopStrings) {
  const Outcome o = FeedAll({"終わり", "🛑"}, {"日本語", "\xE7\xB5", "\x82", "わり!"});
  EXPECT_EQ(o.text, "日本語");
  EXPECT_EQ(o.stop, "終わり");
  EXPECT_EQ(FeedAll({"🛑"}, {"ok 🛑"}).text, "ok ");
}

TEST(StopMatcherTest, ChunkingNeverChangesTheResult) {
  // Any split of the text into deltas gives the same emitted text and match,
  // and the emitted text is exactly the text before the first completed stop.
  const std::vector<std::string> stops = {"aab", "abab", "ba", "bbb"};
  std::mt19937 rng(7);
  for (int trial = 0; trial < 500; ++trial) {
    std::string text;
    for (int i = 0; i < 30; ++i) text.push_back("ab"[rng() % 2]);
    const Outcome whole = FeedAll(stops, {text});
    std::vector<std::string> deltas;
    for (size_t pos = 0; pos < text.size();) {
      const size_t n = std::min<size_t>(rng() % 5, text.size() - pos);
      deltas.push_back(text.substr(pos, n));
      pos += n;
    }
    const Outcome split = FeedAll(stops, deltas);
    EXPECT_EQ(split.text, whole.text) << text;
    EXPECT_EQ(split.stop, whole.stop) << text;
    // Reference: the earliest end over all stops (longest on a tie).
    size_t best_end = std::string::npos;
    std::string best;
    for (const std::string& s : stops) {
      const size_t at = text.find(s);
      if (at == std::string::npos) continue;
      const size_t end = at + s.size();
      if (end < best_end || (end == best_end && s.size() > best.size())) {
        best_end = end;
        best = s;
      }
    }
    EXPECT_EQ(whole.stop, best) << text;
    if (!best.empty()) {
      EXPECT_EQ(whole.text, text.substr(0, best_end - best.size())) << text;
    }
  }
}

TEST(StopMatcherTest, HeldBackIsBoundedByTheLongestStop) {
  StopMatcher m({std::string(256, 'a')});
  for (int i = 0; i < 1000; ++i) {
    m.Feed("a");
    if (m.matched()) break;
    EXPECT_LT(m.held_back(), 256u);
  }
  EXPECT_TRUE(m.matched());
  StopMatcher n({"xyz"});
  for (int i = 0; i < 10000; ++i) n.Feed("xy-");
  EXPECT_EQ(n.held_back(), 0u);
}

}  // namespace
}  // namespace jamba::router
