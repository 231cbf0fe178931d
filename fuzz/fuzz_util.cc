#include "fuzz/fuzz_util.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

namespace jamba::fuzz {

const std::string& ScratchDir() {
  static const std::string* dir = [] {
    // $TMPDIR, else memory-backed /dev/shm when there is one (every input
    // is written to a file), else /tmp.
    const char* base = std::getenv("TMPDIR");
    if (base == nullptr || *base == '\0') {
      base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    }
    std::string pattern = std::string(base) + "/jamba_fuzz_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    auto* made = new std::string(pattern);
    std::atexit([] { std::filesystem::remove_all(*dir); });
    return made;
  }();
  return *dir;
}

void WriteFileOrDie(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
}

std::string SourceDir() {
  const char* env = std::getenv("JAMBA_SOURCE_DIR");
  return env != nullptr && *env != '\0' ? env : JAMBA_FUZZ_SOURCE_DIR;
}

}  // namespace jamba::fuzz
