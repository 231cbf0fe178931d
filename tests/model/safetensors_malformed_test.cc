// Tests for SafetensorsFile on malformed files: each broken layout fails
// with an error naming the file and the tensor, and random corruption never
// reads out of bounds (run under ASan/UBSan).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/safetensors.h"
#include "tests/model/safetensors_writer.h"

namespace jamba::model {
namespace {

using testing::BuildSafetensors;
using testing::F32Bytes;
using ::testing::HasSubstr;
using testing::Json;
using testing::Serialize;
using testing::U16Bytes;
using testing::WithLength;
using SafetensorsTest = testing::SafetensorsFileTest;

TEST_F(SafetensorsTest, RejectsFileShorterThanLengthField) {
  ExpectOpenError("", absl::StatusCode::kInvalidArgument, {"0 bytes"});
  ExpectOpenError("\x02\0\0\0", absl::StatusCode::kInvalidArgument, {"too short"});
}

TEST_F(SafetensorsTest, RejectsHeaderLengthBeyondFile) {
  ExpectOpenError(WithLength(1000, "{}"), absl::StatusCode::kInvalidArgument, {"1000"});
  ExpectOpenError(WithLength(3, "{}"), absl::StatusCode::kInvalidArgument, {"header length 3"});
  const std::string valid = BuildSafetensors({{"w", "F32", {2}, F32Bytes({1, 2})}});
  ExpectOpenError(valid.substr(0, 20), absl::StatusCode::kInvalidArgument, {"header length"});
}

TEST_F(SafetensorsTest, RejectsHeaderOver100MiB) {
  ExpectOpenError(WithLength((uint64_t{100} << 20) + 1, "{}"), absl::StatusCode::kInvalidArgument,
                  {"100 MiB"});
  ExpectOpenError(WithLength(UINT64_MAX, "{}"), absl::StatusCode::kInvalidArgument, {"100 MiB"});
}

TEST_F(SafetensorsTest, RejectsMalformedHeaderJson) {
  const std::vector<std::string> headers = {
      "{abc}", "{\"w\": {}", "[1, 2]", "\"w\"", "{} x", "{\"\xff\": 1}", std::string("{}\0", 3)};
  for (const std::string& header : headers) {
    SCOPED_TRACE(header);
    ExpectOpenError(WithLength(header.size(), header), absl::StatusCode::kInvalidArgument,
                    {"header"});
  }
}

TEST_F(SafetensorsTest, RejectsOffsetsOutOfRange) {
  ExpectOpenError(OneTensor({{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}}, 8),
                  absl::StatusCode::kInvalidArgument, {"tensor w", "out of range"});
  ExpectOpenError(OneTensor({{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {8, 4}}}, 8),
                  absl::StatusCode::kInvalidArgument, {"tensor w", "out of range"});
  ExpectOpenError(
      OneTensor({{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {UINT64_MAX - 1, 2}}}, 8),
      absl::StatusCode::kInvalidArgument, {"tensor w"});
}

TEST_F(SafetensorsTest, RejectsTruncatedDataSection) {
  const std::string valid = BuildSafetensors(
      {{"first", "F32", {2}, F32Bytes({1, 2})}, {"last", "F32", {2}, F32Bytes({3, 4})}});
  ExpectOpenError(valid.substr(0, valid.size() - 1), absl::StatusCode::kInvalidArgument,
                  {"tensor last", "out of range"});
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  const Json header = {{"a", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}}},
                       {"b", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {8, 24}}}}};
  ExpectOpenError(Serialize(header, std::string(24, '\0')), absl::StatusCode::kInvalidArgument,
                  {"tensor b", "overlaps tensor a"});
  const Json nested = {{"outer", {{"dtype", "F32"}, {"shape", {8}}, {"data_offsets", {0, 32}}}},
                       {"inner", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {28, 32}}}},
                       {"zero", {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {4, 4}}}}};
  ExpectOpenError(Serialize(nested, std::string(32, '\0')), absl::StatusCode::kInvalidArgument,
                  {"overlaps tensor outer"});
}

TEST_F(SafetensorsTest, RejectsSizeShapeMismatch) {
  ExpectOpenError(OneTensor({{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 20}}}, 24),
                  absl::StatusCode::kInvalidArgument, {"tensor w", "needs 24"});
  ExpectOpenError(OneTensor({{"dtype", "BF16"}, {"shape", {4}}, {"data_offsets", {0, 16}}}, 16),
                  absl::StatusCode::kInvalidArgument, {"tensor w", "needs 8"});
}

TEST_F(SafetensorsTest, RejectsUnknownDtype) {
  for (const char* dtype : {"F31", "float32", "f32", ""}) {
    SCOPED_TRACE(dtype);
    ExpectOpenError(OneTensor({{"dtype", dtype}, {"shape", {1}}, {"data_offsets", {0, 4}}}, 4),
                    absl::StatusCode::kInvalidArgument,
                    {std::string("unknown dtype ") + dtype + " for tensor w in file " + path_});
  }
}

TEST_F(SafetensorsTest, UnsupportedDtypeIsUnimplemented) {
  for (const char* dtype : {"F64", "I8", "BOOL", "I32", "F8_E4M3", "U8"}) {
    SCOPED_TRACE(dtype);
    ExpectOpenError(OneTensor({{"dtype", dtype}, {"shape", {1}}, {"data_offsets", {0, 1}}}, 8),
                    absl::StatusCode::kUnimplemented,
                    {std::string("unsupported dtype ") + dtype + " for tensor w in file " + path_});
  }
}

TEST_F(SafetensorsTest, RejectsBadShapes) {
  const std::vector<Json> shapes = {
      Json{-1},         Json{2.5},
      Json{"4"},        Json::object(),
      Json{nullptr},    Json{int64_t{1} << 40, int64_t{1} << 40},  // numel * 4 overflows 64 bits
      Json{UINT64_MAX}, Json(std::vector<int>(17, 1))};
  for (const Json& shape : shapes) {
    SCOPED_TRACE(shape.dump());
    ExpectOpenError(OneTensor({{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {0, 4}}}, 4),
                    absl::StatusCode::kInvalidArgument, {"tensor w"});
  }
}

TEST_F(SafetensorsTest, RejectsMalformedEntries) {
  const std::vector<Json> entries = {
      Json::array(),
      Json{{"shape", {1}}, {"data_offsets", {0, 4}}},
      Json{{"dtype", 1}, {"shape", {1}}, {"data_offsets", {0, 4}}},
      Json{{"dtype", "F32"}, {"data_offsets", {0, 4}}},
      Json{{"dtype", "F32"}, {"shape", {1}}},
      Json{{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4, 8}}},
      Json{{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {-4, 0}}},
      Json{{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {"0", "4"}}}};
  for (const Json& entry : entries) {
    SCOPED_TRACE(entry.dump());
    ExpectOpenError(OneTensor(entry, 8), absl::StatusCode::kInvalidArgument, {"tensor w"});
  }
  ExpectOpenError(Serialize(Json{{"__metadata__", {{"format", 1}}}}, ""),
                  absl::StatusCode::kInvalidArgument, {"__metadata__"});
}

// A cheap fuzz pass: random byte edits of a valid file must either open and
// serve in-bounds views, or fail cleanly (run under ASan/UBSan to matter).
TEST_F(SafetensorsTest, RandomMutationsFailCleanly) {
  const std::string valid = BuildSafetensors({{"a", "F32", {2, 2}, F32Bytes({1, 2, 3, 4})},
                                              {"b", "BF16", {3}, U16Bytes({1, 2, 3})},
                                              {"c", "F16", {1}, U16Bytes({7})}},
                                             /*data_shift=*/2);
  std::mt19937 rng(1234);
  int opened = 0;
  for (int iteration = 0; iteration < 1000; ++iteration) {
    std::string bytes = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % bytes.size();
      switch (rng() % 4) {
        case 0:
          bytes[pos] = static_cast<char>(rng());
          break;
        case 1:
          bytes[pos] = "0123456789[]{},:\"-e"[rng() % 19];
          break;
        case 2:
          bytes.resize(pos);
          break;
        default:
          bytes[rng() % std::min<size_t>(8, bytes.size())] = static_cast<char>(rng());
          break;
      }
      if (bytes.empty()) break;
    }
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = OpenBytes(bytes);
    if (!file.ok()) {
      EXPECT_THAT(std::string(file.status().message()), HasSubstr(path_));
      continue;
    }
    ++opened;
    for (const std::string& name : (*file)->TensorNames()) {
      absl::StatusOr<Tensor> t = (*file)->Get(name);
      ASSERT_TRUE(t.ok()) << t.status();
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t->raw_data()) % DTypeSize(t->dtype()), 0u);
      std::string copy(t->nbytes(), '\0');
      if (!copy.empty()) std::memcpy(&copy[0], t->raw_data(), copy.size());
    }
  }
  EXPECT_GT(opened, 0);
}

}  // namespace
}  // namespace jamba::model
