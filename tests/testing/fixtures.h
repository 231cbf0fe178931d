// Test helpers for the committed Hugging Face reference fixtures in
// tests/testdata/fixtures/<name>/ (see that folder's README.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace jamba::testing {

struct Reference {
  std::string dir;
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> greedy_ids;  // greedy_ids[0] from the prompt, then one per decode step
  int64_t vocab_size = 0;
  std::vector<float> prompt_logits;  // [L, V]
  std::vector<float> decode_logits;  // [steps, V]
  int num_decode_steps = 0;
};

// The repository root (JAMBA_SOURCE_DIR, else the one this was built from).
std::string SourceDir();
// Names of the fixture folders, sorted.
std::vector<std::string> ListFixtures();
// Reads reference.json and the logits files; aborts the test binary on a
// malformed fixture (they are committed, so that is a repository bug).
Reference LoadReference(const std::string& name);

// max_i |a_i - b_i| / max_i |b_i| over n values.
double RelativeMaxError(const float* a, const float* b, int64_t n);

}  // namespace jamba::testing
