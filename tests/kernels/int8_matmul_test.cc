// Int8MatMul (the fast CPU backend's int8-weight projection) on each CPU
// tier this machine has: against a double reference for sizes off the
// vector widths and 1, 2, 8 and 33 rows (decode tiles, full row tiles, a
// remainder), and each row bit-identical when computed alone.
#include "kernels/cpu_fast/int8_matmul.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu_fast/isa.h"

namespace jamba::kernels {
namespace {

std::vector<CpuIsa> Tiers() {
  std::vector<CpuIsa> tiers = {CpuIsa::kPortable};
  if (DetectCpuIsa() != CpuIsa::kPortable) tiers.push_back(CpuIsa::kAvx2);
  return tiers;
}

TEST(Int8MatMulTest, MatchesReferenceAndRowsAreIndependent) {
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> xs(-2.0f, 2.0f), scales(1e-3f, 2e-2f);
  std::uniform_int_distribution<int> qs(-127, 127);
  struct Size {
    int64_t K, N;
  };
  // K: one tail only, off 8, on 8, long; N: off every tile width and enough
  // rows for several thread blocks.
  for (const Size s : {Size{5, 3}, Size{37, 23}, Size{64, 16}, Size{301, 200}}) {
    std::vector<int8_t> q(s.N * s.K);  // [N, K]
    std::vector<float> scale(s.N);     // [N]
    for (int8_t& v : q) v = static_cast<int8_t>(qs(rng));
    for (float& v : scale) v = scales(rng);
    for (const int64_t M : {1, 2, 8, 33}) {
      std::vector<float> x(M * s.K);  // [M, K]
      for (float& v : x) v = xs(rng);
      for (const CpuIsa isa : Tiers()) {
        SCOPED_TRACE(::testing::Message()
                     << CpuIsaName(isa) << " K " << s.K << " N " << s.N << " M " << M);
        std::vector<float> y(M * s.N, NAN);  // [M, N]
        Int8MatMul(isa, x.data(), M, s.K, q.data(), scale.data(), s.N, y.data());
        for (int64_t i = 0; i < M; ++i) {
          std::vector<float> alone(s.N, NAN);  // [1, N]
          Int8MatMul(isa, x.data() + i * s.K, 1, s.K, q.data(), scale.data(), s.N, alone.data());
          for (int64_t j = 0; j < s.N; ++j) {
            double want = 0, mag = 0;
            for (int64_t k = 0; k < s.K; ++k) {
              const double t = static_cast<double>(x[i * s.K + k]) * q[j * s.K + k];
              want += t;
              mag += std::abs(t);
            }
            want *= scale[j];
            mag *= scale[j];
            ASSERT_NEAR(y[i * s.N + j], want, 1e-5 * mag + 1e-7) << "y[" << i << ", " << j << "]";
            ASSERT_EQ(alone[j], y[i * s.N + j]) << "row " << i << " column " << j;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace jamba::kernels
