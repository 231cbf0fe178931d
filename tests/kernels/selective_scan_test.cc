// SelectiveScan tests: the Mamba recurrence with D skip and SiLU gate against
// a double reference (selective_scan_ref semantics), and chunked calls that
// carry ssm_state equalling one call.
#include <array>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/backend_test_util.h"

namespace jamba::kernels::testing {
namespace {

struct ScanInputs {
  Tensor u, delta, A, B, C, D, z, state;  // host, shapes as SelectiveScanParams
};

ScanInputs RandomInputs(int64_t L, int64_t Di, int64_t N, std::mt19937* rng) {
  ScanInputs in;
  in.u = RandomF32({L, Di}, rng, -2.0f, 2.0f);
  in.delta = RandomF32({L, Di}, rng, -4.0f, 3.0f);
  // A few deltas past softplus's threshold of 20, where softplus(v) = v.
  for (int64_t i = 0; i < in.delta.numel(); i += 7) in.delta.data<float>()[i] = 20.5f + i % 3;
  in.A = RandomF32({Di, N}, rng, -1.0f, 1.5f);
  for (int64_t i = 0; i < in.A.numel(); ++i) {
    in.A.data<float>()[i] = -std::exp(in.A.data<float>()[i]);  // A = -exp(A_log)
  }
  in.B = RandomF32({L, N}, rng);
  in.C = RandomF32({L, N}, rng);
  in.D = RandomF32({Di}, rng);
  in.z = RandomF32({L, Di}, rng, -3.0f, 3.0f);
  in.state = RandomF32({Di, N}, rng);
  return in;
}

struct ScanRef {
  std::vector<double> y;      // [L, Di]
  std::vector<double> state;  // [Di, N]
};

ScanRef RefScan(const ScanInputs& in) {
  const int64_t L = in.u.dim(0), Di = in.u.dim(1), N = in.A.dim(1);
  const std::vector<double> u = ToDoubles(in.u), delta = ToDoubles(in.delta), A = ToDoubles(in.A),
                            B = ToDoubles(in.B), C = ToDoubles(in.C), D = ToDoubles(in.D),
                            z = ToDoubles(in.z);
  ScanRef r;
  r.state = ToDoubles(in.state);
  r.y.resize(static_cast<size_t>(L * Di));
  for (int64_t t = 0; t < L; ++t) {
    for (int64_t d = 0; d < Di; ++d) {
      const double v = delta[t * Di + d];
      const double dt = v > 20.0 ? v : std::log1p(std::exp(v));
      double y = 0.0;
      for (int64_t n = 0; n < N; ++n) {
        double& h = r.state[d * N + n];
        h = std::exp(dt * A[d * N + n]) * h + dt * B[t * N + n] * u[t * Di + d];
        y += h * C[t * N + n];
      }
      const double zt = z[t * Di + d];
      r.y[t * Di + d] = (y + D[d] * u[t * Di + d]) * zt / (1.0 + std::exp(-zt));
    }
  }
  return r;
}

class SelectiveScanTest : public BackendTest {
 protected:
  // Runs rows [begin, end) of `in` from `*state` (host, updated); returns y.
  Tensor Run(const ScanInputs& in, int64_t begin, int64_t end, Tensor* state) {
    SelectiveScanParams p;
    p.u = ToDevice(in.u.Slice(begin, end));
    p.delta = ToDevice(in.delta.Slice(begin, end));
    p.A = ToDevice(in.A);
    p.B = ToDevice(in.B.Slice(begin, end));
    p.C = ToDevice(in.C.Slice(begin, end));
    p.D = ToDevice(in.D);
    p.z = ToDevice(in.z.Slice(begin, end));
    p.ssm_state = ToDevice(*state);
    p.y = NewDevice(DType::kF32, {end - begin, in.u.dim(1)});
    backend().SelectiveScan(p);
    *state = ToHost(p.ssm_state);
    return ToHost(p.y);
  }
};

TEST_P(SelectiveScanTest, MatchesReference) {
  // The last two are long enough for the CUDA scan's chunked passes (one
  // with a short last chunk, one with equal chunks).
  const std::vector<std::array<int64_t, 3>> sizes = {
      {1, 5, 3}, {7, 33, 16}, {20, 70, 5}, {300, 70, 16}, {256, 33, 5}};
  for (const auto& [L, Di, N] : sizes) {
    SCOPED_TRACE(::testing::Message() << "L " << L << " Di " << Di << " N " << N);
    std::mt19937 rng(static_cast<uint32_t>(31 + L));
    const ScanInputs in = RandomInputs(L, Di, N, &rng);
    const ScanRef ref = RefScan(in);
    Tensor state = in.state.Clone();
    ExpectAllClose(Run(in, 0, L, &state), ref.y, kRtolF32, kAtolF32);
    ExpectAllClose(state, ref.state, kRtolF32, kAtolF32);
  }
}

TEST_P(SelectiveScanTest, ChunkedEqualsOneShot) {
  std::mt19937 rng(41);
  const int64_t L = 12, Di = 40, N = 16;
  const ScanInputs in = RandomInputs(L, Di, N, &rng);
  Tensor state_once = in.state.Clone();
  const Tensor y_once = Run(in, 0, L, &state_once);
  ExpectAllClose(y_once, RefScan(in).y, kRtolF32, kAtolF32);

  Tensor state = in.state.Clone();
  std::vector<float> y_chunks;
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 5}, {5, 6}, {6, 7}, {7, 12}}) {
    const Tensor y = Run(in, begin, end, &state);
    y_chunks.insert(y_chunks.end(), y.data<float>(), y.data<float>() + y.numel());
  }
  ExpectAllClose(F32Tensor(y_chunks, {L, Di}), ToDoubles(y_once), kRtolF32, 1e-6);
  ExpectAllClose(state, ToDoubles(state_once), kRtolF32, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Backends, SelectiveScanTest, ::testing::ValuesIn(TestBackends()),
                         BackendName);

}  // namespace
}  // namespace jamba::kernels::testing
