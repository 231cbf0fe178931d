// Tests for SafetensorsFile: reading every supported dtype, zero-copy and
// aligned-copy views, and rejection of every malformed layout with an error
// that names the file and the tensor.
#include "model/safetensors.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/model/safetensors_writer.h"

namespace jamba::model {
namespace {

using testing::BuildSafetensors;
using ::testing::ElementsAre;
using testing::F32Bytes;
using ::testing::HasSubstr;
using testing::Json;
using testing::RawTensor;
using testing::Serialize;
using testing::U16Bytes;
using testing::WithLength;

class SafetensorsTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> OpenBytes(
      const std::string& bytes) {
    testing::WriteFile(path_, bytes);
    return SafetensorsFile::Open(path_);
  }

  // Opening `bytes` fails with `code` and a message naming the file and
  // every string in `parts`.
  void ExpectOpenError(const std::string& bytes, absl::StatusCode code,
                       const std::vector<std::string>& parts) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = OpenBytes(bytes);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), code) << file.status();
    EXPECT_THAT(std::string(file.status().message()), HasSubstr(path_));
    for (const std::string& part : parts) {
      EXPECT_THAT(std::string(file.status().message()), HasSubstr(part));
    }
  }

  // A one-tensor header with the given fields.
  static std::string OneTensor(const Json& entry, size_t data_bytes) {
    return Serialize(Json{{"w", entry}}, std::string(data_bytes, '\0'));
  }

  testing::TempDir dir_;
  const std::string path_ = dir_.File("model.safetensors");
};

std::vector<float> FloatsOf(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  std::memcpy(out.data(), t.raw_data(), t.nbytes());
  return out;
}

std::vector<uint16_t> HalvesOf(const Tensor& t) {
  std::vector<uint16_t> out(static_cast<size_t>(t.numel()));
  std::memcpy(out.data(), t.raw_data(), t.nbytes());
  return out;
}

TEST_F(SafetensorsTest, ReadsEverySupportedDtypeAsViews) {
  const std::string bytes = BuildSafetensors({
      {"a", "F32", {2, 3}, F32Bytes({1, 2, 3, 4, 5, -6.5f})},
      {"b", "BF16", {4}, U16Bytes({0x3f80, 0xc000, 0x0000, 0x7f80})},
      {"c", "F16", {2, 2}, U16Bytes({0x3c00, 0xc000, 0x3800, 0x0001})},
      {"scalar", "F32", {}, F32Bytes({7})},
  });
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = OpenBytes(bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_THAT((*file)->TensorNames(), ElementsAre("a", "b", "c", "scalar"));
  EXPECT_EQ((*file)->path(), path_);

  absl::StatusOr<Tensor> a = (*file)->Get("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->dtype(), DType::kF32);
  EXPECT_EQ(a->shape(), Shape({2, 3}));
  EXPECT_THAT(FloatsOf(*a), ElementsAre(1, 2, 3, 4, 5, -6.5f));
  EXPECT_EQ(a->data<float>()[5], -6.5f);
  EXPECT_EQ(a->raw_data(),
            (*file)->Get("a")->raw_data());  // a view, not a copy

  absl::StatusOr<Tensor> b = (*file)->Get("b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->dtype(), DType::kBF16);
  EXPECT_THAT(HalvesOf(*b), ElementsAre(0x3f80, 0xc000, 0x0000, 0x7f80));

  absl::StatusOr<Tensor> c = (*file)->Get("c");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->dtype(), DType::kF16);
  EXPECT_EQ(c->shape(), Shape({2, 2}));
  EXPECT_THAT(HalvesOf(*c), ElementsAre(0x3c00, 0xc000, 0x3800, 0x0001));

  absl::StatusOr<Tensor> scalar = (*file)->Get("scalar");
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(scalar->rank(), 0);
  EXPECT_THAT(FloatsOf(*scalar), ElementsAre(7));
}

TEST_F(SafetensorsTest, ViewsOutliveTheFile) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = OpenBytes(
      BuildSafetensors({{"w", "F32", {3}, F32Bytes({1.5f, 2.5f, 3.5f})}}));
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<Tensor> w = (*file)->Get("w");
  ASSERT_TRUE(w.ok()) << w.status();
  file->reset();
  EXPECT_THAT(FloatsOf(*w), ElementsAre(1.5f, 2.5f, 3.5f));
}

TEST_F(SafetensorsTest, MisalignedDataIsCopiedAligned) {
  for (int shift : {1, 2, 6}) {
    SCOPED_TRACE(shift);
    const std::string bytes =
        BuildSafetensors({{"f32", "F32", {3}, F32Bytes({1, -2, 3})},
                          {"bf16", "BF16", {2}, U16Bytes({0x3f80, 0x4000})}},
                         shift);
    uint64_t header_size = 0;
    std::memcpy(&header_size, bytes.data(), 8);
    EXPECT_NE(header_size % 4, 0u);
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = OpenBytes(bytes);
    ASSERT_TRUE(file.ok()) << file.status();
    absl::StatusOr<Tensor> f32 = (*file)->Get("f32");
    ASSERT_TRUE(f32.ok()) << f32.status();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f32->raw_data()) % alignof(float),
              0u);
    EXPECT_EQ(f32->data<float>()[1], -2.0f);
    EXPECT_THAT(FloatsOf(*f32), ElementsAre(1, -2, 3));
    absl::StatusOr<Tensor> bf16 = (*file)->Get("bf16");
    ASSERT_TRUE(bf16.ok()) << bf16.status();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(bf16->raw_data()) % 2, 0u);
    EXPECT_THAT(HalvesOf(*bf16), ElementsAre(0x3f80, 0x4000));
  }
}

TEST_F(SafetensorsTest, EmptyHeaderAndZeroSizeTensors) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      OpenBytes(WithLength(2, "{}"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->TensorNames().empty());

  file = OpenBytes(BuildSafetensors({{"a", "F32", {1}, F32Bytes({1})},
                                     {"empty", "F32", {0, 4}, ""},
                                     {"b", "F32", {1}, F32Bytes({2})}}));
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<Tensor> empty = (*file)->Get("empty");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->numel(), 0);
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(dir_.File("absent.safetensors"));
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(file.status().message()),
              HasSubstr("absent.safetensors"));
}

TEST_F(SafetensorsTest, DirectoryIsRejected) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(dir_.path());
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(dir_.path()));
}

TEST_F(SafetensorsTest, RejectsFileShorterThanLengthField) {
  ExpectOpenError("", absl::StatusCode::kInvalidArgument, {"0 bytes"});
  ExpectOpenError("\x02\0\0\0", absl::StatusCode::kInvalidArgument,
                  {"too short"});
}

TEST_F(SafetensorsTest, RejectsHeaderLengthBeyondFile) {
  ExpectOpenError(WithLength(1000, "{}"), absl::StatusCode::kInvalidArgument,
                  {"1000"});
  ExpectOpenError(WithLength(3, "{}"), absl::StatusCode::kInvalidArgument,
                  {"header length 3"});
  const std::string valid =
      BuildSafetensors({{"w", "F32", {2}, F32Bytes({1, 2})}});
  ExpectOpenError(valid.substr(0, 20), absl::StatusCode::kInvalidArgument,
                  {"header length"});
}

TEST_F(SafetensorsTest, RejectsHeaderOver100MiB) {
  ExpectOpenError(WithLength((uint64_t{100} << 20) + 1, "{}"),
                  absl::StatusCode::kInvalidArgument, {"100 MiB"});
  ExpectOpenError(WithLength(UINT64_MAX, "{}"),
                  absl::StatusCode::kInvalidArgument, {"100 MiB"});
}

TEST_F(SafetensorsTest, RejectsMalformedHeaderJson) {
  const std::vector<std::string> headers = {
      "{abc}",         "{\"w\": {}",          "[1, 2]", "\"w\"", "{} x",
      "{\"\xff\": 1}", std::string("{}\0", 3)};
  for (const std::string& header : headers) {
    SCOPED_TRACE(header);
    ExpectOpenError(WithLength(header.size(), header),
                    absl::StatusCode::kInvalidArgument, {"header"});
  }
}

TEST_F(SafetensorsTest, RejectsOffsetsOutOfRange) {
  ExpectOpenError(
      OneTensor({{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}},
                8),
      absl::StatusCode::kInvalidArgument, {"tensor w", "out of range"});
  ExpectOpenError(
      OneTensor({{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {8, 4}}},
                8),
      absl::StatusCode::kInvalidArgument, {"tensor w", "out of range"});
  ExpectOpenError(OneTensor({{"dtype", "F32"},
                             {"shape", {1}},
                             {"data_offsets", {UINT64_MAX - 1, 2}}},
                            8),
                  absl::StatusCode::kInvalidArgument, {"tensor w"});
}

TEST_F(SafetensorsTest, RejectsTruncatedDataSection) {
  const std::string valid =
      BuildSafetensors({{"first", "F32", {2}, F32Bytes({1, 2})},
                        {"last", "F32", {2}, F32Bytes({3, 4})}});
  ExpectOpenError(valid.substr(0, valid.size() - 1),
                  absl::StatusCode::kInvalidArgument,
                  {"tensor last", "out of range"});
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  const Json header = {
      {"a", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}}},
      {"b", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {8, 24}}}}};
  ExpectOpenError(Serialize(header, std::string(24, '\0')),
                  absl::StatusCode::kInvalidArgument,
                  {"tensor b", "overlaps tensor a"});
  const Json nested = {
      {"outer", {{"dtype", "F32"}, {"shape", {8}}, {"data_offsets", {0, 32}}}},
      {"inner", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {28, 32}}}},
      {"zero", {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {4, 4}}}}};
  ExpectOpenError(Serialize(nested, std::string(32, '\0')),
                  absl::StatusCode::kInvalidArgument,
                  {"overlaps tensor outer"});
}

TEST_F(SafetensorsTest, RejectsSizeShapeMismatch) {
  ExpectOpenError(
      OneTensor(
          {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 20}}}, 24),
      absl::StatusCode::kInvalidArgument, {"tensor w", "needs 24"});
  ExpectOpenError(
      OneTensor({{"dtype", "BF16"}, {"shape", {4}}, {"data_offsets", {0, 16}}},
                16),
      absl::StatusCode::kInvalidArgument, {"tensor w", "needs 8"});
}

TEST_F(SafetensorsTest, RejectsUnknownDtype) {
  for (const char* dtype : {"F31", "float32", "f32", ""}) {
    SCOPED_TRACE(dtype);
    ExpectOpenError(
        OneTensor({{"dtype", dtype}, {"shape", {1}}, {"data_offsets", {0, 4}}},
                  4),
        absl::StatusCode::kInvalidArgument,
        {std::string("unknown dtype ") + dtype + " for tensor w in file " +
         path_});
  }
}

TEST_F(SafetensorsTest, UnsupportedDtypeIsUnimplemented) {
  for (const char* dtype : {"F64", "I8", "BOOL", "I32", "F8_E4M3", "U8"}) {
    SCOPED_TRACE(dtype);
    ExpectOpenError(
        OneTensor({{"dtype", dtype}, {"shape", {1}}, {"data_offsets", {0, 1}}},
                  8),
        absl::StatusCode::kUnimplemented,
        {std::string("unsupported dtype ") + dtype + " for tensor w in file " +
         path_});
  }
}

TEST_F(SafetensorsTest, RejectsBadShapes) {
  const std::vector<Json> shapes = {
      Json{-1},
      Json{2.5},
      Json{"4"},
      Json::object(),
      Json{nullptr},
      Json{int64_t{1} << 40, int64_t{1} << 40},  // numel * 4 overflows 64 bits
      Json{UINT64_MAX},
      Json(std::vector<int>(17, 1))};
  for (const Json& shape : shapes) {
    SCOPED_TRACE(shape.dump());
    ExpectOpenError(
        OneTensor(
            {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {0, 4}}}, 4),
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
    ExpectOpenError(OneTensor(entry, 8), absl::StatusCode::kInvalidArgument,
                    {"tensor w"});
  }
  ExpectOpenError(Serialize(Json{{"__metadata__", {{"format", 1}}}}, ""),
                  absl::StatusCode::kInvalidArgument, {"__metadata__"});
}

TEST_F(SafetensorsTest, GetMissingTensorIsNotFound) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      OpenBytes(BuildSafetensors({{"w", "F32", {1}, F32Bytes({1})}}));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_FALSE((*file)->Has("v"));
  EXPECT_EQ((*file)->Find("v"), nullptr);
  absl::StatusOr<Tensor> v = (*file)->Get("v");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("tensor v"));
  EXPECT_THAT(std::string(v.status().message()), HasSubstr(path_));
}

}  // namespace
}  // namespace jamba::model
