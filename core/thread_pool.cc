#include "core/thread_pool.h"

#include <algorithm>
#include <cstdlib>

#include "core/spin_wait.h"

namespace jamba {
namespace {

// True on pool workers and inside ParallelFor: nested loops run inline.
thread_local bool in_parallel_region = false;

int EnvInt(const char* name, int fallback) {
  const char* env = std::getenv(name);
  return env != nullptr ? std::atoi(env) : fallback;
}

}  // namespace

ThreadPool::ThreadPool(int num_threads, int spin_us) : spin_us_(std::max(0, spin_us)) {
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

ThreadPool& ThreadPool::Default() {
  static ThreadPool* pool = [] {
    const int n =
        EnvInt("JAMBA_NUM_THREADS", static_cast<int>(std::thread::hardware_concurrency()));
    return new ThreadPool(std::max(1, n), DefaultSpinMicros());
  }();
  return *pool;
}

void ThreadPool::RunChunks() {
  // REQUIRES: mu_ is not held. Takes chunks until none are left.
  for (;;) {
    int64_t begin;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (fn_ == nullptr || next_ >= n_) return;
      begin = next_;
      next_ += chunk_;
    }
    (*fn_)(begin, std::min(n_, begin + chunk_));
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_cv_.notify_all();
  }
}

void ThreadPool::WorkerLoop() {
  in_parallel_region = true;
  uint64_t seen = 0;
  for (;;) {
    SpinWait(spin_us_, [&] {
      return stop_.load(std::memory_order_relaxed) ||
             generation_.load(std::memory_order_acquire) != seen;
    });
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
      if (stop_.load()) return;
      seen = generation_.load();
    }
    RunChunks();
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t min_chunk,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t threads = num_threads();
  const int64_t chunk =
      std::max<int64_t>(std::max<int64_t>(1, min_chunk), (n + threads - 1) / threads);
  if (threads == 1 || chunk >= n || in_parallel_region) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  in_parallel_region = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_ = n;
    chunk_ = chunk;
    next_ = 0;
    pending_.store((n + chunk - 1) / chunk);
    generation_.fetch_add(1, std::memory_order_release);
  }
  work_cv_.notify_all();
  RunChunks();
  SpinWait(spin_us_, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return pending_.load() == 0; });
  fn_ = nullptr;
  in_parallel_region = false;
}

}  // namespace jamba
