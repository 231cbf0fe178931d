// Process-wide malloc settings for the engine's allocation pattern.
#pragma once

namespace jamba {

// Keeps freed blocks of up to 64 MiB in the heap for reuse, and up to 128 MiB
// of free memory at a heap's top, instead of returning them to the kernel.
// A prefill allocates and frees activations of hundreds of KiB to tens of MiB
// per layer; by default glibc maps each afresh, so the kernel faults in and
// zeroes every page again on each use. Resident memory then stays at its
// peak rather than shrinking between requests, which is what a server wants.
// Call once at the start of main, before threads start.
void ReuseFreedMemory();

}  // namespace jamba
