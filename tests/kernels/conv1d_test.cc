// CausalConv1d tests: conv over concat(conv_state, x) + SiLU against a double
// reference, including L = 1, L < K-1, L > K, no bias, and chunked calls that
// carry conv_state equalling one call.
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/backend_test_util.h"

namespace jamba::kernels::testing {
namespace {

struct ConvRef {
  std::vector<double> y;      // [L, Di]
  std::vector<double> state;  // [K-1, Di]
};

// xx = concat(state, x) [K-1+L, Di]; y[t,d] = silu(b[d] + sum_k w[d,k]
// xx[t+k,d]); new state = xx[L:].
ConvRef RefConv(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& state) {
  const int64_t L = x.dim(0), Di = x.dim(1), K = w.dim(1);
  std::vector<double> xx = ToDoubles(state);
  const std::vector<double> xv = ToDoubles(x);
  xx.insert(xx.end(), xv.begin(), xv.end());
  const std::vector<double> wv = ToDoubles(w);
  const std::vector<double> bv = bias ? ToDoubles(*bias) : std::vector<double>(Di, 0.0);
  ConvRef r;
  r.y.resize(static_cast<size_t>(L * Di));
  for (int64_t t = 0; t < L; ++t) {
    for (int64_t d = 0; d < Di; ++d) {
      double c = bv[d];
      for (int64_t k = 0; k < K; ++k) c += wv[d * K + k] * xx[(t + k) * Di + d];
      r.y[t * Di + d] = c / (1.0 + std::exp(-c));
    }
  }
  r.state.assign(xx.begin() + L * Di, xx.end());
  return r;
}

class CausalConv1dTest : public BackendTest {
 protected:
  // Runs one call; updates *state (host) and returns y (host).
  Tensor Run(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* state) {
    CausalConv1dParams p;
    p.x = ToDevice(x);
    p.weight = ToDevice(w);
    if (bias != nullptr) p.bias = ToDevice(*bias);
    p.conv_state = ToDevice(*state);
    p.y = NewDevice(DType::kF32, x.shape());
    backend().CausalConv1d(p);
    *state = ToHost(p.conv_state);
    return ToHost(p.y);
  }

  void CheckOneCall(int64_t L, int64_t Di, int64_t K, bool with_bias, uint32_t seed) {
    SCOPED_TRACE(::testing::Message() << "L " << L << " Di " << Di << " K " << K);
    std::mt19937 rng(seed);
    const Tensor x = RandomF32({L, Di}, &rng, -2.0f, 2.0f);
    const Tensor w = RandomF32({Di, K}, &rng);
    const Tensor b = RandomF32({Di}, &rng);
    Tensor state = RandomF32({K - 1, Di}, &rng, -2.0f, 2.0f);
    const ConvRef ref = RefConv(x, w, with_bias ? &b : nullptr, state);
    const Tensor y = Run(x, w, with_bias ? &b : nullptr, &state);
    ExpectAllClose(y, ref.y, kRtolF32, kAtolF32);
    // The new state is copied inputs, so it must match exactly.
    ExpectAllClose(state, ref.state, 0.0, 0.0);
  }
};

TEST_P(CausalConv1dTest, DecodeStep) { CheckOneCall(1, 37, 4, true, 21); }
TEST_P(CausalConv1dTest, ShorterThanState) { CheckOneCall(2, 70, 4, true, 22); }
TEST_P(CausalConv1dTest, EqualToState) { CheckOneCall(3, 19, 4, true, 23); }
TEST_P(CausalConv1dTest, LongerThanKernel) { CheckOneCall(9, 130, 4, true, 24); }
TEST_P(CausalConv1dTest, NoBias) { CheckOneCall(6, 33, 4, false, 25); }
TEST_P(CausalConv1dTest, OtherWidths) {
  CheckOneCall(5, 17, 1, true, 26);  // K = 1: empty state
  CheckOneCall(5, 17, 2, true, 27);
  CheckOneCall(3, 17, 7, true, 28);
}

TEST_P(CausalConv1dTest, ChunkedEqualsOneCall) {
  std::mt19937 rng(29);
  const int64_t L = 10, Di = 45, K = 4;
  const Tensor x = RandomF32({L, Di}, &rng, -2.0f, 2.0f);
  const Tensor w = RandomF32({Di, K}, &rng);
  const Tensor b = RandomF32({Di}, &rng);
  const Tensor state0 = RandomF32({K - 1, Di}, &rng);
  Tensor state_once = state0.Clone();
  const Tensor y_once = Run(x, w, &b, &state_once);
  ExpectAllClose(y_once, RefConv(x, w, &b, state0).y, kRtolF32, kAtolF32);

  Tensor state = state0.Clone();
  std::vector<float> y_chunks;
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 1}, {1, 3}, {3, 7}, {7, 8}, {8, 10}}) {
    const Tensor y = Run(x.Slice(begin, end).Clone(), w, &b, &state);
    y_chunks.insert(y_chunks.end(), y.data<float>(), y.data<float>() + y.numel());
  }
  ExpectAllClose(F32Tensor(y_chunks, {L, Di}), ToDoubles(y_once), kRtolF32, 1e-6);
  ExpectAllClose(state, ToDoubles(state_once), 0.0, 0.0);
}

TEST_P(CausalConv1dTest, OutputMayAliasInput) {
  std::mt19937 rng(30);
  const Tensor x = RandomF32({6, 21}, &rng), w = RandomF32({21, 4}, &rng);
  const Tensor state = RandomF32({3, 21}, &rng);
  const ConvRef ref = RefConv(x, w, nullptr, state);
  CausalConv1dParams p;
  p.x = ToDevice(x);
  p.weight = ToDevice(w);
  p.conv_state = ToDevice(state);
  p.y = p.x;
  backend().CausalConv1d(p);
  ExpectAllClose(ToHost(p.y), ref.y, kRtolF32, kAtolF32);
  ExpectAllClose(ToHost(p.conv_state), ref.state, 0.0, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Backends, CausalConv1dTest, ::testing::ValuesIn(TestBackends()),
                         BackendName);

}  // namespace
}  // namespace jamba::kernels::testing
