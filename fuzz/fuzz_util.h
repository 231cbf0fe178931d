// Helpers shared by the libFuzzer targets: a private scratch directory for
// inputs that the code under test reads from files, and the repository's
// test data. Not thread-safe (libFuzzer runs one input at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace jamba::fuzz {

// A directory private to this process, created on first use and removed at
// exit.
const std::string& ScratchDir();

// Writes `size` bytes to `path`, replacing it; aborts on I/O errors (a
// broken fuzzing environment, not a finding).
void WriteFileOrDie(const std::string& path, const uint8_t* data, size_t size);

// The repository root: $JAMBA_SOURCE_DIR, else the one this was built from.
std::string SourceDir();

}  // namespace jamba::fuzz
