// FastSiluMul: y = silu(gate) ⊙ up with the AVX2 vector SiLU. Memory bound,
// so only large tensors are split across threads. Every element, the last
// few of a range too, goes through the vector SiLU, so its bits do not
// depend on where a range or a thread's chunk begins: a row gets the same
// result alone or in a batch.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu_fast/fast_ops.h"
#include "kernels/cpu_fast/vec_math_avx2.h"

namespace jamba::kernels {
namespace {

constexpr int64_t kMinChunk = 1 << 14;

// y[0, 8) = silu(g[0, 8)) * u[0, 8); the pointers may alias.
JAMBA_AVX2 inline void SiluMul8(const float* g, const float* u, float* y) {
  const __m256 s = avx2::Silu(_mm256_loadu_ps(g));
  _mm256_storeu_ps(y, _mm256_mul_ps(s, _mm256_loadu_ps(u)));
}

// y[i] = silu(g[i]) * u[i] for i in [begin, end); elements read before
// written. The tail runs on zero-padded copies.
JAMBA_AVX2 void SiluMulRange(const float* g, const float* u, float* y, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) SiluMul8(g + i, u + i, y + i);
  if (i == end) return;
  alignas(32) float gt[8] = {}, ut[8] = {}, yt[8];
  const size_t tail = static_cast<size_t>(end - i) * sizeof(float);
  std::memcpy(gt, g + i, tail);
  std::memcpy(ut, u + i, tail);
  SiluMul8(gt, ut, yt);
  std::memcpy(y + i, yt, tail);
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
