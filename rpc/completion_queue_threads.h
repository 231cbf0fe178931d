// Helpers for gRPC's completion-queue (async) API, which the expert path
// uses instead of the callback API: a completion is handled by the thread
// that polls the queue, with no hand-off to another thread, which on a
// virtual machine saves a thread wake-up (tens of microseconds) per event.
//
// Completion: a tag that runs a function when its operation completes.
// CompletionQueueThreads: threads that poll one queue and run the
// completions, polling (SpinWait) for a while after each before they block.
// CompletionDriver: a queue that the threads waiting for its events poll
// themselves, one at a time (leader and followers), so that the thread
// the kernel wakes is the one that waits.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace jamba::rpc {

class Completion {
 public:
  explicit Completion(std::function<void(bool ok)> on_done) : on_done_(std::move(on_done)) {}
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;

  // The tag to pass to an operation.
  void* tag() { return this; }
  // Runs the completion that `tag` names, with the operation's result.
  static void Run(void* tag, bool ok) { static_cast<Completion*>(tag)->on_done_(ok); }

 private:
  const std::function<void(bool ok)> on_done_;
};

class CompletionQueueThreads {
 public:
  // Starts `num_threads` threads that run the completions of `cq` (not
  // owned; every tag on it must be a Completion) until it is shut down.
  CompletionQueueThreads(grpc::CompletionQueue* cq, int num_threads, int spin_us);
  // Shuts the queue down and waits until the threads have drained it.
  ~CompletionQueueThreads();
  CompletionQueueThreads(const CompletionQueueThreads&) = delete;
  CompletionQueueThreads& operator=(const CompletionQueueThreads&) = delete;

 private:
  grpc::CompletionQueue* const cq_;
  std::vector<std::thread> threads_;
};

class CompletionDriver {
 public:
  // Waiters poll for up to `spin_us` before they block in the queue.
  explicit CompletionDriver(int spin_us);
  // Shuts the queue down and drains it. REQUIRES: no operation is pending
  // that a later completion would need (every call on it is over).
  ~CompletionDriver();
  CompletionDriver(const CompletionDriver&) = delete;
  CompletionDriver& operator=(const CompletionDriver&) = delete;

  grpc::CompletionQueue* cq() { return &cq_; }

  // Runs completions on this thread until `done()` or `deadline`; true
  // once done() held. One caller polls the queue at a time; the others
  // sleep until it has run a completion (which may have satisfied their
  // done()) or stopped polling. done() is called with the driver's lock
  // held and must not call into the driver. Nothing polls the queue while
  // nobody waits: completions wait in it.
  bool RunUntil(const std::function<bool()>& done, absl::Time deadline);

 private:
  const int spin_us_;
  grpc::CompletionQueue cq_;
  absl::Mutex mu_;
  bool polling_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar ran_;  // a completion ran, or the poller stopped
};

}  // namespace jamba::rpc
