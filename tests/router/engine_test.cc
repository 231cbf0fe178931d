// Engine: continuous batching gives every request the output it gets alone;
// cancellation, deadlines, the waiting-queue bound and the state budget.
#include "router/engine.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "mixer_worker/in_process_mixer.h"
#include "mixer_worker/mixer_executor.h"
#include "router/metrics.h"
#include "tests/testing/fixtures.h"

namespace jamba::router {
namespace {

// Collects one request's events.
class Collector : public GenerationObserver {
 public:
  void OnTokens(const std::vector<GeneratedToken>& tokens, const std::string& text) override {
    for (const GeneratedToken& t : tokens) ids.push_back(t.id);
    if (!tokens.empty() && first_token_callback) first_token_callback();
  }
  void OnFinish(const FinishInfo& info) override {
    finish = info;
    done.Notify();
  }
  void OnError(const absl::Status& s) override {
    status = s;
    done.Notify();
  }

  std::vector<int32_t> ids;
  FinishInfo finish;
  absl::Status status;
  absl::Notification done;
  std::function<void()> first_token_callback;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mixer::MixerOptions options;
    options.model_dir = testing::SourceDir() + "/tests/testdata/tiny_model";
    auto mixer = mixer::MixerExecutor::Create(options);
    ASSERT_TRUE(mixer.ok()) << mixer.status();
    mixer_ = std::make_unique<mixer::InProcessMixer>(*std::move(mixer));
  }

  GenerationRequest Request(int seed, int max_new_tokens) const {
    GenerationRequest r;
    r.prompt = {1};
    for (int i = 0; i < 5 + seed % 7; ++i) r.prompt.push_back(10 + (seed * 37 + i * 11) % 400);
    r.sampling.temperature = 0;
    r.sampling.max_new_tokens = max_new_tokens;
    r.sampling.ignore_eos = true;
    r.arrival = absl::Now();
    return r;
  }

  std::unique_ptr<mixer::InProcessMixer> mixer_;
};

TEST_F(EngineTest, OutputAloneEqualsOutputAmongSixteenOthers) {
  EngineOptions options;
  options.max_step_tokens = 8;  // long prompts are prefilled in chunks between decode steps
  std::vector<std::vector<int32_t>> alone;
  {
    Engine engine(mixer_.get(), nullptr, options);
    for (int i = 0; i < 17; ++i) {
      Collector c;
      ASSERT_TRUE(engine.Submit(Request(i, 12), &c).ok());
      c.done.WaitForNotification();
      ASSERT_TRUE(c.status.ok()) << c.status;
      alone.push_back(c.ids);
    }
  }
  Engine engine(mixer_.get(), nullptr, options);
  std::vector<std::unique_ptr<Collector>> together(17);
  for (int i = 0; i < 17; ++i) {
    together[i] = std::make_unique<Collector>();
    ASSERT_TRUE(engine.Submit(Request(i, 12), together[i].get()).ok());
  }
  for (int i = 0; i < 17; ++i) {
    together[i]->done.WaitForNotification();
    ASSERT_TRUE(together[i]->status.ok()) << together[i]->status;
    EXPECT_EQ(together[i]->ids, alone[i]) << "request " << i;
  }
}

TEST_F(EngineTest, CancelStopsTheRequestAndFreesItsState) {
  Metrics metrics;
  Engine engine(mixer_.get(), nullptr, EngineOptions{}, &metrics);
  Collector c;
  std::shared_ptr<Engine::Handle> handle;
  absl::Notification handle_set;
  // The first token can come before Submit has returned the handle; the
  // engine thread waits for it (the main thread sets it next).
  c.first_token_callback = [&] {
    handle_set.WaitForNotification();
    engine.Cancel(handle);
  };
  auto submitted = engine.Submit(Request(1, 1000), &c);
  ASSERT_TRUE(submitted.ok());
  handle = *submitted;
  handle_set.Notify();
  c.done.WaitForNotification();
  EXPECT_EQ(c.status.code(), absl::StatusCode::kCancelled);
  EXPECT_LT(c.ids.size(), 1000u);
  EXPECT_EQ(engine.state_bytes_used(), 0);
  EXPECT_EQ(mixer_->executor().num_sequences(), 0u);
  EXPECT_NE(metrics.Render().find("jamba_request_failures_total{reason=\"cancelled\"} 1"),
            std::string::npos);
}

TEST_F(EngineTest, DeadlineEndsTheRequest) {
  Engine engine(mixer_.get(), nullptr, EngineOptions{});
  Collector c;
  GenerationRequest r = Request(2, 100000);
  r.sampling.max_new_tokens = 3000;
  r.deadline = absl::Now() + absl::Milliseconds(200);
  const absl::Time start = absl::Now();
  ASSERT_TRUE(engine.Submit(r, &c).ok());
  c.done.WaitForNotification();
  EXPECT_EQ(c.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(engine.state_bytes_used(), 0);
}

TEST_F(EngineTest, FullQueueIsResourceExhausted) {
  EngineOptions options;
  options.max_running = 1;
  options.max_waiting = 2;
  Engine engine(mixer_.get(), nullptr, options);
  std::vector<std::unique_ptr<Collector>> calls;
  int rejected = 0;
  for (int i = 0; i < 8; ++i) {
    calls.push_back(std::make_unique<Collector>());
    auto handle = engine.Submit(Request(i, 200), calls.back().get());
    if (!handle.ok()) {
      EXPECT_EQ(handle.status().code(), absl::StatusCode::kResourceExhausted);
      calls.back()->done.Notify();
      ++rejected;
    }
  }
  EXPECT_GE(rejected, 1);
  for (auto& c : calls) c->done.WaitForNotification();
}

TEST_F(EngineTest, StateBudgetLimitsAdmissionAndRejectsWhatCanNeverFit) {
  EngineOptions options;
  Engine probe(mixer_.get(), nullptr, options);
  const int64_t one = probe.StateBytesFor(6 + 40);
  options.state_budget_bytes = one + one / 2;  // room for one such request at a time
  Engine engine(mixer_.get(), nullptr, options);
  Collector a, b;
  const GenerationRequest request_a = Request(0, 40);
  const GenerationRequest request_b = Request(7, 40);
  ASSERT_TRUE(engine.Submit(request_a, &a).ok());
  ASSERT_TRUE(engine.Submit(request_b, &b).ok());
  a.done.WaitForNotification();
  b.done.WaitForNotification();
  EXPECT_TRUE(a.status.ok());
  EXPECT_TRUE(b.status.ok());
  // b waited for a's state to be released: it started once a had finished.
  // (Compared as instants: the two arrivals differ by however long the
  // first Submit took.)
  EXPECT_GE(request_b.arrival + b.finish.queue_time,
            request_a.arrival + a.finish.total_time - absl::Milliseconds(1));

  Collector huge;
  auto rejected = engine.Submit(Request(3, 4000), &huge);
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(rejected.status().message().find("state pool"), std::string::npos);
}

}  // namespace
}  // namespace jamba::router
