// Small helpers shared by the CPU ops: scalar activations, weight-row
// decoding to f32 and the argument checks every op starts with.
// All functions are pure or write only through their output pointers, so
// they are safe to call from pool threads.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/tensor.h"

namespace jamba::kernels {

// silu(v) = v * sigmoid(v).  PyTorch: F.silu(v)
inline float Silu(float v) { return v / (1.0f + std::exp(-v)); }

// softplus with torch's threshold 20.  PyTorch: F.softplus(v)
inline float Softplus(float v) { return v > 20.0f ? v : std::log1p(std::exp(v)); }

// dst[0:n] = f32(src[0:n]) for src of dtype F32, BF16, F16 or I8 (the
// integer values; the caller applies any scale).
void RowToF32(const void* src, DType dtype, int64_t n, float* dst);

// True for F32, BF16 and F16 (the dtypes MatMul takes).
bool IsFloatDType(DType dtype);

// CHECKs that `t` is defined, lives in host memory and is row-major; `op`
// and `name` go into the failure message.
void CheckHost(const Tensor& t, const char* op, const char* name);

}  // namespace jamba::kernels
