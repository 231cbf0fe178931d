// ThreadPool: a fixed set of worker threads for data-parallel loops.
//
// ParallelFor splits [0, n) into contiguous chunks and runs them on the pool
// and on the calling thread, returning when all are done. Calls from several
// threads are serialised; a call from inside a loop body runs inline.
//
// Between calls a worker polls for a while (JAMBA_SPIN_US, default 100
// microseconds) before it sleeps, and so does the caller waiting for the
// last chunk: a thread woken from a futex takes tens of microseconds to run,
// which is a large share of a decode step's GEMV (50-200 us each). The poll
// yields the core between short runs of pauses, so processes sharing cores
// (a router beside its expert workers) still get them. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace jamba {

class ThreadPool {
 public:
  // `num_threads` counts the calling thread: 1 means run inline.
  // `spin_us`: how long an idle thread polls before it sleeps (0: never).
  explicit ThreadPool(int num_threads, int spin_us = 100);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(begin, end) over chunks covering [0, n); chunks hold at least
  // `min_chunk` items so tiny loops stay on one thread.
  void ParallelFor(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn);

  // One pool per process, sized from the machine (or JAMBA_NUM_THREADS);
  // JAMBA_SPIN_US sets its spin.
  static ThreadPool& Default();

 private:
  void WorkerLoop();
  void RunChunks();

  const int spin_us_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises ParallelFor calls
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 0;
  int64_t next_ = 0;  // next chunk start, guarded by mu_
  // Written under mu_; also read without it by spinning threads.
  std::atomic<int64_t> pending_{0};      // chunks not yet finished
  std::atomic<uint64_t> generation_{0};  // bumps per ParallelFor call
  std::atomic<bool> stop_{false};
};

}  // namespace jamba
