// CpuMatMul: y = x · wᵀ (+ bias), the Linear layer. w may be F32, BF16 or
// F16; each block of w rows is decoded to f32 once into a per-thread scratch
// buffer and reused for every row of x. Accumulation is f32 in an order that
// depends only on K, so results do not depend on M or on the thread count.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {
namespace {

// Rows of w decoded and kept in cache at a time: kBlockN * K floats
// (32 KiB for K = 512).
constexpr int64_t kBlockN = 16;

// sum_k a[k] * b[k], k < n, with 8 independent partial sums so the compiler
// can vectorise the loop while the summation order stays fixed.
float Dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[k + j] * b[k + j];
  }
  float tail = 0.0f;
  for (; k < n; ++k) tail += a[k] * b[k];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

// Output columns [n_begin, n_end) of y = x · wᵀ + bias (bias may be null).
void MatMulColumns(const Tensor& x, const Tensor& w, const float* bias, Tensor* y, int64_t n_begin,
                   int64_t n_end) {
  const int64_t M = x.dim(0);
  const int64_t K = x.dim(1);
  const int64_t N = w.dim(0);
  const float* xd = x.data<float>();  // [M, K]
  float* yd = y->data<float>();       // [M, N]
  // [N, K] in w's dtype, one row = row_bytes.
  const char* wd = static_cast<const char*>(w.raw_data());
  const size_t row_bytes = static_cast<size_t>(K) * DTypeSize(w.dtype());
  std::vector<float> scratch;  // [kBlockN, K]: f32 copy of the current w rows
  if (w.dtype() != DType::kF32) scratch.resize(kBlockN * K);

  for (int64_t n0 = n_begin; n0 < n_end; n0 += kBlockN) {
    const int64_t n1 = std::min(n_end, n0 + kBlockN);
    // wb = f32(w[n0:n1, :]).  [n1-n0, K]
    const float* wb = reinterpret_cast<const float*>(wd + n0 * row_bytes);
    if (w.dtype() != DType::kF32) {
      for (int64_t n = n0; n < n1; ++n) {
        RowToF32(wd + n * row_bytes, w.dtype(), K, &scratch[(n - n0) * K]);
      }
      wb = scratch.data();
    }
    // y[m, n] = sum_k x[m, k] * w[n, k] + bias[n]
    // PyTorch: y = F.linear(x, w, bias)
    for (int64_t m = 0; m < M; ++m) {
      const float* xm = xd + m * K;  // [K]
      for (int64_t n = n0; n < n1; ++n) {
        const float dot = Dot(xm, wb + (n - n0) * K, K);
        yd[m * N + n] = bias != nullptr ? dot + bias[n] : dot;
      }
    }
  }
}

}  // namespace

void CpuMatMul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y) {
  CheckHost(x, "MatMul", "x");
  CheckHost(w, "MatMul", "w");
  CheckHost(*y, "MatMul", "y");
  JAMBA_CHECK(x.rank() == 2 && w.rank() == 2 && y->rank() == 2 && x.dim(1) == w.dim(1) &&
              y->dim(0) == x.dim(0) && y->dim(1) == w.dim(0))
      << "MatMul: x " << x.DebugString() << " w " << w.DebugString() << " y " << y->DebugString()
      << " (want x [M,K], w [N,K], y [M,N])";
  JAMBA_CHECK(x.dtype() == DType::kF32 && y->dtype() == DType::kF32 && IsFloatDType(w.dtype()))
      << "MatMul: x " << x.DebugString() << " w " << w.DebugString() << " y " << y->DebugString()
      << " (want f32 x and y; F32, BF16 or F16 w)";
  JAMBA_CHECK(y->raw_data() != x.raw_data()) << "MatMul: y must not alias x";
  const float* b = nullptr;  // [N]
  if (bias != nullptr) {
    CheckHost(*bias, "MatMul", "bias");
    JAMBA_CHECK(bias->dtype() == DType::kF32 && bias->numel() == w.dim(0))
        << "MatMul: bias " << bias->DebugString() << " for w " << w.DebugString();
    b = bias->data<float>();
  }
  // Threads own disjoint ranges of output columns.
  ThreadPool::Default().ParallelFor(w.dim(0), kBlockN, [&](int64_t n_begin, int64_t n_end) {
    MatMulColumns(x, w, b, y, n_begin, n_end);
  });
}

}  // namespace jamba::kernels
