// The fast CPU ops: drop-in replacements for the reference free functions of
// kernels/cpu/ops.h with the same contracts, vectorised for the given CPU
// tier (isa.h) and parallelised on ThreadPool::Default(). Ops not listed
// here are fast enough in the reference and FastCpuBackend calls those.
// Like the reference ops, calls must not be nested inside a ParallelFor.
#pragma once

#include "absl/types/span.h"
#include "core/tensor.h"
#include "kernels/cpu_fast/isa.h"
#include "kernels/params.h"

namespace jamba::kernels {

// y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]); x, y, bias f32, w F32/BF16/F16.
// F32 and BF16 w use the tiles of matmul_tiles.h (f32 accumulation; bf16
// weights are widened exactly, or multiplied exactly by vdpbf16ps against a
// hi/lo bf16 split of x); F16 w and the portable tier use CpuMatMul. Every
// output row depends only on its own x row (batch invariant).
void FastMatMul(CpuIsa isa, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y);

// FastMatMul for each output, bit for bit; where all run on the packed GEMM
// (same weight dtype, M >= 8) x is packed once and all their blocks share
// one parallel pass.
void FastMultiMatMul(CpuIsa isa, const Tensor& x, absl::Span<const MatMulOutput> outs);

// See SelectiveScanParams: 8 channels per AVX2 vector, vector exp.
void FastSelectiveScan(CpuIsa isa, const SelectiveScanParams& p);

// See AttentionParams: the reference's maths with 8 keys' scores, the
// softmax and the weighted values in AVX2 vectors (head_dim a multiple of 8;
// others and the portable tier use CpuAttention). p.out may alias p.q.
void FastAttention(CpuIsa isa, const AttentionParams& p);

// See CausalConv1dParams: the reference conv with a vectorised SiLU.
void FastCausalConv1d(CpuIsa isa, const CausalConv1dParams& p);

// See MambaStepParams: two vector passes over d_inner for all sequences at
// once, bit-identical to the unfused fast ops. Returns false, having done
// nothing, for shapes or tiers it does not cover (Di % 8, large d_state or
// d_conv, the portable tier); the caller then composes the ops.
bool FastMambaStep(CpuIsa isa, const MambaStepParams& p);

// y = silu(gate) ⊙ up with a vectorised SiLU; y may alias either input.
void FastSiluMul(CpuIsa isa, const Tensor& gate, const Tensor& up, Tensor* y);

// See GroupedExpertMlpParams: routes grouped by expert; F32/BF16 weights over
// FastMatMul, I8 over Int8MatMul (int8_matmul.h), never widened.
void FastGroupedExpertMlp(CpuIsa isa, const GroupedExpertMlpParams& p);

}  // namespace jamba::kernels
