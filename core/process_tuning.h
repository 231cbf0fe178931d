// Process-wide settings for the serving binaries (router, workers, CLI,
// benches), called first in main before threads start. Tests keep the
// libraries' defaults.
#pragma once

namespace jamba {

// Keeps freed blocks of up to 64 MiB in the heap for reuse, and up to 128 MiB
// of free memory at a heap's top, instead of returning them to the kernel.
// A prefill allocates and frees activations of hundreds of KiB to tens of MiB
// per layer; by default glibc maps each afresh, so the kernel faults in and
// zeroes every page again on each use. Resident memory then stays at its
// peak rather than shrinking between requests, which is what a server wants.
void ReuseFreedMemory();

// Turns off absl::Mutex's deadlock detection. Debian's Abseil is built
// without NDEBUG, so every lock (ours and gRPC's, whose mutexes are
// absl::Mutex) updated a process-wide lock-order graph under a global lock:
// 57-84 ns per uncontended lock and unlock instead of 12 on the dev VM.
void SkipMutexDeadlockDetection();

// Both of the above.
void TuneProcess();

}  // namespace jamba
