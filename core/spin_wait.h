// SpinWait: poll a condition for a short while before the caller goes to
// sleep on a condition variable or in the kernel. On a virtual machine a
// sleeping thread can take tens of microseconds to run again once woken, so
// a waiter that expects its event soon polls first. Between short runs of
// `pause` the poller yields its core (sched_yield), so that processes which
// share cores (the router and its expert workers) are not slowed by the
// very wait for their work.
#pragma once

#include <chrono>

namespace jamba {

// How long waiters poll, in microseconds: JAMBA_SPIN_US, default 100; 0
// turns polling off. Read once.
int DefaultSpinMicros();

// How long threads waiting for gRPC completions poll: JAMBA_RPC_SPIN_US,
// default 0. Polling did not pay on a 2-core VM: an expert call's round
// trip was no faster alone and slower with the router and two workers on
// the same cores (bench/results/load_comparison.md).
int RpcSpinMicros();

// One `pause` (x86) or nothing.
void CpuRelax();
// Gives the core to another runnable thread, if any.
void YieldCore();

// Polls `done()` for up to `spin_us` microseconds; true once it returned
// true, false if the time ran out (then the caller blocks).
template <typename Done>
bool SpinWait(int spin_us, Done done) {
  if (spin_us <= 0) return done();
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
  for (;;) {
    for (int i = 0; i < 16; ++i) {
      if (done()) return true;
      CpuRelax();
    }
    YieldCore();
    if (std::chrono::steady_clock::now() >= until) return done();
  }
}

}  // namespace jamba
