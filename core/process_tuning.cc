#include "core/process_tuning.h"

#include <malloc.h>

#include "absl/synchronization/mutex.h"

namespace jamba {

void ReuseFreedMemory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

void SkipMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

void TuneProcess() {
  ReuseFreedMemory();
  SkipMutexDeadlockDetection();
}

}  // namespace jamba
