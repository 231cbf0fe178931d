// ThreadPool: a fixed set of worker threads for data-parallel loops.
//
// ParallelFor splits [0, n) into contiguous chunks and runs them on the pool
// and on the calling thread, returning when all are done. Calls from several
// threads are serialised; a call from inside a loop body runs inline.
// Thread-safe.
#pragma once

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
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(begin, end) over chunks covering [0, n); chunks hold at least
  // `min_chunk` items so tiny loops stay on one thread.
  void ParallelFor(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn);

  // One pool per process, sized from the machine (or JAMBA_NUM_THREADS).
  static ThreadPool& Default();

 private:
  void WorkerLoop();
  void RunChunks();

  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises ParallelFor calls
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 0;
  int64_t next_ = 0;         // next chunk start, guarded by mu_
  int64_t pending_ = 0;      // chunks not yet finished, guarded by mu_
  uint64_t generation_ = 0;  // bumps per ParallelFor call
  bool stop_ = false;
};

}  // namespace jamba
