// The AVX2 pieces of the fast Mamba ops (mamba_ops.cc), shared with the
// fused decode step (mamba_step.cc). A group is 8 consecutive channels.
#pragma once

#include <cstdint>

#include "kernels/cpu_fast/vec_math_avx2.h"
#include "kernels/params.h"

namespace jamba::kernels {

constexpr int64_t kMaxState = 64;  // d_state the vector scan handles
constexpr int64_t kMaxK = 8;       // d_conv the vector conv handles

// Channels [d0, d0 + 8) of the scan over all L tokens, and their state.
// REQUIRES: CheckScan(p) passed, d0 + 8 <= Di, N <= kMaxState, AVX2 + FMA.
JAMBA_AVX2 void ScanGroup(const SelectiveScanParams& p, int64_t d0);

// Channels [d0, d0 + 8) of the conv + SiLU over all L tokens, and their state.
// REQUIRES: CheckConv(p) passed, d0 + 8 <= Di, K <= kMaxK, AVX2 + FMA.
JAMBA_AVX2 void ConvGroup(const CausalConv1dParams& p, int64_t d0);

// The reference's argument checks (same messages) for the vector paths.
void CheckScan(const SelectiveScanParams& p);
void CheckConv(const CausalConv1dParams& p);

}  // namespace jamba::kernels
