// Engine: the router's generation loop with continuous batching.
//
// Requests wait in a bounded queue and join the running batch between
// steps. Each step feeds every running sequence either its next prompt
// chunk (within a per-step token budget) or its last sampled token, runs
// one batched MixerExecutor::Forward, then samples, detokenizes, checks
// stop conditions and notifies observers. Submit and Cancel are
// thread-safe; everything else runs on the engine's own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "mixer_worker/mixer_executor.h"
#include "router/generation.h"
#include "router/tokenizer.h"

namespace jamba::router {

struct EngineOptions {
  int max_running = 32;             // sequences decoding at once
  int max_waiting = 256;            // queued requests; beyond: RESOURCE_EXHAUSTED
  int64_t max_step_tokens = 256;    // prompt + decode tokens per step
};

class Engine {
 public:
  class Handle;

  // `mixer` and `tokenizer` (may be null: ids only) must outlive the engine.
  Engine(mixer::MixerExecutor* mixer, const Tokenizer* tokenizer, EngineOptions options);
  ~Engine();  // cancels everything and joins the thread

  // Queues a request; ResourceExhausted when the queue is full, Unavailable
  // after Shutdown. `observer` must live until OnFinish/OnError.
  absl::StatusOr<std::shared_ptr<Handle>> Submit(GenerationRequest request,
                                                 GenerationObserver* observer);
  // Stops a request within one step; its observer gets OnError(CANCELLED)
  // unless it already finished.
  void Cancel(const std::shared_ptr<Handle>& handle);
  // Stops admitting; running requests finish. Idempotent.
  void Shutdown();

  int num_running() const { return running_count_.load(); }
  int num_waiting() const;

 private:
  struct Sequence;

  void Loop();
  void AdmitWaiting();
  bool Step();
  void Emit(Sequence& seq, const float* logits);
  void Finish(Sequence& seq, FinishReason reason, const std::string& stop = "");
  void Fail(Sequence& seq, const absl::Status& status);
  void Release(Sequence& seq);

  mixer::MixerExecutor* mixer_;
  const Tokenizer* tokenizer_;
  EngineOptions options_;

  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Sequence>> waiting_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;

  std::vector<std::unique_ptr<Sequence>> running_;  // engine thread only
  std::atomic<int> running_count_{0};
  std::thread thread_;
};

}  // namespace jamba::router
