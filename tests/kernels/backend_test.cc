// CreateBackend (and, in CUDA builds, CudaDeviceCount) tests, and death
// tests that the CPU ops reject bad shapes with a message naming the op.
#include "kernels/backend.h"

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/kernels/backend_test_util.h"

#if defined(JAMBA_WITH_CUDA)
#include "kernels/cuda/cuda_device.h"
#endif

namespace jamba::kernels {
namespace {

TEST(CreateBackendTest, Cpu) {
  absl::StatusOr<std::unique_ptr<Backend>> b = CreateBackend(BackendKind::kCpu);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->device(), Device::kCpu);
  EXPECT_EQ((*b)->name().rfind("cpu-fast/", 0), 0u) << (*b)->name();
  EXPECT_TRUE((*b)->Synchronize().ok());
}

TEST(CreateBackendTest, CpuReference) {
  absl::StatusOr<std::unique_ptr<Backend>> b = CreateBackend(BackendKind::kCpuReference);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->name(), "cpu");
}

// The number of CUDA devices this process sees (0 in builds without CUDA).
int DeviceCount() {
#if defined(JAMBA_WITH_CUDA)
  return CudaDeviceCount(nullptr);
#else
  return 0;
#endif
}

TEST(CreateBackendTest, AutoAlwaysGivesABackend) {
  absl::StatusOr<std::unique_ptr<Backend>> b = CreateBackend(BackendKind::kAuto);
  ASSERT_TRUE(b.ok()) << b.status();
  // CUDA when a device answers, else the CPU.
  EXPECT_EQ((*b)->device(), DeviceCount() > 0 ? Device::kCuda : Device::kCpu);
}

TEST(CreateBackendTest, CudaNeedsADevice) {
  absl::StatusOr<std::unique_ptr<Backend>> b = CreateBackend(BackendKind::kCuda);
  if (DeviceCount() > 0) {
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ((*b)->device(), Device::kCuda);
    EXPECT_TRUE((*b)->Synchronize().ok());
    return;
  }
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
#if defined(JAMBA_WITH_CUDA)
  // The message names the runtime's error.
  const std::string message(b.status().message());
  EXPECT_NE(message.find("cudaGetDeviceCount"), std::string::npos) << message;
#else
  EXPECT_EQ(b.status().message(), "this build has no CUDA backend (configure with nvcc available)");
#endif
}

#if defined(JAMBA_WITH_CUDA)
TEST(CudaDeviceCountTest, ZeroComesWithAnError) {
  std::string error;
  const int count = CudaDeviceCount(&error);
  EXPECT_GE(count, 0);
  if (count == 0) {
    EXPECT_EQ(error.rfind("cuda", 0), 0u) << error;
  }
}
#endif

TEST(CpuBackendDeathTest, MatMulShapeMismatchNamesTheOp) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  CpuBackend cpu;
  const Tensor x = Tensor::Zeros(DType::kF32, {2, 3});
  const Tensor w = Tensor::Zeros(DType::kF32, {4, 5});
  Tensor y = Tensor::Zeros(DType::kF32, {2, 4});
  EXPECT_DEATH(cpu.MatMul(x, w, nullptr, &y), "MatMul: x F32\\[2, 3\\] w F32\\[4, 5\\]");
}

// A weight another backend laid out for its own MatMul is refused by name,
// not read as if it were row-major.
TEST(CpuBackendDeathTest, PackedWeightIsRefused) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  CpuBackend cpu;
  const Tensor x = Tensor::Zeros(DType::kF32, {2, 8});
  const Tensor w = Tensor::Zeros(DType::kF32, {16, 8}).WithLayout(Layout::kBackendPacked);
  Tensor y = Tensor::Zeros(DType::kF32, {2, 16});
  EXPECT_DEATH(cpu.MatMul(x, w, nullptr, &y),
               "MatMul: w F32\\[16, 8\\] packed is laid out for another backend's MatMul");
  const Tensor ids = testing::I32Tensor({1}, {1});
  Tensor row = Tensor::Zeros(DType::kF32, {1, 8});
  EXPECT_DEATH(cpu.Embedding(w, ids, &row), "Embedding: .* packed is laid out");
}

TEST(CpuBackendDeathTest, EmbeddingIdOutOfRange) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  CpuBackend cpu;
  const Tensor table = Tensor::Zeros(DType::kBF16, {4, 2});
  const Tensor ids = testing::I32Tensor({1, 4}, {2});
  Tensor y = Tensor::Zeros(DType::kF32, {2, 2});
  EXPECT_DEATH(cpu.Embedding(table, ids, &y), "Embedding: ids\\[1\\] = 4 outside \\[0, 4\\)");
}

TEST(CpuBackendDeathTest, AttentionHeadsMustGroup) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  CpuBackend cpu;
  AttentionParams p;
  p.q = Tensor::Zeros(DType::kF32, {1, 6});
  p.k_cache = Tensor::Zeros(DType::kF32, {1, 2, 2});
  p.v_cache = p.k_cache;
  p.out = Tensor::Zeros(DType::kF32, {1, 6});
  p.n_heads = 3;
  p.n_kv_heads = 2;
  p.head_dim = 2;
  EXPECT_DEATH(cpu.Attention(p), "Attention: n_heads 3 n_kv_heads 2");
}

TEST(CpuBackendDeathTest, ConvStateShape) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  CpuBackend cpu;
  CausalConv1dParams p;
  p.x = Tensor::Zeros(DType::kF32, {2, 8});
  p.weight = Tensor::Zeros(DType::kF32, {8, 4});
  p.conv_state = Tensor::Zeros(DType::kF32, {4, 8});  // should be [3, 8]
  p.y = Tensor::Zeros(DType::kF32, {2, 8});
  EXPECT_DEATH(cpu.CausalConv1d(p), "CausalConv1d: .*conv_state F32\\[4, 8\\]");
}

}  // namespace
}  // namespace jamba::kernels
