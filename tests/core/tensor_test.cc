// Tests of Tensor: allocation, views (Slice, Reshape), Clone, shape helpers
// and the checks that guard them.
#include "core/tensor.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace jamba {
namespace {

TEST(ShapeTest, NumElementsAndString) {
  EXPECT_EQ(NumElements({}), 1);
  EXPECT_EQ(NumElements({0, 5}), 0);
  EXPECT_EQ(NumElements({2, 3, 4}), 24);
  EXPECT_EQ(ShapeString({2, 3}), "[2, 3]");
  EXPECT_EQ(ShapeString({}), "[]");
}

TEST(TensorTest, DefaultIsUndefined) {
  const Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_EQ(t.device(), Device::kCpu);
}

TEST(TensorTest, ZerosIsZeroFilledAndAligned) {
  const Tensor t = Tensor::Zeros(DType::kF32, {3, 5});
  ASSERT_TRUE(t.defined());
  EXPECT_EQ(t.rank(), 2);
  EXPECT_EQ(t.dim(0), 3);
  EXPECT_EQ(t.dim(-1), 5);
  EXPECT_EQ(t.numel(), 15);
  EXPECT_EQ(t.nbytes(), 60u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u);
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.data<float>()[i], 0.0f);
  EXPECT_EQ(t.DebugString(), "F32[3, 5]");
  EXPECT_EQ(Tensor::Zeros(DType::kBF16, {7}).nbytes(), 14u);
}

TEST(TensorTest, UninitializedHasItsShapeAndIsAligned) {
  Tensor t = Tensor::Uninitialized(DType::kI32, {3, 7});
  EXPECT_EQ(t.shape(), (Shape{3, 7}));
  EXPECT_EQ(t.nbytes(), 84u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(i);
  EXPECT_EQ(t.data<int32_t>()[20], 20);
  EXPECT_EQ(Tensor::Uninitialized(DType::kF32, {0, 4}).nbytes(), 0u);
}

TEST(TensorTest, SliceSharesTheBuffer) {
  Tensor t = Tensor::Zeros(DType::kI32, {4, 3});
  for (int i = 0; i < 12; ++i) t.data<int32_t>()[i] = i;
  Tensor s = t.Slice(1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  EXPECT_EQ(s.data<int32_t>()[0], 3);
  s.data<int32_t>()[0] = 100;
  EXPECT_EQ(t.data<int32_t>()[3], 100);
  EXPECT_EQ(t.Slice(4, 4).numel(), 0);
  // A slice of a slice keeps its offset.
  EXPECT_EQ(s.Slice(1, 2).data<int32_t>()[2], 8);
}

TEST(TensorTest, ReshapeAndClone) {
  Tensor t = Tensor::Zeros(DType::kF32, {2, 6});
  t.data<float>()[7] = 2.5f;
  const Tensor r = t.Reshape({3, 2, 2});
  EXPECT_EQ(r.rank(), 3);
  EXPECT_EQ(r.raw_data(), t.raw_data());
  Tensor c = t.Clone();
  EXPECT_NE(c.raw_data(), t.raw_data());
  EXPECT_EQ(c.shape(), t.shape());
  EXPECT_EQ(c.data<float>()[7], 2.5f);
  c.data<float>()[7] = 1.0f;
  EXPECT_EQ(t.data<float>()[7], 2.5f);
}

TEST(TensorTest, WrapExternalKeepsOwnerAlive) {
  auto owner = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4});
  std::weak_ptr<std::vector<float>> weak = owner;
  {
    const Tensor t(DType::kF32, {2, 2}, WrapExternalBuffer(owner->data(), 16, Device::kCpu, owner));
    owner.reset();
    EXPECT_FALSE(weak.expired());
    EXPECT_EQ(t.data<float>()[3], 4.0f);
  }
  EXPECT_TRUE(weak.expired());
}

TEST(TensorTest, LayoutTravelsWithCopiesAndClones) {
  Tensor t = Tensor::Zeros(DType::kF32, {2, 3});
  t.data<float>()[4] = 5.0f;
  EXPECT_EQ(t.layout(), Layout::kRowMajor);
  const Tensor packed = t.WithLayout(Layout::kBackendPacked);
  EXPECT_EQ(packed.layout(), Layout::kBackendPacked);
  EXPECT_EQ(packed.raw_data(), t.raw_data());
  EXPECT_EQ(t.layout(), Layout::kRowMajor);
  const Tensor clone = packed.Clone();
  EXPECT_EQ(clone.layout(), Layout::kBackendPacked);
  EXPECT_EQ(clone.data<float>()[4], 5.0f);
  EXPECT_EQ(packed.DebugString(), "F32[2, 3] packed");
}

// Long-lived buffers: zero-filled, writable to the last byte, 2 MiB aligned
// from 2 MiB on (where huge pages can back them), any size below.
TEST(TensorTest, LongLivedBuffersAreZeroedAndAligned) {
  for (const size_t size : {size_t{100}, (size_t{2} << 20) - 4, (size_t{2} << 20) + 12345}) {
    SCOPED_TRACE(size);
    std::shared_ptr<Buffer> b = AllocateLongLivedHostBuffer(size);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->size(), size);
    EXPECT_EQ(b->device(), Device::kCpu);
    const auto* bytes = static_cast<const unsigned char*>(b->data());
    EXPECT_EQ(std::count(bytes, bytes + size, 0), static_cast<std::ptrdiff_t>(size));
    std::memset(b->data(), 0xab, size);
    EXPECT_EQ(bytes[size - 1], 0xab);
    if (size >= (size_t{2} << 20)) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % (size_t{2} << 20), 0u);
    }
  }
}

TEST(TensorDeathTest, PackedTensorsCannotBeSlicedOrReshaped) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const Tensor t = Tensor::Zeros(DType::kF32, {2, 3}).WithLayout(Layout::kBackendPacked);
  EXPECT_DEATH(t.Slice(0, 1), "slice of a packed tensor F32\\[2, 3\\] packed");
  EXPECT_DEATH(t.Reshape({3, 2}), "reshape of a packed tensor");
}

TEST(TensorDeathTest, ChecksGuardMisuse) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const Tensor t = Tensor::Zeros(DType::kF32, {2, 3});
  EXPECT_DEATH(t.data<int32_t>(), "tensor is F32");
  EXPECT_DEATH(t.Slice(1, 3), "slice \\[1, 3\\) of \\[2, 3\\]");
  EXPECT_DEATH(t.Reshape({4, 2}), "check failed");
  EXPECT_DEATH(t.dim(2), "dim 2 of \\[2, 3\\]");
  EXPECT_DEATH(Tensor(DType::kF32, {5}, AllocateHostBuffer(16)), "exceeds buffer");
}

}  // namespace
}  // namespace jamba
