// Shared helpers for the router library tests: test data paths and the
// tokenizer goldens written by tools/make_tokenizer_fixture.py.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/check.h"
#include "nlohmann/json.hpp"

namespace jamba::router::testing {

// tests/testdata/<relative> under the repository root (JAMBA_SOURCE_DIR,
// else the working directory).
inline std::string TestDataPath(const std::string& relative) {
  const char* root = std::getenv("JAMBA_SOURCE_DIR");
  const std::string base = root != nullptr ? root : std::filesystem::current_path().string();
  return base + "/tests/testdata/" + relative;
}

inline std::string ReadTestFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  JAMBA_CHECK(file.good()) << "cannot open " << path;
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

inline const nlohmann::json& Golden() {
  static const nlohmann::json* golden = new nlohmann::json(nlohmann::json::parse(
      ReadTestFile(TestDataPath("tokenizer/golden.json")), nullptr, /*allow_exceptions=*/false));
  JAMBA_CHECK(golden->is_object()) << "tests/testdata/tokenizer/golden.json is malformed";
  return *golden;
}

// A fresh empty directory under the system temp dir.
inline std::string MakeTempDir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("jamba_router_test_" + std::to_string(::getpid()) + "_" + name);
  std::error_code error;
  std::filesystem::remove_all(dir, error);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace jamba::router::testing
