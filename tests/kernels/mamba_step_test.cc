// MambaStep tests: one decode token for several sequences against a double
// reference of conv step, x_proj, inner RmsNorms, dt_proj and scan step, and
// against the same backend's composed ops (Backend's default MambaStep).
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/backend_test_util.h"

namespace jamba::kernels::testing {
namespace {

constexpr int64_t kS = 3, kR = 6, kN = 16, kK = 4;
constexpr float kEps = 1e-6f;

// Host inputs for MambaStepParams; weights of dtype `w` (F32 or BF16).
MambaStepParams RandomStep(int64_t S, int64_t Di, DType w, bool norms, std::mt19937* rng) {
  auto matrix = [&](Shape shape) {
    return w == DType::kBF16 ? RandomBF16(shape, rng, -0.5f, 0.5f)
                             : RandomF32(shape, rng, -0.5f, 0.5f);
  };
  MambaStepParams p;
  p.x = RandomF32({S, Di}, rng, -2.0f, 2.0f);
  p.z = RandomF32({S, Di}, rng, -3.0f, 3.0f);
  p.conv_weight = RandomF32({Di, kK}, rng);
  p.conv_bias = RandomF32({Di}, rng);
  p.x_proj = matrix({kR + 2 * kN, Di});
  if (norms) {
    p.dt_norm = RandomF32({kR}, rng, 0.5f, 1.5f);
    p.B_norm = RandomF32({kN}, rng, 0.5f, 1.5f);
    p.C_norm = RandomF32({kN}, rng, 0.5f, 1.5f);
  }
  p.norm_eps = kEps;
  p.dt_proj = matrix({Di, kR});
  p.dt_bias = RandomF32({Di}, rng, -3.0f, 1.0f);
  p.A = RandomF32({Di, kN}, rng, -1.0f, 1.5f);
  for (int64_t i = 0; i < p.A.numel(); ++i) p.A.data<float>()[i] = -std::exp(p.A.data<float>()[i]);
  p.D = RandomF32({Di}, rng);
  for (int64_t s = 0; s < S; ++s) {
    p.conv_states.push_back(RandomF32({kK - 1, Di}, rng));
    p.ssm_states.push_back(RandomF32({Di, kN}, rng));
  }
  p.y = Tensor::Zeros(DType::kF32, {S, Di});
  return p;
}

// Double reference of one step; updates the (double) states it is given.
std::vector<double> RefStep(const MambaStepParams& p, std::vector<std::vector<double>>* conv,
                            std::vector<std::vector<double>>* ssm) {
  const int64_t S = p.x.dim(0), Di = p.x.dim(1);
  const std::vector<double> x = ToDoubles(p.x), z = ToDoubles(p.z), w = ToDoubles(p.conv_weight),
                            cb = ToDoubles(p.conv_bias), xp = ToDoubles(p.x_proj),
                            dtp = ToDoubles(p.dt_proj), dtb = ToDoubles(p.dt_bias),
                            A = ToDoubles(p.A), D = ToDoubles(p.D);
  auto silu = [](double v) { return v / (1.0 + std::exp(-v)); };
  std::vector<double> y(static_cast<size_t>(S * Di));
  for (int64_t s = 0; s < S; ++s) {
    std::vector<double>& cs = (*conv)[s];  // [K-1, Di]
    std::vector<double> u(Di);
    for (int64_t d = 0; d < Di; ++d) {
      double c = cb[d] + w[d * kK + kK - 1] * x[s * Di + d];
      for (int64_t k = 0; k + 1 < kK; ++k) c += w[d * kK + k] * cs[k * Di + d];
      for (int64_t k = 0; k + 2 < kK; ++k) cs[k * Di + d] = cs[(k + 1) * Di + d];
      cs[(kK - 2) * Di + d] = x[s * Di + d];
      u[d] = silu(c);
    }
    std::vector<double> dbc(kR + 2 * kN, 0.0);  // [dt_low | B | C]
    for (int64_t j = 0; j < kR + 2 * kN; ++j) {
      for (int64_t d = 0; d < Di; ++d) dbc[j] += xp[j * Di + d] * u[d];
    }
    if (p.dt_norm.defined()) {
      for (const auto& [begin, gain] : {std::pair<int64_t, const Tensor*>{0, &p.dt_norm},
                                        {kR, &p.B_norm},
                                        {kR + kN, &p.C_norm}}) {
        const std::vector<double> g = ToDoubles(*gain);
        double ss = 0.0;
        for (size_t i = 0; i < g.size(); ++i) ss += dbc[begin + i] * dbc[begin + i];
        const double inv = 1.0 / std::sqrt(ss / g.size() + kEps);
        for (size_t i = 0; i < g.size(); ++i) dbc[begin + i] *= g[i] * inv;
      }
    }
    std::vector<double>& h = (*ssm)[s];  // [Di, N]
    for (int64_t d = 0; d < Di; ++d) {
      double v = dtb[d];
      for (int64_t r = 0; r < kR; ++r) v += dtp[d * kR + r] * dbc[r];
      const double dt = v > 20.0 ? v : std::log1p(std::exp(v));
      double acc = D[d] * u[d];
      for (int64_t n = 0; n < kN; ++n) {
        double& hn = h[d * kN + n];
        hn = std::exp(dt * A[d * kN + n]) * hn + dt * dbc[kR + n] * u[d];
        acc += hn * dbc[kR + kN + n];
      }
      y[s * Di + d] = acc * silu(z[s * Di + d]);
    }
  }
  return y;
}

class MambaStepTest : public BackendTest {
 protected:
  // p with every tensor (and state) moved to the backend.
  MambaStepParams ToBackend(const MambaStepParams& h) {
    MambaStepParams p = h;
    for (Tensor* t : {&p.x, &p.z, &p.conv_weight, &p.conv_bias, &p.x_proj, &p.dt_norm, &p.B_norm,
                      &p.C_norm, &p.dt_proj, &p.dt_bias, &p.A, &p.D, &p.y}) {
      if (t->defined()) *t = ToDevice(*t);
    }
    for (Tensor& t : p.conv_states) t = ToDevice(t);
    for (Tensor& t : p.ssm_states) t = ToDevice(t);
    return p;
  }
};

// Two consecutive steps (the second continues the states of the first).
TEST_P(MambaStepTest, MatchesDoubleReference) {
  std::mt19937 rng(11);
  for (const DType w : {DType::kF32, DType::kBF16}) {
    for (const bool norms : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "bf16 " << (w == DType::kBF16) << " norms " << norms);
      const int64_t Di = 40;
      MambaStepParams host = RandomStep(kS, Di, w, norms, &rng);
      std::vector<std::vector<double>> conv, ssm;
      for (int64_t s = 0; s < kS; ++s) {
        conv.push_back(ToDoubles(host.conv_states[s]));
        ssm.push_back(ToDoubles(host.ssm_states[s]));
      }
      const MambaStepParams p = ToBackend(host);
      for (int step = 0; step < 2; ++step) {
        SCOPED_TRACE(::testing::Message() << "step " << step);
        const std::vector<double> ref = RefStep(host, &conv, &ssm);
        ASSERT_TRUE(backend().MambaStep(p).ok());
        // f32 through two matmuls and the norms in series: 1e-4.
        ExpectAllClose(ToHost(p.y), ref, 1e-4, 1e-4);
        for (int64_t s = 0; s < kS; ++s) {
          ExpectAllClose(ToHost(p.conv_states[s]), conv[s], 0.0, 0.0);
          ExpectAllClose(ToHost(p.ssm_states[s]), ssm[s], 1e-4, 1e-4);
        }
      }
    }
  }
}

// A backend's MambaStep equals its own ops composed by Backend::MambaStep,
// bit for bit (the fast CPU fusion reuses the unfused kernels), for Di on
// and off the 8-channel vector width.
TEST_P(MambaStepTest, EqualsComposedOps) {
  std::mt19937 rng(12);
  for (const int64_t Di : {48, 20}) {
    for (const DType w : {DType::kF32, DType::kBF16}) {
      SCOPED_TRACE(::testing::Message() << "Di " << Di << " bf16 " << (w == DType::kBF16));
      const MambaStepParams host = RandomStep(5, Di, w, true, &rng);
      const MambaStepParams fused = ToBackend(host), composed = ToBackend(host);
      for (int step = 0; step < 2; ++step) {
        ASSERT_TRUE(backend().MambaStep(fused).ok());
        ASSERT_TRUE(backend().Backend::MambaStep(composed).ok());
        ExpectAllClose(ToHost(fused.y), ToDoubles(ToHost(composed.y)), 0.0, 0.0);
        for (int64_t s = 0; s < 5; ++s) {
          ExpectAllClose(ToHost(fused.ssm_states[s]), ToDoubles(ToHost(composed.ssm_states[s])),
                         0.0, 0.0);
          ExpectAllClose(ToHost(fused.conv_states[s]), ToDoubles(ToHost(composed.conv_states[s])),
                         0.0, 0.0);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, MambaStepTest, ::testing::ValuesIn(TestBackends()), BackendName);

}  // namespace
}  // namespace jamba::kernels::testing
