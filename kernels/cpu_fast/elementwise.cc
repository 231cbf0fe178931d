// FastSiluMul: y = silu(gate) ⊙ up with the AVX2 vector SiLU. Memory bound,
// so only large tensors are split across threads.
#include <algorithm>
#include <cstdint>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu_fast/fast_ops.h"
#include "kernels/cpu_fast/vec_math_avx2.h"

namespace jamba::kernels {
namespace {

constexpr int64_t kMinChunk = 1 << 14;

// y[i] = silu(g[i]) * u[i] for i in [begin, end); elements read before written.
JAMBA_AVX2 void SiluMulRange(const float* g, const float* u, float* y, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 s = avx2::Silu(_mm256_loadu_ps(g + i));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
  }
  for (; i < end; ++i) y[i] = Silu(g[i]) * u[i];
}

}  // namespace

void FastSiluMul(CpuIsa isa, const Tensor& gate, const Tensor& up, Tensor* y) {
  if (isa == CpuIsa::kPortable) {
    CpuSiluMul(gate, up, y);
    return;
  }
  CheckHost(gate, "SiluMul", "gate");
  CheckHost(up, "SiluMul", "up");
  CheckHost(*y, "SiluMul", "y");
  JAMBA_CHECK(gate.shape() == up.shape() && y->shape() == gate.shape() &&
              gate.dtype() == DType::kF32 && up.dtype() == DType::kF32 && y->dtype() == DType::kF32)
      << "SiluMul: a " << gate.DebugString() << " b " << up.DebugString() << " y "
      << y->DebugString() << " (want three f32 tensors of one shape)";
  const float* g = gate.data<float>();  // [...]
  const float* u = up.data<float>();    // [...], same shape
  float* yd = y->data<float>();         // [...], same shape
  ThreadPool::Default().ParallelFor(gate.numel(), kMinChunk, [&](int64_t begin, int64_t end) {
    SiluMulRange(g, u, yd, begin, end);
  });
}

}  // namespace jamba::kernels
