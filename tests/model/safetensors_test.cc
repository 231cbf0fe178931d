// Tests for SafetensorsFile: reading every supported dtype, zero-copy and
// aligned-copy views, and files that are missing or not regular files.
#include "model/safetensors.h"

#include <sys/stat.h>

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
using testing::U16Bytes;
using testing::WithLength;
using SafetensorsTest = testing::SafetensorsFileTest;

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
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      OpenBytes(BuildSafetensors({{"w", "F32", {3}, F32Bytes({1.5f, 2.5f, 3.5f})}}));
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<Tensor> w = (*file)->Get("w");
  ASSERT_TRUE(w.ok()) << w.status();
  file->reset();
  EXPECT_THAT(FloatsOf(*w), ElementsAre(1.5f, 2.5f, 3.5f));
}

// Dropped pages come back from the file with the same bytes; tensors that
// are not views of the file (here: host memory) are left alone.
TEST_F(SafetensorsTest, DroppedPagesReadBackFromTheFile) {
  std::vector<float> values(5000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f - 7.0f;
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      OpenBytes(BuildSafetensors({{"w", "F32", {5000}, F32Bytes(values)}}));
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<Tensor> w = (*file)->Get("w");
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(FloatsOf(*w), values);
  (*file)->DropPages(*w);
  EXPECT_EQ(FloatsOf(*w), values);
  Tensor host = Tensor::Zeros(DType::kF32, {5000});
  std::memcpy(host.raw_data(), values.data(), host.nbytes());
  (*file)->DropPages(host);
  EXPECT_EQ(FloatsOf(host), values);
}

TEST_F(SafetensorsTest, MisalignedDataIsCopiedAligned) {
  for (int shift : {1, 2, 6}) {
    SCOPED_TRACE(shift);
    const std::string bytes = BuildSafetensors({{"f32", "F32", {3}, F32Bytes({1, -2, 3})},
                                                {"bf16", "BF16", {2}, U16Bytes({0x3f80, 0x4000})}},
                                               shift);
    uint64_t header_size = 0;
    std::memcpy(&header_size, bytes.data(), 8);
    EXPECT_NE(header_size % 4, 0u);
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = OpenBytes(bytes);
    ASSERT_TRUE(file.ok()) << file.status();
    absl::StatusOr<Tensor> f32 = (*file)->Get("f32");
    ASSERT_TRUE(f32.ok()) << f32.status();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f32->raw_data()) % alignof(float), 0u);
    EXPECT_EQ(f32->data<float>()[1], -2.0f);
    EXPECT_THAT(FloatsOf(*f32), ElementsAre(1, -2, 3));
    absl::StatusOr<Tensor> bf16 = (*file)->Get("bf16");
    ASSERT_TRUE(bf16.ok()) << bf16.status();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(bf16->raw_data()) % 2, 0u);
    EXPECT_THAT(HalvesOf(*bf16), ElementsAre(0x3f80, 0x4000));
  }
}

TEST_F(SafetensorsTest, EmptyHeaderAndZeroSizeTensors) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = OpenBytes(WithLength(2, "{}"));
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
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("absent.safetensors"));
}

TEST_F(SafetensorsTest, DirectoryIsRejected) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(dir_.path());
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(dir_.path()));
}

TEST_F(SafetensorsTest, FifoIsRejectedWithoutBlocking) {
  const std::string fifo = dir_.File("fifo.safetensors");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(fifo);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(fifo));
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
