// CUDA-only checks beyond the shared op tests, each against the CPU
// reference backend: split-sequence (flash-decoding) attention on long
// contexts, segmented ScatterAddRows with many duplicate rows, bad indices
// reported by Synchronize. Skipped (visibly) when no CUDA device answers.
#include "kernels/cuda/cuda_backend.h"

#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/kernels/backend_test_util.h"

namespace jamba::kernels::testing {
namespace {

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CudaBackendOptions options;
    options.matmul = CudaMatMulMode::kF32;
    absl::StatusOr<std::unique_ptr<CudaBackend>> b = CudaBackend::Create(options);
    if (!b.ok()) GTEST_SKIP() << "no CUDA device: " << b.status();
    cuda_ = std::move(b).value();
  }
  Tensor Up(const Tensor& host) {
    absl::StatusOr<Tensor> t = cuda_->Allocate(host.dtype(), host.shape());
    JAMBA_CHECK(t.ok()) << t.status();
    cuda_->Copy(host, &*t);
    return *t;
  }
  Tensor Down(const Tensor& t) {
    Tensor host = Tensor::Zeros(t.dtype(), t.shape());
    cuda_->Copy(t, &host);
    EXPECT_TRUE(cuda_->Synchronize().ok());
    return host;
  }

  CpuBackend cpu_;
  std::unique_ptr<CudaBackend> cuda_;
};

TEST_F(CudaBackendTest, LongContextAttentionSplitsMatchCpu) {
  std::mt19937 rng(7);
  const int n_heads = 8, n_kv = 2, hd = 128;
  for (const auto& [L, past] : std::vector<std::pair<int64_t, int64_t>>{{1, 4999}, {3, 2000}}) {
    SCOPED_TRACE(::testing::Message() << "L " << L << " past " << past);
    AttentionParams p;
    p.q = RandomF32({L, n_heads * hd}, &rng);
    p.k_cache = RandomF32({past + L, n_kv, hd}, &rng);
    p.v_cache = RandomF32({past + L, n_kv, hd}, &rng);
    p.past = past;
    p.n_heads = n_heads;
    p.n_kv_heads = n_kv;
    p.head_dim = hd;
    p.out = Tensor::Zeros(DType::kF32, p.q.shape());
    cpu_.Attention(p);
    AttentionParams d = p;
    d.q = Up(p.q);
    d.k_cache = Up(p.k_cache);
    d.v_cache = Up(p.v_cache);
    d.out = Up(Tensor::Zeros(DType::kF32, p.q.shape()));
    cuda_->Attention(d);
    ExpectAllClose(Down(d.out), ToDoubles(p.out), 1e-4, 1e-5);
  }
}

TEST_F(CudaBackendTest, ScatterAddRowsWithDuplicatesMatchesCpu) {
  std::mt19937 rng(8);
  const int64_t n = 700, D = 300, R = 50;
  std::vector<int32_t> rows(n);
  std::uniform_int_distribution<int32_t> pick(0, R - 1);
  for (int32_t& r : rows) r = pick(rng);
  const Tensor x = RandomF32({n, D}, &rng), scale = RandomF32({n}, &rng);
  const Tensor ids = I32Tensor(rows, {n});
  Tensor y = RandomF32({R, D}, &rng);
  Tensor yd = Up(y), yd2 = Up(y);
  cpu_.ScatterAddRows(x, ids, scale, &y);
  const Tensor xd = Up(x), idsd = Up(ids), scaled = Up(scale);
  cuda_->ScatterAddRows(xd, idsd, scaled, &yd);
  cuda_->ScatterAddRows(xd, idsd, scaled, &yd2);
  // The CPU's order of additions (equal up to FMA contraction on the host),
  // and bit-identical from run to run.
  const Tensor first = Down(yd);
  ExpectAllClose(first, ToDoubles(y), 1e-6, 1e-6);
  ExpectAllClose(Down(yd2), ToDoubles(first), 0.0, 0.0);
}

TEST_F(CudaBackendTest, BadEmbeddingIdSurfacesAtSynchronize) {
  const Tensor table = Up(Tensor::Zeros(DType::kF32, {4, 8}));
  Tensor y = Up(Tensor::Zeros(DType::kF32, {2, 8}));
  cuda_->Embedding(table, Up(I32Tensor({1, 9}, {2})), &y);
  const absl::Status status = cuda_->Synchronize();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  EXPECT_NE(status.message().find("Embedding"), absl::string_view::npos) << status;
  EXPECT_TRUE(cuda_->Synchronize().ok());  // the error word was reset
}

TEST_F(CudaBackendTest, AllocatorReusesFreedBlocks) {
  const size_t before = cuda_->bytes_in_use();
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<Tensor> t = cuda_->Allocate(DType::kF32, {1024, 1024});
    ASSERT_TRUE(t.ok()) << t.status();
  }
  EXPECT_EQ(cuda_->bytes_in_use(), before);
  EXPECT_EQ(cuda_->Allocate(DType::kF32, {int64_t{1} << 40, 1024}).status().code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace jamba::kernels::testing
