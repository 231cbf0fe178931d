// RmsNorm tests: y = g ⊙ x / sqrt(mean(x²) + eps) against a double
// reference, including a zero row, a large eps and y aliasing x.
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/backend_test_util.h"

namespace jamba::kernels::testing {
namespace {

std::vector<double> RefRmsNorm(const Tensor& x, const Tensor& gain, double eps) {
  const int64_t M = x.dim(0), D = x.dim(1);
  const std::vector<double> xv = ToDoubles(x), g = ToDoubles(gain);
  std::vector<double> y(xv.size());
  for (int64_t m = 0; m < M; ++m) {
    double sum_sq = 0.0;
    for (int64_t d = 0; d < D; ++d) sum_sq += xv[m * D + d] * xv[m * D + d];
    const double inv = 1.0 / std::sqrt(sum_sq / D + eps);
    for (int64_t d = 0; d < D; ++d) y[m * D + d] = g[d] * xv[m * D + d] * inv;
  }
  return y;
}

class RmsNormTest : public BackendTest {};

TEST_P(RmsNormTest, MatchesReference) {
  std::mt19937 rng(11);
  for (int64_t D : {1, 16, 33, 512}) {
    SCOPED_TRACE(::testing::Message() << "D " << D);
    const Tensor x = RandomF32({7, D}, &rng, -3.0f, 3.0f);
    const Tensor gain = RandomF32({D}, &rng, 0.5f, 1.5f);
    Tensor y = NewDevice(DType::kF32, {7, D});
    backend().RmsNorm(ToDevice(x), ToDevice(gain), 1e-6f, &y);
    ExpectAllClose(ToHost(y), RefRmsNorm(x, gain, 1e-6), kRtolF32, kAtolF32);
  }
}

TEST_P(RmsNormTest, LargeEpsAndZeroRow) {
  std::mt19937 rng(12);
  Tensor x = RandomF32({3, 20}, &rng);
  for (int64_t d = 0; d < 20; ++d) x.data<float>()[20 + d] = 0.0f;  // row 1 is zero -> 0
  const Tensor gain = RandomF32({20}, &rng);
  Tensor y = NewDevice(DType::kF32, {3, 20});
  backend().RmsNorm(ToDevice(x), ToDevice(gain), 0.25f, &y);
  ExpectAllClose(ToHost(y), RefRmsNorm(x, gain, 0.25), kRtolF32, kAtolF32);
}

TEST_P(RmsNormTest, InPlace) {
  std::mt19937 rng(13);
  const Tensor x = RandomF32({4, 40}, &rng);
  const Tensor gain = RandomF32({40}, &rng);
  Tensor xy = ToDevice(x);
  backend().RmsNorm(xy, ToDevice(gain), 1e-6f, &xy);
  ExpectAllClose(ToHost(xy), RefRmsNorm(x, gain, 1e-6), kRtolF32, kAtolF32);
}

INSTANTIATE_TEST_SUITE_P(Backends, RmsNormTest, ::testing::ValuesIn(TestBackends()), BackendName);

}  // namespace
}  // namespace jamba::kernels::testing
