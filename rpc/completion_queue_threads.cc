#include "rpc/completion_queue_threads.h"

#include "core/spin_wait.h"

namespace jamba::rpc {
namespace {

// The next event of `cq`: polls for up to `spin_us`, then blocks until
// `deadline` (TIMEOUT after it; SHUTDOWN once the queue is shut down and
// drained).
grpc::CompletionQueue::NextStatus NextEvent(grpc::CompletionQueue* cq, int spin_us,
                                            absl::Time deadline, void** tag, bool* ok) {
  grpc::CompletionQueue::NextStatus status = grpc::CompletionQueue::TIMEOUT;
  const bool polled = SpinWait(spin_us, [&] {
    status = cq->AsyncNext(tag, ok, gpr_time_0(GPR_CLOCK_MONOTONIC));
    return status != grpc::CompletionQueue::TIMEOUT;
  });
  if (polled) return status;
  return cq->AsyncNext(tag, ok, absl::ToChronoTime(deadline));
}

}  // namespace

CompletionQueueThreads::CompletionQueueThreads(grpc::CompletionQueue* cq, int num_threads,
                                               int spin_us)
    : cq_(cq) {
  for (int i = 0; i < num_threads; ++i) {
    threads_.emplace_back([cq, spin_us] {
      void* tag = nullptr;
      bool ok = false;
      while (NextEvent(cq, spin_us, absl::InfiniteFuture(), &tag, &ok) ==
             grpc::CompletionQueue::GOT_EVENT) {
        Completion::Run(tag, ok);
      }
    });
  }
}

CompletionQueueThreads::~CompletionQueueThreads() {
  cq_->Shutdown();
  for (std::thread& t : threads_) t.join();
}

CompletionDriver::CompletionDriver(int spin_us) : spin_us_(spin_us) {}

CompletionDriver::~CompletionDriver() {
  cq_.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) Completion::Run(tag, ok);
}

bool CompletionDriver::RunUntil(const std::function<bool()>& done, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  for (;;) {
    if (done()) return true;
    if (absl::Now() >= deadline) return false;
    if (polling_) {
      ran_.WaitWithDeadline(&mu_, deadline);
      continue;
    }
    polling_ = true;
    mu_.Unlock();
    void* tag = nullptr;
    bool ok = false;
    if (NextEvent(&cq_, spin_us_, deadline, &tag, &ok) == grpc::CompletionQueue::GOT_EVENT) {
      Completion::Run(tag, ok);
    }
    mu_.Lock();
    polling_ = false;
    ran_.SignalAll();
  }
}

}  // namespace jamba::rpc
