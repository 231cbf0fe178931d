// CpuGatherRows and CpuScatterAddRows: moving token rows to and from expert
// batches. ScatterAddRows adds in index order, so duplicate rows accumulate
// deterministically (the order HF's index_add_ loop over experts gives).
#include <cstdint>
#include <cstring>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {
namespace {

// CHECKs that every rows[i] lies in [0, R).
void CheckRowIds(const char* op, const int32_t* rows, int64_t n, int64_t R) {
  for (int64_t i = 0; i < n; ++i) {
    JAMBA_CHECK(rows[i] >= 0 && rows[i] < R)
        << op << ": rows[" << i << "] = " << rows[i] << " outside [0, " << R << ")";
  }
}

}  // namespace

void CpuGatherRows(const Tensor& x, const Tensor& rows, Tensor* y) {
  CheckHost(x, "GatherRows", "x");
  CheckHost(rows, "GatherRows", "rows");
  CheckHost(*y, "GatherRows", "y");
  const bool ok = x.rank() == 2 && rows.rank() == 1 && rows.dtype() == DType::kI32 &&
                  y->shape() == Shape{rows.dim(0), x.dim(1)} && y->dtype() == x.dtype();
  JAMBA_CHECK(ok) << "GatherRows: x " << x.DebugString() << " rows " << rows.DebugString() << " y "
                  << y->DebugString() << " (want x [R,D], i32 rows [n], y [n,D] of x's dtype)";
  const int64_t n = rows.dim(0);
  const int32_t* r = rows.data<int32_t>();  // [n]
  CheckRowIds("GatherRows", r, n, x.dim(0));
  const size_t row_bytes = static_cast<size_t>(x.dim(1)) * DTypeSize(x.dtype());
  const char* xd = static_cast<const char*>(x.raw_data());  // [R, D]
  char* yd = static_cast<char*>(y->raw_data());             // [n, D]
  // y[i, :] = x[rows[i], :].  PyTorch: y = x[rows]
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(yd + i * row_bytes, xd + r[i] * row_bytes, row_bytes);
  }
}

void CpuScatterAddRows(const Tensor& x, const Tensor& rows, const Tensor& scale, Tensor* y) {
  CheckHost(x, "ScatterAddRows", "x");
  CheckHost(rows, "ScatterAddRows", "rows");
  CheckHost(scale, "ScatterAddRows", "scale");
  CheckHost(*y, "ScatterAddRows", "y");
  const bool ok = x.rank() == 2 && rows.shape() == Shape{x.dim(0)} &&
                  scale.shape() == rows.shape() && y->rank() == 2 && y->dim(1) == x.dim(1);
  JAMBA_CHECK(ok && x.dtype() == DType::kF32 && rows.dtype() == DType::kI32 &&
              scale.dtype() == DType::kF32 && y->dtype() == DType::kF32)
      << "ScatterAddRows: x " << x.DebugString() << " rows " << rows.DebugString() << " scale "
      << scale.DebugString() << " y " << y->DebugString()
      << " (want f32 x [n,D], i32 rows [n], f32 scale [n], f32 y [R,D])";
  const int64_t n = x.dim(0);
  const int64_t D = x.dim(1);
  const int32_t* r = rows.data<int32_t>();  // [n]
  CheckRowIds("ScatterAddRows", r, n, y->dim(0));
  const float* xd = x.data<float>();     // [n, D]
  const float* s = scale.data<float>();  // [n]
  float* yd = y->data<float>();          // [R, D]
  // y[rows[i], :] += scale[i] * x[i, :], i ascending.
  // PyTorch: final_hidden_states.index_add_(0, top_x, current_hidden_states)
  // Threads own disjoint column ranges, so each element sees i in order.
  ThreadPool::Default().ParallelFor(D, 1024, [&](int64_t c_begin, int64_t c_end) {
    for (int64_t i = 0; i < n; ++i) {
      float* yr = yd + r[i] * D;
      const float* xr = xd + i * D;
      for (int64_t c = c_begin; c < c_end; ++c) yr[c] += s[i] * xr[c];
    }
  });
}

}  // namespace jamba::kernels
