// The CPU ops: one free function per Backend op, each in its own file in
// kernels/cpu/. They are the readable numerical reference that other
// backends are tested against. All tensors must be in host memory; shapes
// and dtypes are JAMBA_CHECKed. Each call may use ThreadPool::Default(), so
// calls must not be nested inside another ParallelFor.
#pragma once

#include <functional>

#include "core/tensor.h"
#include "kernels/params.h"

namespace jamba::kernels {

// dst = src for host tensors of equal dtype and element count.
void CpuCopy(const Tensor& src, Tensor* dst);

// dst = src converted elementwise (equal sizes): F32 to BF16/F16 rounding
// to nearest even, BF16/F16 to F32 exactly, or a copy for equal dtypes.
void CpuConvert(const Tensor& src, Tensor* dst);

// y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]).  x, y, bias: f32; w: F32/BF16/F16.
void CpuMatMul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y);

// y[M,D] = gain ⊙ x / sqrt(mean(x², -1) + eps).  All f32; y may alias x.
void CpuRmsNorm(const Tensor& x, const Tensor& gain, float eps, Tensor* y);

// y[L,H] = table[V,H][ids[L]].  table: F32/BF16/F16, ids: i32, y: f32.
void CpuEmbedding(const Tensor& table, const Tensor& ids, Tensor* y);

// y = a + b, elementwise f32 of equal shape; y may alias a or b.
void CpuAdd(const Tensor& a, const Tensor& b, Tensor* y);

// y = silu(gate) ⊙ up, elementwise f32 of equal shape; y may alias either.
void CpuSiluMul(const Tensor& gate, const Tensor& up, Tensor* y);

// See CausalConv1dParams. p.y may alias p.x.
void CpuCausalConv1d(const CausalConv1dParams& p);

// See SelectiveScanParams. p.y may alias p.u, p.delta or p.z.
void CpuSelectiveScan(const SelectiveScanParams& p);

// See AttentionParams. p.out may alias p.q.
void CpuAttention(const AttentionParams& p);
// CpuAttention's argument checks (JAMBA_CHECK), for other implementations.
void CheckAttention(const AttentionParams& p);

// Softmax over logits[L,E] in f32, then per row the top k probabilities in
// descending order (ties: lower expert id first), not renormalised.
// weights: [L,k] f32, experts: [L,k] i32.
void CpuMoeGate(const Tensor& logits, int k, Tensor* weights, Tensor* experts);

// y[n,D] = x[R,D][rows[n]].  x and y share a dtype; rows: i32 in [0, R).
void CpuGatherRows(const Tensor& x, const Tensor& rows, Tensor* y);

// y[rows[i],:] += scale[i] * x[i,:] for i = 0..n-1 in order.
// x: [n,D] f32, rows: [n] i32, scale: [n] f32, y: [R,D] f32.
void CpuScatterAddRows(const Tensor& x, const Tensor& rows, const Tensor& scale, Tensor* y);

// See GroupedExpertMlpParams: every routed row through its expert's MLP.
void CpuGroupedExpertMlp(const GroupedExpertMlpParams& p);

// The same over any MatMul and SiluMul with the CpuMatMul / CpuSiluMul
// contracts (FastCpuBackend passes its own).
using CpuMatMulFn = std::function<void(const Tensor&, const Tensor&, const Tensor*, Tensor*)>;
using CpuSiluMulFn = std::function<void(const Tensor&, const Tensor&, Tensor*)>;
void GroupedExpertMlpByExpert(const GroupedExpertMlpParams& p, const CpuMatMulFn& matmul,
                              const CpuSiluMulFn& silu_mul);

}  // namespace jamba::kernels
