// Test helpers: build small safetensors files byte by byte (including
// deliberately broken ones), scratch directories to hold checkpoints, and a
// fixture that opens such files.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/safetensors.h"
#include "nlohmann/json.hpp"

namespace jamba::model::testing {

using Json = nlohmann::json;

struct RawTensor {
  std::string name;
  std::string dtype;  // safetensors spelling: "F32", "BF16", ...
  std::vector<int64_t> shape;
  std::string data;  // raw little-endian bytes
};

inline std::string F32Bytes(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  if (!values.empty()) std::memcpy(&bytes[0], values.data(), bytes.size());
  return bytes;
}

inline std::string U16Bytes(const std::vector<uint16_t>& values) {
  std::string bytes(values.size() * sizeof(uint16_t), '\0');
  if (!values.empty()) std::memcpy(&bytes[0], values.data(), bytes.size());
  return bytes;
}

// The 8-byte little-endian length, then `header` verbatim, then `data`.
inline std::string WithLength(uint64_t length, const std::string& header,
                              const std::string& data = "") {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  }
  return out + header + data;
}

// A well-formed file: `header` JSON padded with spaces so that the data
// section starts at a file offset equal to `data_shift` modulo 8.
inline std::string Serialize(const Json& header, const std::string& data, int data_shift = 0) {
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != static_cast<size_t>(data_shift)) text += ' ';
  return WithLength(text.size(), text, data);
}

// Header describing `tensors` laid out back to back.
inline Json HeaderFor(const std::vector<RawTensor>& tensors, std::string* data) {
  Json header = Json::object();
  header["__metadata__"] = {{"format", "pt"}};
  data->clear();
  for (const RawTensor& t : tensors) {
    const size_t begin = data->size();
    *data += t.data;
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data->size()}}};
  }
  return header;
}

inline std::string BuildSafetensors(const std::vector<RawTensor>& tensors, int data_shift = 0) {
  std::string data;
  const Json header = HeaderFor(tensors, &data);
  return Serialize(header, data, data_shift);
}

inline void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  ASSERT_TRUE(out.good()) << path;
}

// A fresh directory under the test temp dir, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "jamba_loader_XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    const char* made = ::mkdtemp(buffer.data());
    EXPECT_NE(made, nullptr) << pattern;
    path_ = made == nullptr ? pattern : std::string(made);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes bytes to a scratch model.safetensors and opens it.
class SafetensorsFileTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> OpenBytes(const std::string& bytes) {
    WriteFile(path_, bytes);
    return SafetensorsFile::Open(path_);
  }

  // Opening `bytes` fails with `code` and a message naming the file and
  // every string in `parts`.
  void ExpectOpenError(const std::string& bytes, absl::StatusCode code,
                       const std::vector<std::string>& parts) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = OpenBytes(bytes);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), code) << file.status();
    EXPECT_THAT(std::string(file.status().message()), ::testing::HasSubstr(path_));
    for (const std::string& part : parts) {
      EXPECT_THAT(std::string(file.status().message()), ::testing::HasSubstr(part));
    }
  }

  // A one-tensor header with the given fields.
  static std::string OneTensor(const Json& entry, size_t data_bytes) {
    return Serialize(Json{{"w", entry}}, std::string(data_bytes, '\0'));
  }

  TempDir dir_;
  const std::string path_ = dir_.File("model.safetensors");
};

}  // namespace jamba::model::testing
