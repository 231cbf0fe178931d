// Engine: the router's generation loop with continuous batching.
//
// Requests wait in a bounded queue and join the running batch between
// steps. Each step feeds every running sequence either its next prompt
// chunk (within a per-step token budget) or its last sampled token, runs
// one batched Mixer::Forward, then samples, detokenizes, checks
// stop conditions and notifies observers. Submit and Cancel are
// thread-safe; everything else runs on the engine's own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "mixer_worker/mixer.h"
#include "router/generation.h"
#include "router/metrics.h"
#include "router/tokenizer.h"

namespace jamba::router {

struct EngineOptions {
  int max_running = 32;           // sequences decoding at once
  int max_waiting = 256;          // queued requests; beyond: RESOURCE_EXHAUSTED
  int64_t max_step_tokens = 256;  // prompt + decode tokens per step
  // Sequence state budget: conv/SSM state plus a KV cache for prompt +
  // max_new_tokens is reserved at admission; requests wait while it is full.
  int64_t state_budget_bytes = int64_t{4} << 30;
  DType kv_cache_dtype = DType::kF32;  // the mixer's, for the state accounting
};

class Engine {
 public:
  class Handle;

  // `mixer`, `tokenizer` (null: ids only) and `metrics` (may be null) must
  // outlive the engine.
  Engine(mixer::Mixer* mixer, const Tokenizer* tokenizer, EngineOptions options,
         Metrics* metrics = nullptr);
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
  int64_t state_bytes_used() const { return state_used_.load(); }
  // State bytes one request reserves: conv/SSM state + KV for its tokens.
  int64_t StateBytesFor(int64_t tokens) const;
  // One line describing the pool's capacity, for the startup log.
  std::string CapacitySummary() const;

 private:
  struct Sequence;

  void Loop();
  void AdmitWaiting();
  bool Step();
  void Emit(Sequence& seq, const float* logits);
  void Finish(Sequence& seq, FinishReason reason, const std::string& stop = "");
  void Fail(Sequence& seq, const absl::Status& status);
  void Release(Sequence& seq);

  void PublishGauges();

  mixer::Mixer* mixer_;
  const Tokenizer* tokenizer_;
  EngineOptions options_;
  Metrics* metrics_;
  std::atomic<int64_t> state_used_{0};  // written by the engine thread only

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
