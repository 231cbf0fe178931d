// Runs one fuzz target (linked into this binary) over every file of its
// committed corpus, JAMBA_FUZZ_CORPUS relative to the repository root:
// the seeds and the input of every crash the fuzzer found. A regression
// crashes or trips a sanitizer here in the normal build.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

TEST(FuzzCorpusReplay, EveryCorpusInputRuns) {
  if (LLVMFuzzerInitialize != nullptr) {
    int argc = 0;
    char** argv = nullptr;
    ASSERT_EQ(LLVMFuzzerInitialize(&argc, &argv), 0);
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(JAMBA_FUZZ_CORPUS)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  ASSERT_FALSE(files.empty()) << "no corpus in " << JAMBA_FUZZ_CORPUS;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(path.string());
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
              0);
  }
  std::printf("replayed %zu inputs from %s\n", files.size(), JAMBA_FUZZ_CORPUS);
}

}  // namespace
