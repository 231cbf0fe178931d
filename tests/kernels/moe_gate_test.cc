// MoeGate tests: softmax over all experts, top-k in descending order with
// ties to the lower id, and no renormalisation (Jamba, not Mixtral).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/backend_test_util.h"

namespace jamba::kernels::testing {
namespace {

class MoeGateTest : public BackendTest {
 protected:
  // Runs MoeGate; returns host weights [L,k] and experts [L,k].
  std::pair<Tensor, Tensor> Run(const Tensor& logits, int k) {
    Tensor w = NewDevice(DType::kF32, {logits.dim(0), k});
    Tensor e = NewDevice(DType::kI32, {logits.dim(0), k});
    backend().MoeGate(ToDevice(logits), k, &w, &e);
    return {ToHost(w), ToHost(e)};
  }
};

TEST_P(MoeGateTest, MatchesReference) {
  std::mt19937 rng(61);
  const int64_t L = 9, E = 16;
  const int k = 2;
  const Tensor logits = RandomF32({L, E}, &rng, -4.0f, 4.0f);
  const auto [w, e] = Run(logits, k);
  const std::vector<double> r = ToDoubles(logits);
  std::vector<double> ref_w;
  std::vector<int32_t> ref_e;
  for (int64_t l = 0; l < L; ++l) {
    std::vector<double> p(r.begin() + l * E, r.begin() + (l + 1) * E);
    const double max = *std::max_element(p.begin(), p.end());
    double sum = 0.0;
    for (double& x : p) sum += (x = std::exp(x - max));
    for (double& x : p) x /= sum;
    std::vector<int32_t> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
    for (int j = 0; j < k; ++j) {
      ref_e.push_back(order[j]);
      ref_w.push_back(p[order[j]]);
    }
  }
  ExpectAllClose(w, ref_w, kRtolF32, 1e-7);
  EXPECT_EQ(std::vector<int32_t>(e.data<int32_t>(), e.data<int32_t>() + e.numel()), ref_e);
}

TEST_P(MoeGateTest, NotRenormalisedAndDescending) {
  std::mt19937 rng(62);
  const int64_t L = 20, E = 8;
  const int k = 3;
  const auto [w, e] = Run(RandomF32({L, E}, &rng, -3.0f, 3.0f), k);
  for (int64_t l = 0; l < L; ++l) {
    const float* wl = w.data<float>() + l * k;
    EXPECT_LT(wl[0] + wl[1] + wl[2], 0.999f) << "row " << l;
    EXPECT_GE(wl[0], wl[1]);
    EXPECT_GE(wl[1], wl[2]);
    EXPECT_GT(wl[2], 0.0f);
  }
}

TEST_P(MoeGateTest, TiesGoToLowerExpert) {
  const Tensor logits = F32Tensor({0, 0, 0, 0,  //
                                   1, 3, 3, 0,  //
                                   3, 1, 3, 2,  //
                                   5, 5, 5, 5},
                                  {4, 4});
  const auto [w, e] = Run(logits, 2);
  const std::vector<int32_t> want = {0, 1, 1, 2, 0, 2, 0, 1};
  EXPECT_EQ(std::vector<int32_t>(e.data<int32_t>(), e.data<int32_t>() + 8), want);
  EXPECT_FLOAT_EQ(w.data<float>()[0], 0.25f);
  EXPECT_FLOAT_EQ(w.data<float>()[1], 0.25f);
  EXPECT_FLOAT_EQ(w.data<float>()[2], w.data<float>()[3]);
}

TEST_P(MoeGateTest, AllExpertsSumToOne) {
  std::mt19937 rng(63);
  const auto [w, e] = Run(RandomF32({3, 5}, &rng), 5);
  for (int64_t l = 0; l < 3; ++l) {
    const float* wl = w.data<float>() + l * 5;
    EXPECT_NEAR(wl[0] + wl[1] + wl[2] + wl[3] + wl[4], 1.0f, 1e-6f);
    std::vector<int32_t> ids(e.data<int32_t>() + l * 5, e.data<int32_t>() + l * 5 + 5);
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  }
}

TEST_P(MoeGateTest, TopOne) {
  const auto [w, e] = Run(F32Tensor({0.5f, 2.0f, -1.0f}, {1, 3}), 1);
  EXPECT_EQ(e.data<int32_t>()[0], 1);
  const double p = std::exp(2.0) / (std::exp(0.5) + std::exp(2.0) + std::exp(-1.0));
  EXPECT_NEAR(w.data<float>()[0], p, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Backends, MoeGateTest, ::testing::ValuesIn(TestBackends()), BackendName);

}  // namespace
}  // namespace jamba::kernels::testing
