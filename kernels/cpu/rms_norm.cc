// CpuRmsNorm: y = gain ⊙ x / sqrt(mean(x², -1) + eps), row by row, as HF's
// JambaRMSNorm computes it in f32 (the gain multiplies after normalising).
#include <cmath>
#include <cstdint>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {

void CpuRmsNorm(const Tensor& x, const Tensor& gain, float eps, Tensor* y) {
  CheckHost(x, "RmsNorm", "x");
  CheckHost(gain, "RmsNorm", "gain");
  CheckHost(*y, "RmsNorm", "y");
  JAMBA_CHECK(x.rank() == 2 && y->shape() == x.shape() && gain.rank() == 1 &&
              gain.dim(0) == x.dim(1))
      << "RmsNorm: x " << x.DebugString() << " gain " << gain.DebugString() << " y "
      << y->DebugString() << " (want x, y [M,D], gain [D])";
  JAMBA_CHECK(x.dtype() == DType::kF32 && gain.dtype() == DType::kF32 && y->dtype() == DType::kF32)
      << "RmsNorm: x " << x.DebugString() << " gain " << gain.DebugString() << " y "
      << y->DebugString() << " (want f32)";
  const int64_t M = x.dim(0);
  const int64_t D = x.dim(1);
  const float* xd = x.data<float>();    // [M, D]
  const float* g = gain.data<float>();  // [D]
  float* yd = y->data<float>();         // [M, D]

  ThreadPool::Default().ParallelFor(M, 16, [&](int64_t m_begin, int64_t m_end) {
    for (int64_t m = m_begin; m < m_end; ++m) {
      const float* xm = xd + m * D;
      float* ym = yd + m * D;
      // variance = mean(x²).  PyTorch: x.pow(2).mean(-1, keepdim=True)
      double sum_sq = 0.0;
      for (int64_t d = 0; d < D; ++d) {
        sum_sq += static_cast<double>(xm[d]) * xm[d];
      }
      const float variance = D > 0 ? static_cast<float>(sum_sq / D) : 0.0f;
      // y = g * (x * rsqrt(variance + eps)).
      // PyTorch: weight * (x * torch.rsqrt(variance + eps)).to(input_dtype)
      const float inv_rms = 1.0f / std::sqrt(variance + eps);
      for (int64_t d = 0; d < D; ++d) ym[d] = g[d] * (xm[d] * inv_rms);
    }
  });
}

}  // namespace jamba::kernels
