// Int8MatMul: y = x · (scale ⊙ q)ᵀ for int8 weights with one f32 scale per
// output row (the ExpertsInt8 layout of model/expert_quant.h), computed from
// the int8 weights as stored: no widened copy of q is ever made.
#pragma once

#include <cstdint>

#include "kernels/cpu_fast/isa.h"

namespace jamba::kernels {

// y[M, N] = x[M, K] · qᵀ with y[i, j] = scale[j] * sum_k x[i, k] q[j, k];
// x, y f32 row-major, q[N, K] int8, scale[N] f32. Threads own disjoint
// blocks of q rows; within a block every tile of x rows runs against every
// tile of q rows, so each weight is read from memory once per call (decode:
// a GEMV streaming q once). Every output row depends only on its own x row.
// Must not be called inside a ParallelFor.
void Int8MatMul(CpuIsa isa, const float* x, int64_t M, int64_t K, const int8_t* q,
                const float* scale, int64_t N, float* y);

}  // namespace jamba::kernels
