#include "tests/testing/fixtures.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/check.h"
#include "nlohmann/json.hpp"

namespace jamba::testing {
namespace {

std::vector<float> ReadF32(const std::string& path, size_t expected) {
  std::ifstream file(path, std::ios::binary);
  JAMBA_CHECK(file.good()) << "cannot open " << path;
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  JAMBA_CHECK_EQ(bytes.size(), expected * sizeof(float)) << path;
  std::vector<float> values(expected);
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(values.data()));
  return values;
}

}  // namespace

std::string SourceDir() {
  const char* env = std::getenv("JAMBA_SOURCE_DIR");
  return env != nullptr ? env : JAMBA_SOURCE_DIR_DEFAULT;
}

std::vector<std::string> ListFixtures() {
  std::vector<std::string> names;
  const std::filesystem::path root = SourceDir() + "/tests/testdata/fixtures";
  if (!std::filesystem::exists(root)) return names;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (std::filesystem::exists(entry.path() / "reference.json")) {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

Reference LoadReference(const std::string& name) {
  Reference ref;
  ref.dir = SourceDir() + "/tests/testdata/fixtures/" + name;
  std::ifstream file(ref.dir + "/reference.json");
  nlohmann::json json = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
  JAMBA_CHECK(json.is_object()) << ref.dir << "/reference.json is not a JSON object";
  ref.prompt_ids = json["prompt_ids"].get<std::vector<int32_t>>();
  ref.greedy_ids = json["greedy_ids"].get<std::vector<int32_t>>();
  ref.vocab_size = json["vocab_size"].get<int64_t>();
  ref.num_decode_steps = json["num_decode_steps"].get<int>();
  ref.prompt_logits =
      ReadF32(ref.dir + "/prompt_logits.f32", ref.prompt_ids.size() * ref.vocab_size);
  ref.decode_logits = ReadF32(ref.dir + "/decode_logits.f32",
                              static_cast<size_t>(ref.num_decode_steps) * ref.vocab_size);
  return ref;
}

double RelativeMaxError(const float* a, const float* b, int64_t n) {
  double max_diff = 0, max_ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    max_diff = std::max(max_diff, std::fabs(double{a[i]} - double{b[i]}));
    max_ref = std::max(max_ref, std::fabs(double{b[i]}));
  }
  return max_ref == 0 ? max_diff : max_diff / max_ref;
}

}  // namespace jamba::testing
