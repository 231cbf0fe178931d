#include "core/spin_wait.h"

#include <sched.h>

#include <cstdlib>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace jamba {

int DefaultSpinMicros() {
  static const int spin_us = [] {
    const char* env = std::getenv("JAMBA_SPIN_US");
    return env != nullptr ? std::atoi(env) : 100;
  }();
  return spin_us;
}

int RpcSpinMicros() {
  static const int spin_us = [] {
    const char* env = std::getenv("JAMBA_RPC_SPIN_US");
    return env != nullptr ? std::atoi(env) : 0;
  }();
  return spin_us;
}

void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

void YieldCore() { sched_yield(); }

}  // namespace jamba
