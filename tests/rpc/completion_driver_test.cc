// CompletionDriver and CompletionQueueThreads on a real completion queue,
// with grpc::Alarm as the operation: every waiter gets its completion
// whichever thread polls, deadlines hold, and shutdown drains the queue.
#include <grpcpp/alarm.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rpc/completion_queue_threads.h"

namespace jamba::rpc {
namespace {

// An alarm whose completion records that it fired.
struct Timer {
  grpc::Alarm alarm;
  std::atomic<bool> fired{false};
  std::atomic<bool> ok{false};
  Completion done{[this](bool result) {
    ok = result;
    fired = true;
  }};
  void Set(grpc::CompletionQueue* cq, absl::Duration after) {
    alarm.Set(cq, absl::ToChronoTime(absl::Now() + after), done.tag());
  }
};

TEST(CompletionDriverTest, EachWaiterReturnsOnceItsCompletionRan) {
  for (int spin_us : {0, 100}) {
    CompletionDriver driver(spin_us);
    constexpr int kWaiters = 6;
    std::vector<std::unique_ptr<Timer>> timers;
    for (int i = 0; i < kWaiters; ++i) timers.push_back(std::make_unique<Timer>());
    // Later waiters' alarms fire first, so one waiter often runs another's.
    for (int i = 0; i < kWaiters; ++i) {
      timers[i]->Set(driver.cq(), absl::Milliseconds(5 * (kWaiters - i)));
    }
    std::vector<std::thread> waiters;
    std::atomic<int> returned{0};
    for (int i = 0; i < kWaiters; ++i) {
      waiters.emplace_back([&, i] {
        const bool done = driver.RunUntil([&] { return timers[i]->fired.load(); },
                                          absl::Now() + absl::Seconds(30));
        EXPECT_TRUE(done) << "waiter " << i << " spin " << spin_us;
        EXPECT_TRUE(timers[i]->ok.load());
        returned.fetch_add(1);
      });
    }
    for (std::thread& t : waiters) t.join();
    EXPECT_EQ(returned.load(), kWaiters);
  }
}

TEST(CompletionDriverTest, ReturnsFalseAtTheDeadline) {
  CompletionDriver driver(/*spin_us=*/50);
  Timer late;
  late.Set(driver.cq(), absl::Seconds(60));
  const absl::Time start = absl::Now();
  EXPECT_FALSE(driver.RunUntil([&] { return late.fired.load(); }, start + absl::Milliseconds(30)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_FALSE(late.fired.load());
  late.alarm.Cancel();  // its completion (ok == false) comes now
  EXPECT_TRUE(driver.RunUntil([&] { return late.fired.load(); }, absl::InfiniteFuture()));
  EXPECT_FALSE(late.ok.load());
}

TEST(CompletionDriverTest, ShutdownRunsWhatIsLeftInTheQueue) {
  Timer timer;
  {
    CompletionDriver driver(0);
    timer.Set(driver.cq(), absl::ZeroDuration());
    absl::SleepFor(absl::Milliseconds(5));
  }  // nobody waited: the destructor runs the completion
  EXPECT_TRUE(timer.fired.load());
}

TEST(CompletionQueueThreadsTest, RunsEveryCompletionAndStopsOnDestruction) {
  grpc::CompletionQueue cq;
  constexpr int kTimers = 20;
  std::vector<std::unique_ptr<Timer>> timers;
  {
    CompletionQueueThreads threads(&cq, /*num_threads=*/2, /*spin_us=*/100);
    for (int i = 0; i < kTimers; ++i) {
      timers.push_back(std::make_unique<Timer>());
      timers.back()->Set(&cq, absl::Milliseconds(i % 5));
    }
    const absl::Time limit = absl::Now() + absl::Seconds(30);
    for (auto& t : timers) {
      while (!t->fired.load() && absl::Now() < limit) absl::SleepFor(absl::Milliseconds(1));
      EXPECT_TRUE(t->fired.load());
    }
  }
}

}  // namespace
}  // namespace jamba::rpc
