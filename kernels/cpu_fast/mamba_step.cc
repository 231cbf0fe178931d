// FastMambaStep: Backend::MambaStep for the AVX2 tiers in two passes over
// d_inner, each one ParallelFor over (sequence, group of 8 channels) items:
//   1. conv step + SiLU                                   -> u [S, Di]
//   (x_proj as three FastMatMuls and the reference RmsNorms on [S, R + 2N])
//   2. delta = dt_proj row tile + bias, then softplus, exp(dt*A), the state
//      update, y = h.C + D*u, times silu(z)               -> y [S, Di]
// Each piece is the code the unfused ops run (ConvGroup, Avx2Tile or
// FastMatMul, ScanGroup), so the result is bit-identical to them.
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu_fast/fast_ops.h"
#include "kernels/cpu_fast/mamba_avx2.h"
#include "kernels/cpu_fast/matmul_tiles.h"

namespace jamba::kernels {
namespace {

// Items per thread at least. The conv step as FastCausalConv1d at L = 1;
// the scan step (with its dt_proj tile) is heavier per item: on one thread
// a small model's 64 groups took about 28 us a layer for the scan alone
// (small bf16 decode profile), and split in two the other thread waited
// 7.6% of the samples instead of 9.9%.
constexpr int64_t kMinConvItems = 4096;
constexpr int64_t kMinScanWork = 512;  // items x d_state

bool Covered(CpuIsa isa, const MambaStepParams& p) {
  const bool ranks = p.x.rank() == 2 && p.A.rank() == 2 && p.dt_proj.rank() == 2 &&
                     p.conv_weight.rank() == 2 && p.x_proj.rank() == 2;
  return isa != CpuIsa::kPortable && ranks && p.x.dim(1) % 8 == 0 && p.A.dim(1) <= kMaxState &&
         p.conv_weight.dim(1) <= kMaxK && p.x_proj.dim(0) == p.dt_proj.dim(1) + 2 * p.A.dim(1) &&
         p.conv_states.size() == static_cast<size_t>(p.x.dim(0)) &&
         p.ssm_states.size() == static_cast<size_t>(p.x.dim(0));
}

// delta[d0 .. d0+8) of row x = dt_low[s] with Avx2Tile, as FastMatMul does.
void DeltaGroup(const MambaStepParams& p, const float* x, int64_t d0, float* delta) {
  const int64_t R = p.dt_proj.dim(1);
  const bool bf16 = p.dt_proj.dtype() == DType::kBF16;
  MatMulTile t;
  t.x = x;
  t.ldx = R;
  t.w = static_cast<const char*>(p.dt_proj.raw_data()) + d0 * R * DTypeSize(p.dt_proj.dtype());
  t.ldw = R;
  t.K = R;
  t.y = delta + d0;
  t.ldy = 8;
  t.bias = p.dt_bias.data<float>() + d0;
  Avx2Tile(t, bf16, 1, 8);
}

}  // namespace

bool FastMambaStep(CpuIsa isa, const MambaStepParams& p) {
  if (!Covered(isa, p)) return false;
  const int64_t S = p.x.dim(0), Di = p.x.dim(1), R = p.dt_proj.dim(1), N = p.A.dim(1);
  const int64_t groups = Di / 8;
  // The tile computes delta inline on AVX2 for f32/bf16 dt_proj; otherwise
  // FastMatMul's own path for that tier and dtype does it before pass 2.
  const DType dt_type = p.dt_proj.dtype();
  const bool inline_delta =
      isa == CpuIsa::kAvx2 && (dt_type == DType::kF32 || dt_type == DType::kBF16);
  JAMBA_CHECK(p.dt_bias.dtype() == DType::kF32 && p.dt_bias.numel() == Di && p.dt_proj.dim(0) == Di)
      << "MambaStep: dt_proj " << p.dt_proj.DebugString() << " dt_bias " << p.dt_bias.DebugString()
      << " for Di " << Di;
  CheckHost(p.dt_proj, "MambaStep", "dt_proj");
  CheckHost(p.dt_bias, "MambaStep", "dt_bias");

  Tensor u = Tensor::Zeros(DType::kF32, {S, Di});      // conv output
  Tensor delta = Tensor::Zeros(DType::kF32, {S, Di});  // pre-softplus dt
  Tensor dt_low = Tensor::Zeros(DType::kF32, {S, R});
  Tensor B = Tensor::Zeros(DType::kF32, {S, N});
  Tensor C = Tensor::Zeros(DType::kF32, {S, N});
  std::vector<CausalConv1dParams> convs(S);
  std::vector<SelectiveScanParams> scans(S);
  for (int64_t s = 0; s < S; ++s) {
    CausalConv1dParams& c = convs[s];
    c.x = p.x.Slice(s, s + 1);
    c.weight = p.conv_weight;
    c.bias = p.conv_bias;
    c.conv_state = p.conv_states[s];
    c.y = u.Slice(s, s + 1);
    CheckConv(c);
  }
  ThreadPool& pool = ThreadPool::Default();
  const int64_t items = S * groups;

  // Pass 1: u = silu(conv step), item i = (sequence i / groups, group i % groups).
  pool.ParallelFor(items, kMinConvItems, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) ConvGroup(convs[i / groups], (i % groups) * 8);
  });

  // [dt_low | B | C] = u · x_projᵀ, then the inner RmsNorms.
  FastMatMul(isa, u, p.x_proj.Slice(0, R), nullptr, &dt_low);
  FastMatMul(isa, u, p.x_proj.Slice(R, R + N), nullptr, &B);
  FastMatMul(isa, u, p.x_proj.Slice(R + N, R + 2 * N), nullptr, &C);
  if (p.dt_norm.defined()) {
    for (auto [t, g] : {std::pair<Tensor*, const Tensor*>{&dt_low, &p.dt_norm},
                        {&B, &p.B_norm},
                        {&C, &p.C_norm}}) {
      Tensor normed = Tensor::Zeros(DType::kF32, t->shape());
      CpuRmsNorm(*t, *g, p.norm_eps, &normed);
      *t = normed;
    }
  }
  if (!inline_delta) FastMatMul(isa, dt_low, p.dt_proj, &p.dt_bias, &delta);

  for (int64_t s = 0; s < S; ++s) {
    SelectiveScanParams& q = scans[s];
    q.u = u.Slice(s, s + 1);
    q.delta = delta.Slice(s, s + 1);
    q.A = p.A;
    q.B = B.Slice(s, s + 1);
    q.C = C.Slice(s, s + 1);
    q.D = p.D;
    q.z = p.z.Slice(s, s + 1);
    q.ssm_state = p.ssm_states[s];
    q.y = p.y.Slice(s, s + 1);
    CheckScan(q);
  }

  // Pass 2: delta for the group, then the scan step.
  const int64_t min_items = std::max<int64_t>(1, kMinScanWork / std::max<int64_t>(1, N));
  pool.ParallelFor(items, min_items, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t s = i / groups, d0 = (i % groups) * 8;
      if (inline_delta) {
        DeltaGroup(p, dt_low.data<float>() + s * R, d0, delta.data<float>() + s * Di);
      }
      ScanGroup(scans[s], d0);
    }
  });
  return true;
}

}  // namespace jamba::kernels
