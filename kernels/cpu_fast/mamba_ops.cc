// FastSelectiveScan and FastCausalConv1d: the Mamba ops of kernels/cpu with
// 8 channels per AVX2 vector and vector exp/log (vec_math_avx2.h). Channels
// are independent: threads own disjoint groups of 8 channels; the last
// Di % 8 channels run the scalar reference formulas.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu_fast/fast_ops.h"
#include "kernels/cpu_fast/mamba_avx2.h"
#include "kernels/cpu_fast/vec_math_avx2.h"

namespace jamba::kernels {

namespace {

constexpr int kLockstep = 4;  // states whose exps run interleaved

// States [n, n + kW) of one token, for 8 channels, given A^T, B, C and h^T
// from n on: h = exp(dt * A) * h + (dt * B) * u, then y += h * C in order of
// n. The kW exps run in lockstep (one alone is a chain of ~15 dependent
// instructions, which the out-of-order window cannot overlap far enough).
template <int kW>
JAMBA_AVX2 inline void StateSteps(__m256 dt, __m256 u, const __m256* At, const float* B,
                                  const float* C, __m256* h, __m256* y) {
  __m256 e[kW];
  for (int i = 0; i < kW; ++i) e[i] = _mm256_mul_ps(dt, At[i]);
  avx2::ExpN(e);
  for (int i = 0; i < kW; ++i) {
    const __m256 dB = _mm256_mul_ps(dt, _mm256_set1_ps(B[i]));
    h[i] = _mm256_fmadd_ps(e[i], h[i], _mm256_mul_ps(dB, u));
  }
  for (int i = 0; i < kW; ++i) *y = _mm256_fmadd_ps(h[i], _mm256_set1_ps(C[i]), *y);
}

}  // namespace

// Same maths as CpuSelectiveScan; h^T and A^T are kept as [N][8].
JAMBA_AVX2 void ScanGroup(const SelectiveScanParams& p, int64_t d0) {
  const int64_t L = p.u.dim(0), Di = p.u.dim(1), N = p.A.dim(1);
  const float* A = p.A.data<float>();        // [Di, N]
  const float* B = p.B.data<float>();        // [L, N]
  const float* C = p.C.data<float>();        // [L, N]
  float* state = p.ssm_state.data<float>();  // [Di, N]
  __m256 h[kMaxState], At[kMaxState];
  alignas(32) float tmp[8];
  for (int64_t n = 0; n < N; ++n) {
    for (int j = 0; j < 8; ++j) tmp[j] = A[(d0 + j) * N + n];
    At[n] = _mm256_load_ps(tmp);
    for (int j = 0; j < 8; ++j) tmp[j] = state[(d0 + j) * N + n];
    h[n] = _mm256_load_ps(tmp);
  }
  const __m256 D = _mm256_loadu_ps(p.D.data<float>() + d0);
  for (int64_t t = 0; t < L; ++t) {
    const __m256 u = _mm256_loadu_ps(p.u.data<float>() + t * Di + d0);
    const __m256 z = _mm256_loadu_ps(p.z.data<float>() + t * Di + d0);
    // PyTorch: delta = F.softplus(delta)
    const __m256 dt = avx2::Softplus(_mm256_loadu_ps(p.delta.data<float>() + t * Di + d0));
    __m256 y = _mm256_setzero_ps();
    int64_t n = 0;
    for (; n + kLockstep <= N; n += kLockstep) {
      StateSteps<kLockstep>(dt, u, At + n, B + t * N + n, C + t * N + n, h + n, &y);
    }
    for (; n < N; ++n) StateSteps<1>(dt, u, At + n, B + t * N + n, C + t * N + n, h + n, &y);
    // PyTorch: out = y + u * D;  out = out * F.silu(z)
    y = _mm256_mul_ps(_mm256_fmadd_ps(D, u, y), avx2::Silu(z));
    _mm256_storeu_ps(p.y.data<float>() + t * Di + d0, y);
  }
  for (int64_t n = 0; n < N; ++n) {
    _mm256_store_ps(tmp, h[n]);
    for (int j = 0; j < 8; ++j) state[(d0 + j) * N + n] = tmp[j];
  }
}

namespace {

// One channel d of the scan with the scalar reference formulas.
void ScanChannel(const SelectiveScanParams& p, int64_t d) {
  const int64_t L = p.u.dim(0), Di = p.u.dim(1), N = p.A.dim(1);
  float* h = p.ssm_state.data<float>() + d * N;  // [N]
  const float* A = p.A.data<float>() + d * N;    // [N]
  for (int64_t t = 0; t < L; ++t) {
    const float u = p.u.data<float>()[t * Di + d], z = p.z.data<float>()[t * Di + d];
    const float dt = Softplus(p.delta.data<float>()[t * Di + d]);
    float y = 0.0f;
    for (int64_t n = 0; n < N; ++n) {
      h[n] = std::exp(dt * A[n]) * h[n] + (dt * p.B.data<float>()[t * N + n]) * u;
      y += h[n] * p.C.data<float>()[t * N + n];
    }
    p.y.data<float>()[t * Di + d] = (y + p.D.data<float>()[d] * u) * Silu(z);
  }
}

}  // namespace

JAMBA_AVX2 void ConvGroup(const CausalConv1dParams& p, int64_t d0) {
  const int64_t L = p.x.dim(0), Di = p.x.dim(1), K = p.weight.dim(1);
  const float* w = p.weight.data<float>();    // [Di, K]
  float* state = p.conv_state.data<float>();  // [K-1, Di]
  alignas(32) float tmp[8];
  __m256 wt[kMaxK], win[kMaxK];  // w^T [K][8]; the last K-1 inputs, oldest first
  for (int64_t k = 0; k < K; ++k) {
    for (int j = 0; j < 8; ++j) tmp[j] = w[(d0 + j) * K + k];
    wt[k] = _mm256_load_ps(tmp);
  }
  for (int64_t k = 0; k + 1 < K; ++k) win[k] = _mm256_loadu_ps(state + k * Di + d0);
  const __m256 b =
      p.bias.defined() ? _mm256_loadu_ps(p.bias.data<float>() + d0) : _mm256_setzero_ps();
  for (int64_t t = 0; t < L; ++t) {
    const __m256 xt = _mm256_loadu_ps(p.x.data<float>() + t * Di + d0);
    // c = b + sum_k w[:, k] * xx[t + k];  y = silu(c)
    __m256 c = b;
    for (int64_t k = 0; k + 1 < K; ++k) c = _mm256_fmadd_ps(wt[k], win[k], c);
    c = _mm256_fmadd_ps(wt[K - 1], xt, c);
    _mm256_storeu_ps(p.y.data<float>() + t * Di + d0, avx2::Silu(c));
    for (int64_t k = 0; k + 2 < K; ++k) win[k] = win[k + 1];
    if (K > 1) win[K - 2] = xt;
  }
  for (int64_t k = 0; k + 1 < K; ++k) _mm256_storeu_ps(state + k * Di + d0, win[k]);
}

void CheckScan(const SelectiveScanParams& p) {
  const int64_t L = p.u.dim(0), Di = p.u.dim(1), N = p.A.dim(1);
  const Shape l_di = {L, Di}, l_n = {L, N};
  bool ok = p.A.dim(0) == Di && p.delta.shape() == l_di && p.z.shape() == l_di &&
            p.y.shape() == l_di && p.B.shape() == l_n && p.C.shape() == l_n &&
            p.D.shape() == Shape{Di} && p.ssm_state.shape() == p.A.shape();
  for (const Tensor* t : {&p.u, &p.delta, &p.A, &p.B, &p.C, &p.D, &p.z, &p.ssm_state, &p.y}) {
    CheckHost(*t, "SelectiveScan", "argument");
    ok = ok && t->dtype() == DType::kF32;
  }
  JAMBA_CHECK(ok) << "SelectiveScan: u " << p.u.DebugString() << " A " << p.A.DebugString()
                  << " (want f32 u, delta, z, y [L,Di]; A, ssm_state [Di,N]; B, C [L,N]; D [Di])";
}

void CheckConv(const CausalConv1dParams& p) {
  const int64_t Di = p.x.dim(1), K = p.weight.dim(1);
  bool ok = K >= 1 && p.weight.dim(0) == Di && p.conv_state.rank() == 2 &&
            p.conv_state.dim(0) == K - 1 && p.conv_state.dim(1) == Di &&
            p.y.shape() == p.x.shape() && (!p.bias.defined() || p.bias.shape() == Shape{Di});
  for (const Tensor* t : {&p.x, &p.weight, &p.conv_state, &p.y, &p.bias}) {
    if (t->defined()) CheckHost(*t, "CausalConv1d", "argument");
    ok = ok && (!t->defined() || t->dtype() == DType::kF32);
  }
  JAMBA_CHECK(ok) << "CausalConv1d: x " << p.x.DebugString() << " weight " << p.weight.DebugString()
                  << " conv_state " << p.conv_state.DebugString()
                  << " (want f32 x, y [L,Di], weight [Di,K], bias [Di], conv_state [K-1,Di])";
}

void FastSelectiveScan(CpuIsa isa, const SelectiveScanParams& p) {
  const bool shapes_ok = p.u.defined() && p.A.defined() && p.u.rank() == 2 && p.A.rank() == 2;
  if (isa == CpuIsa::kPortable || !shapes_ok || p.A.dim(1) > kMaxState) {
    CpuSelectiveScan(p);  // also reports bad arguments
    return;
  }
  CheckScan(p);
  const int64_t L = p.u.dim(0), Di = p.u.dim(1), N = p.A.dim(1);
  const int64_t groups = Di / 8;
  const int64_t min_groups = std::max<int64_t>(1, 8192 / std::max<int64_t>(1, L * N));
  ThreadPool::Default().ParallelFor(groups, min_groups, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) ScanGroup(p, g * 8);
  });
  for (int64_t d = groups * 8; d < Di; ++d) ScanChannel(p, d);
}

void FastCausalConv1d(CpuIsa isa, const CausalConv1dParams& p) {
  const bool vector_ok = isa != CpuIsa::kPortable && p.x.defined() && p.weight.defined() &&
                         p.x.rank() == 2 && p.weight.rank() == 2 && p.weight.dim(1) <= kMaxK &&
                         p.x.dim(1) % 8 == 0;
  if (!vector_ok) {
    CpuCausalConv1d(p);
    return;
  }
  CheckConv(p);
  const int64_t L = p.x.dim(0), groups = p.x.dim(1) / 8;
  const int64_t min_groups = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, L));
  ThreadPool::Default().ParallelFor(groups, min_groups, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) ConvGroup(p, g * 8);
  });
}

}  // namespace jamba::kernels
