// CpuEmbedding: y = table[ids], a plain row lookup decoded to f32 (no
// sqrt(H) scale). Token rows are independent, so threads split the tokens.
#include <cstdint>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {

void CpuEmbedding(const Tensor& table, const Tensor& ids, Tensor* y) {
  CheckHost(table, "Embedding", "table");
  CheckHost(ids, "Embedding", "ids");
  CheckHost(*y, "Embedding", "y");
  JAMBA_CHECK(table.rank() == 2 && ids.rank() == 1 && y->rank() == 2 && y->dim(0) == ids.dim(0) &&
              y->dim(1) == table.dim(1))
      << "Embedding: table " << table.DebugString() << " ids " << ids.DebugString() << " y "
      << y->DebugString() << " (want table [V,H], ids [L], y [L,H])";
  JAMBA_CHECK(IsFloatDType(table.dtype()) && ids.dtype() == DType::kI32 &&
              y->dtype() == DType::kF32)
      << "Embedding: table " << table.DebugString() << " ids " << ids.DebugString() << " y "
      << y->DebugString() << " (want F32/BF16/F16 table, I32 ids, F32 y)";
  const int64_t V = table.dim(0);
  const int64_t H = table.dim(1);
  const int64_t L = ids.dim(0);
  const int32_t* id = ids.data<int32_t>();  // [L]
  for (int64_t l = 0; l < L; ++l) {
    JAMBA_CHECK(id[l] >= 0 && id[l] < V)
        << "Embedding: ids[" << l << "] = " << id[l] << " outside [0, " << V << ")";
  }
  // [V, H] in the table's dtype, one row = row_bytes.
  const char* td = static_cast<const char*>(table.raw_data());
  const size_t row_bytes = static_cast<size_t>(H) * DTypeSize(table.dtype());
  float* yd = y->data<float>();  // [L, H]

  // y[l, :] = f32(table[ids[l], :]).  PyTorch: embed_tokens(ids)
  ThreadPool::Default().ParallelFor(L, 16, [&](int64_t l_begin, int64_t l_end) {
    for (int64_t l = l_begin; l < l_end; ++l) {
      RowToF32(td + id[l] * row_bytes, table.dtype(), H, yd + l * H);
    }
  });
}

}  // namespace jamba::kernels
