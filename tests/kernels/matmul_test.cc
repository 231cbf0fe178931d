// MatMul tests: y = x · wᵀ (+ bias) against a double reference, for f32,
// bf16 and f16 weights and sizes that are not multiples of 8 or 16.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "kernels/cpu_fast/isa.h"
#include "kernels/cpu_fast/weight_panels.h"
#include "tests/kernels/backend_test_util.h"

namespace jamba::kernels::testing {
namespace {

// y[m, n] = sum_k x[m, k] * w[n, k] (+ b[n]), in double.
std::vector<double> RefMatMul(const Tensor& x, const Tensor& w, const Tensor* bias) {
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
  const std::vector<double> xd = ToDoubles(x), wd = ToDoubles(w);
  const std::vector<double> bd = bias != nullptr ? ToDoubles(*bias) : std::vector<double>();
  std::vector<double> y(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double acc = bias != nullptr ? bd[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) acc += xd[m * K + k] * wd[n * K + k];
      y[m * N + n] = acc;
    }
  }
  return y;
}

class MatMulTest : public BackendTest {
 protected:
  // Runs the backend's MatMul on host inputs and returns y on the host.
  Tensor Run(const Tensor& x, const Tensor& w, const Tensor* bias) {
    const Tensor xd = ToDevice(x), wd = ToDevice(w);
    std::optional<Tensor> bd;
    if (bias != nullptr) bd = ToDevice(*bias);
    Tensor y = NewDevice(DType::kF32, {x.dim(0), w.dim(0)});
    backend().MatMul(xd, wd, bd ? &*bd : nullptr, &y);
    return ToHost(y);
  }
};

TEST_P(MatMulTest, F32OddSizes) {
  std::mt19937 rng(1);
  const std::vector<std::array<int64_t, 3>> sizes = {
      {1, 1, 1}, {3, 5, 7}, {17, 33, 19}, {13, 70, 130}, {2, 129, 257}};
  for (const auto& [M, N, K] : sizes) {
    SCOPED_TRACE(::testing::Message() << "M " << M << " N " << N << " K " << K);
    const Tensor x = RandomF32({M, K}, &rng), w = RandomF32({N, K}, &rng);
    ExpectAllClose(Run(x, w, nullptr), RefMatMul(x, w, nullptr), kRtolF32, kAtolF32);
  }
}

TEST_P(MatMulTest, F32WithBias) {
  std::mt19937 rng(2);
  const Tensor x = RandomF32({9, 45}, &rng), w = RandomF32({23, 45}, &rng);
  const Tensor bias = RandomF32({23}, &rng, -2.0f, 2.0f);
  ExpectAllClose(Run(x, w, &bias), RefMatMul(x, w, &bias), kRtolF32, kAtolF32);
}

TEST_P(MatMulTest, Bf16Weights) {
  std::mt19937 rng(3);
  const Tensor x = RandomF32({7, 100}, &rng), w = RandomBF16({37, 100}, &rng);
  const Tensor bias = RandomF32({37}, &rng);
  const double tol = GetParam().bf16_matmul_tolerance;
  ExpectAllClose(Run(x, w, nullptr), RefMatMul(x, w, nullptr), tol, tol);
  ExpectAllClose(Run(x, w, &bias), RefMatMul(x, w, &bias), tol, tol);
}

// Decode-sized batches (CUDA's one-pass GEMV) with K on and off its
// 16-byte vector width, f32 and bf16 weights, with and without bias.
TEST_P(MatMulTest, DecodeSizedBatches) {
  std::mt19937 rng(6);
  for (const int64_t M : {1, 4, 8}) {
    for (const int64_t K : {512, 1000, 1001}) {
      SCOPED_TRACE(::testing::Message() << "M " << M << " K " << K);
      const Tensor x = RandomF32({M, K}, &rng), wf = RandomF32({37, K}, &rng);
      const Tensor wb = RandomBF16({37, K}, &rng), bias = RandomF32({37}, &rng);
      ExpectAllClose(Run(x, wf, &bias), RefMatMul(x, wf, &bias), 1e-4, 1e-4);
      const double tol = std::max(1e-4, GetParam().bf16_matmul_tolerance);
      ExpectAllClose(Run(x, wb, nullptr), RefMatMul(x, wb, nullptr), tol, tol);
    }
  }
}

// Single rows against few and many output columns: CUDA's GEMV gives a few
// columns a block each and many columns two per warp (the switch is at
// 8 columns per multiprocessor, so 2001 takes the second path on any GPU
// with up to 250 of them); odd counts leave a lone last column.
TEST_P(MatMulTest, SingleRowFewAndManyColumns) {
  std::mt19937 rng(8);
  for (const int64_t N : {1, 16, 2001}) {
    for (const int64_t K : {256, 1001}) {
      SCOPED_TRACE(::testing::Message() << "N " << N << " K " << K);
      const Tensor x = RandomF32({1, K}, &rng), wb = RandomBF16({N, K}, &rng);
      const Tensor bias = RandomF32({N}, &rng);
      const double tol = std::max(1e-4, GetParam().bf16_matmul_tolerance);
      ExpectAllClose(Run(x, wb, &bias), RefMatMul(x, wb, &bias), tol, tol);
    }
  }
}

// One and two rows against column counts that leave the fast CPU GEMV's
// per-thread stripes (8 streams of rows) with and without a short remainder.
TEST_P(MatMulTest, GemvStripesWithRemainders) {
  std::mt19937 rng(9);
  for (const int64_t M : {1, 2}) {
    for (const int64_t N : {8, 9, 63, 1000, 1003}) {
      SCOPED_TRACE(::testing::Message() << "M " << M << " N " << N);
      const Tensor x = RandomF32({M, 96}, &rng), wf = RandomF32({N, 96}, &rng);
      const Tensor wb = RandomBF16({N, 96}, &rng), bias = RandomF32({N}, &rng);
      ExpectAllClose(Run(x, wf, &bias), RefMatMul(x, wf, &bias), 1e-4, 1e-4);
      const double tol = std::max(1e-4, GetParam().bf16_matmul_tolerance);
      ExpectAllClose(Run(x, wb, &bias), RefMatMul(x, wb, &bias), tol, tol);
    }
  }
}

TEST_P(MatMulTest, F16Weights) {
  std::mt19937 rng(4);
  const Tensor x = RandomF32({5, 61}, &rng), w = RandomF16({19, 61}, &rng);
  const Tensor bias = RandomF32({19}, &rng);
  const double tol = GetParam().f16_matmul_tolerance;
  ExpectAllClose(Run(x, w, nullptr), RefMatMul(x, w, nullptr), tol, tol);
  ExpectAllClose(Run(x, w, &bias), RefMatMul(x, w, &bias), tol, tol);
}

// A token's output must not depend on which other tokens share the call (the
// remote-expert path relies on this), so batched rows equal single-row calls.
TEST_P(MatMulTest, RowsIndependentOfBatch) {
  std::mt19937 rng(5);
  const Tensor x = RandomF32({6, 300}, &rng), w = RandomBF16({50, 300}, &rng);
  const std::vector<double> all = ToDoubles(Run(x, w, nullptr));
  // Bit-identical where the backend promises it, else equal up to its
  // rounding (CUDA's bf16 mode rounds x to bf16 for cuBLAS, not for GEMV).
  const double tol =
      GetParam().batch_invariant_matmul ? 0.0 : std::max(1e-4, GetParam().bf16_matmul_tolerance);
  for (int64_t m = 0; m < 6; ++m) {
    const std::vector<double> one = ToDoubles(Run(x.Slice(m, m + 1).Clone(), w, nullptr));
    for (int64_t n = 0; n < 50; ++n) ASSERT_NEAR(one[n], all[m * 50 + n], tol) << m << "," << n;
  }
}

// The same at prefill sizes (the fast CPU backend packs x and w from M = 8
// on) for f32 and bf16 w, K on and off the vector width, with bias: every
// row of the batch equals the single-row (GEMV) call.
TEST_P(MatMulTest, PrefillRowsIndependentOfBatch) {
  std::mt19937 rng(7);
  for (const int64_t K : {300, 1001}) {
    for (const bool bf16 : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "K " << K << " bf16 " << bf16);
      const int64_t M = 37, N = 53;
      const Tensor x = RandomF32({M, K}, &rng);
      const Tensor w = bf16 ? RandomBF16({N, K}, &rng) : RandomF32({N, K}, &rng);
      const Tensor bias = RandomF32({N}, &rng);
      const Tensor y = Run(x, w, &bias);
      ExpectAllClose(y, RefMatMul(x, w, &bias), 1e-4, 1e-4);
      const std::vector<double> all = ToDoubles(y);
      const double tol = GetParam().batch_invariant_matmul
                             ? 0.0
                             : std::max(1e-4, GetParam().bf16_matmul_tolerance);
      for (int64_t m = 0; m < M; m += 5) {
        const std::vector<double> one = ToDoubles(Run(x.Slice(m, m + 1).Clone(), w, &bias));
        for (int64_t n = 0; n < N; ++n) {
          ASSERT_NEAR(one[n], all[m * N + n], tol) << m << "," << n;
        }
      }
    }
  }
}

// The [512 x 512] x [2048 x 512]ᵀ product of a Jamba-tiny-dev FFN: checked
// on a sample of outputs, timed for information.
TEST_P(MatMulTest, LargeProduct) {
  std::mt19937 rng(6);
  const int64_t M = 512, N = 2048, K = 512;
  const Tensor x = RandomF32({M, K}, &rng), w = RandomBF16({N, K}, &rng);
  const Tensor xd = ToDevice(x), wd = ToDevice(w);
  Tensor yd = NewDevice(DType::kF32, {M, N});
  const auto start = std::chrono::steady_clock::now();
  backend().MatMul(xd, wd, nullptr, &yd);
  ASSERT_TRUE(backend().Synchronize().ok());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ info ] %s MatMul 512x512x2048 bf16: %.1f ms, %.2f GFLOP/s\n",
              backend().name().c_str(), seconds * 1e3, 2.0 * M * N * K / seconds * 1e-9);
  const std::vector<double> y = ToDoubles(ToHost(yd));
  const std::vector<double> xv = ToDoubles(x), wv = ToDoubles(w);
  for (int64_t i = 0; i < M * N; i += 997) {
    const int64_t m = i / N, n = i % N;
    double ref = 0.0;
    for (int64_t k = 0; k < K; ++k) ref += xv[m * K + k] * wv[n * K + k];
    const double tol = GetParam().bf16_matmul_tolerance;
    ASSERT_NEAR(y[i], ref, tol + tol * std::abs(ref)) << m << "," << n;
  }
}

// A weight prepared for the backend's MatMul (Backend::PrepareMatMulWeight:
// weight panels on the fast CPU backend, w itself elsewhere) gives the same
// result as the row-major weight, bit for bit, at GEMV, small-batch and
// prefill sizes, shapes that fit the panels or not, f32 and bf16, with and
// without bias.
TEST_P(MatMulTest, PreparedWeightGivesTheSameBits) {
  std::mt19937 rng(10);
  const std::vector<std::array<int64_t, 2>> shapes = {{16, 8},     {48, 96}, {64, 1000},
                                                      {1024, 512}, {33, 96}, {32, 100}};
  for (const auto& [N, K] : shapes) {
    for (const bool bf16 : {false, true}) {
      const Tensor w = bf16 ? RandomBF16({N, K}, &rng) : RandomF32({N, K}, &rng);
      const Tensor bias = RandomF32({N}, &rng);
      const Tensor wd = ToDevice(w), bd = ToDevice(bias);
      absl::StatusOr<Tensor> prepared = backend().PrepareMatMulWeight(wd);
      ASSERT_TRUE(prepared.ok()) << prepared.status();
      EXPECT_EQ(prepared->shape(), w.shape());
      EXPECT_EQ(prepared->dtype(), w.dtype());
      for (const int64_t M : {1, 2, 3, 7, 8, 37}) {
        SCOPED_TRACE(::testing::Message() << "M " << M << " N " << N << " K " << K << " bf16 "
                                          << bf16 << " prepared " << prepared->DebugString());
        const Tensor xd = ToDevice(RandomF32({M, K}, &rng));
        for (const Tensor* b : {static_cast<const Tensor*>(nullptr), &bd}) {
          Tensor y_rows = NewDevice(DType::kF32, {M, N}), y_prep = NewDevice(DType::kF32, {M, N});
          backend().MatMul(xd, wd, b, &y_rows);
          backend().MatMul(xd, *prepared, b, &y_prep);
          const std::vector<double> rows = ToDoubles(ToHost(y_rows));
          const std::vector<double> prep = ToDoubles(ToHost(y_prep));
          for (size_t i = 0; i < rows.size(); ++i) ASSERT_EQ(rows[i], prep[i]) << i;
        }
      }
    }
  }
}

// MultiMatMul gives each output MatMul's bits, with weights prepared or not,
// of one dtype or of several (which the fast backend runs one by one), on
// the GEMV path (M <= 2) and the GEMM path (M >= 8).
TEST_P(MatMulTest, MultiMatMulEqualsOneMatMulPerWeight) {
  std::mt19937 rng(11);
  const int64_t K = 96;
  // 0: one dtype, one weight row-major; 1: two dtypes; 2: one dtype, all prepared.
  for (const int config : {0, 1, 2}) {
    std::vector<Tensor> ws, biases;
    for (const int64_t N : {16, 48, 33, 128}) {
      if (config == 2 && N == 33) continue;
      const bool bf16 = config == 1 && N == 48;
      Tensor w = ToDevice(bf16 ? RandomBF16({N, K}, &rng) : RandomF32({N, K}, &rng));
      if (N != 33) {
        absl::StatusOr<Tensor> prepared = backend().PrepareMatMulWeight(w);
        ASSERT_TRUE(prepared.ok()) << prepared.status();
        w = *std::move(prepared);
      }
      ws.push_back(std::move(w));
      biases.push_back(ToDevice(RandomF32({N}, &rng)));
    }
    for (const int64_t M : {1, 2, 5, 8, 37}) {
      SCOPED_TRACE(::testing::Message() << "M " << M << " config " << config);
      const Tensor xd = ToDevice(RandomF32({M, K}, &rng));
      std::vector<Tensor> together, alone;
      std::vector<MatMulOutput> outs;
      for (size_t i = 0; i < ws.size(); ++i) {
        together.push_back(NewDevice(DType::kF32, {M, ws[i].dim(0)}));
        alone.push_back(NewDevice(DType::kF32, {M, ws[i].dim(0)}));
      }
      for (size_t i = 0; i < ws.size(); ++i) {
        outs.push_back({&ws[i], i % 2 == 1 ? &biases[i] : nullptr, &together[i]});
        backend().MatMul(xd, ws[i], outs.back().bias, &alone[i]);
      }
      backend().MultiMatMul(xd, outs);
      for (size_t i = 0; i < ws.size(); ++i) {
        const std::vector<double> a = ToDoubles(ToHost(alone[i]));
        const std::vector<double> t = ToDoubles(ToHost(together[i]));
        for (size_t j = 0; j < a.size(); ++j)
          ASSERT_EQ(a[j], t[j]) << "output " << i << " at " << j;
      }
    }
  }
}

// The weight-panel layout itself: panels[s][k][j] = w[16s + j][k] for f32,
// w[16s + kBf16Row[j]][k] for bf16, in the weight's own dtype, for the shapes
// that fit it.
TEST(WeightPanelsTest, ElementsLieWhereTheLayoutSays) {
  if (DetectCpuIsa() == CpuIsa::kPortable) GTEST_SKIP() << "weight panels need AVX2";
  const int64_t N = 32, K = 24;
  Tensor w = Tensor::Zeros(DType::kF32, {N, K});
  for (int64_t i = 0; i < N * K; ++i) w.data<float>()[i] = static_cast<float>(i);
  Tensor w_bf16 = Tensor::Zeros(DType::kBF16, {N, K});
  for (int64_t i = 0; i < N * K; ++i) {
    static_cast<uint16_t*>(w_bf16.raw_data())[i] = static_cast<uint16_t>(i);
  }
  absl::StatusOr<Tensor> p = ToWeightPanels(w), p_bf16 = ToWeightPanels(w_bf16);
  ASSERT_TRUE(p.ok() && p_bf16.ok());
  EXPECT_EQ(p->layout(), Layout::kBackendPacked);
  EXPECT_EQ(p_bf16->dtype(), DType::kBF16);
  const float* f = static_cast<const float*>(p->raw_data());
  const uint16_t* h = static_cast<const uint16_t*>(p_bf16->raw_data());
  for (int64_t s = 0; s < N / kPanelRows; ++s) {
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t j = 0; j < kPanelRows; ++j) {
        const int64_t at = (s * K + k) * kPanelRows + j;
        const int64_t from = (kPanelRows * s + j) * K + k;
        const int64_t from_bf16 = (kPanelRows * s + kBf16Row[j]) * K + k;
        ASSERT_EQ(f[at], static_cast<float>(from)) << s << " " << k << " " << j;
        ASSERT_EQ(h[at], static_cast<uint16_t>(from_bf16)) << s << " " << k << " " << j;
      }
    }
  }
  EXPECT_FALSE(FitsWeightPanels(Tensor::Zeros(DType::kF32, {33, 24})));
  EXPECT_FALSE(FitsWeightPanels(Tensor::Zeros(DType::kF32, {32, 20})));
  EXPECT_FALSE(FitsWeightPanels(Tensor::Zeros(DType::kI8, {32, 24})));
  EXPECT_FALSE(FitsWeightPanels(Tensor::Zeros(DType::kF32, {2, 16, 8})));
  EXPECT_FALSE(FitsWeightPanels(*p));  // already packed
}

INSTANTIATE_TEST_SUITE_P(Backends, MatMulTest, ::testing::ValuesIn(TestBackends()), BackendName);

}  // namespace
}  // namespace jamba::kernels::testing
