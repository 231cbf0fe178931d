// Tests of ThreadPool::ParallelFor: full coverage of [0, n), chunk sizes,
// inline execution, concurrent callers and the workers' wait between loops.
#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace jamba {
namespace {

// Runs ParallelFor and returns the chunks it was called with, sorted.
std::vector<std::pair<int64_t, int64_t>> Chunks(ThreadPool& pool, int64_t n, int64_t min_chunk) {
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  pool.ParallelFor(n, min_chunk, [&](int64_t begin, int64_t end) {
    std::lock_guard<std::mutex> lock(mu);
    chunks.emplace_back(begin, end);
  });
  std::sort(chunks.begin(), chunks.end());
  return chunks;
}

TEST(ThreadPoolTest, ChunksCoverTheRangeOnce) {
  ThreadPool pool(4);
  EXPECT_EQ(pool.num_threads(), 4);
  for (int64_t n : {1, 3, 4, 5, 100, 1001}) {
    for (int64_t min_chunk : {1, 7, 64}) {
      const auto chunks = Chunks(pool, n, min_chunk);
      ASSERT_FALSE(chunks.empty());
      int64_t next = 0;
      for (size_t i = 0; i < chunks.size(); ++i) {
        EXPECT_EQ(chunks[i].first, next) << "n " << n << " min_chunk " << min_chunk;
        EXPECT_LT(chunks[i].first, chunks[i].second);
        // Only the last chunk may be shorter than min_chunk.
        if (i + 1 < chunks.size()) {
          EXPECT_GE(chunks[i].second - chunks[i].first, min_chunk);
        }
        next = chunks[i].second;
      }
      EXPECT_EQ(next, n);
    }
  }
}

TEST(ThreadPoolTest, EmptyRangeCallsNothing) {
  ThreadPool pool(3);
  EXPECT_TRUE(Chunks(pool, 0, 1).empty());
  EXPECT_TRUE(Chunks(pool, -5, 1).empty());
}

TEST(ThreadPoolTest, SmallLoopsRunInlineAsOneChunk) {
  ThreadPool pool(4);
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on;
  int calls = 0;
  pool.ParallelFor(10, 16, [&](int64_t begin, int64_t end) {
    ran_on = std::this_thread::get_id();
    ++calls;
    EXPECT_EQ(begin, 0);
    EXPECT_EQ(end, 10);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ran_on, caller);
}

TEST(ThreadPoolTest, SingleThreadPoolRunsInline) {
  ThreadPool pool(1);
  EXPECT_EQ(pool.num_threads(), 1);
  const auto chunks = Chunks(pool, 1000, 1);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0], std::make_pair(int64_t{0}, int64_t{1000}));
}

TEST(ThreadPoolTest, ConcurrentCallersAreSerialisedAndCorrect) {
  ThreadPool pool(3);
  constexpr int kCallers = 4;
  constexpr int64_t kN = 5000;
  std::vector<std::vector<int>> hits(kCallers, std::vector<int>(kN, 0));
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 20; ++round) {
        pool.ParallelFor(kN, 1, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) ++hits[c][i];
        });
      }
    });
  }
  for (std::thread& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) {
    EXPECT_EQ(std::count(hits[c].begin(), hits[c].end(), 20), kN) << "caller " << c;
  }
}

TEST(ThreadPoolTest, SumMatchesSerial) {
  ThreadPool pool(4);
  std::atomic<int64_t> sum{0};
  pool.ParallelFor(100000, 1, [&](int64_t begin, int64_t end) {
    int64_t local = 0;
    for (int64_t i = begin; i < end; ++i) local += i;
    sum += local;
  });
  EXPECT_EQ(sum.load(), int64_t{100000} * 99999 / 2);
}

TEST(ThreadPoolTest, NestedLoopsRunInlineInsteadOfDeadlocking) {
  ThreadPool pool(3);
  std::atomic<int64_t> count{0};
  pool.ParallelFor(8, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      pool.ParallelFor(100, 1, [&](int64_t b, int64_t e) { count += e - b; });
    }
  });
  EXPECT_EQ(count.load(), 800);
  // The pool still works in parallel afterwards.
  pool.ParallelFor(100, 1, [&](int64_t b, int64_t e) { count += e - b; });
  EXPECT_EQ(count.load(), 900);
}

// Workers that poll between loops (spin_us > 0) and workers that sleep at
// once (0) both see every loop: back-to-back loops (caught while polling),
// loops after a pause longer than the poll (workers asleep), and a pool
// destroyed while its workers poll.
TEST(ThreadPoolTest, EveryLoopRunsWhetherWorkersPollOrSleep) {
  for (const int spin_us : {0, 100, 100000}) {
    SCOPED_TRACE(::testing::Message() << "spin_us " << spin_us);
    ThreadPool pool(3, spin_us);
    std::vector<int> hits(3000, 0);
    for (int round = 0; round < 200; ++round) {
      if (round % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      pool.ParallelFor(static_cast<int64_t>(hits.size()), 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) ++hits[i];
      });
    }
    EXPECT_EQ(std::count(hits.begin(), hits.end(), 200), static_cast<int64_t>(hits.size()));
  }
}

TEST(ThreadPoolTest, DefaultIsOneInstance) {
  EXPECT_EQ(&ThreadPool::Default(), &ThreadPool::Default());
  EXPECT_GE(ThreadPool::Default().num_threads(), 1);
}

}  // namespace
}  // namespace jamba
