// CpuAdd and CpuSiluMul: elementwise f32 ops over tensors of equal shape.
// Each element is read before it is written, so y may alias an input.
#include <cstdint>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {
namespace {

// Elements per thread chunk: these ops are memory bound, so only big
// tensors are worth splitting.
constexpr int64_t kMinChunk = 1 << 14;

void CheckBinary(const char* op, const Tensor& a, const Tensor& b, const Tensor& y) {
  CheckHost(a, op, "a");
  CheckHost(b, op, "b");
  CheckHost(y, op, "y");
  JAMBA_CHECK(a.shape() == b.shape() && y.shape() == a.shape() && a.dtype() == DType::kF32 &&
              b.dtype() == DType::kF32 && y.dtype() == DType::kF32)
      << op << ": a " << a.DebugString() << " b " << b.DebugString() << " y " << y.DebugString()
      << " (want three f32 tensors of one shape)";
}

}  // namespace

void CpuAdd(const Tensor& a, const Tensor& b, Tensor* y) {
  CheckBinary("Add", a, b, *y);
  const float* ad = a.data<float>();  // [...]
  const float* bd = b.data<float>();  // [...], same shape
  float* yd = y->data<float>();       // [...], same shape
  // y = a + b.  PyTorch: hidden_states = residual + hidden_states
  auto add = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) yd[i] = ad[i] + bd[i];
  };
  ThreadPool::Default().ParallelFor(a.numel(), kMinChunk, add);
}

void CpuSiluMul(const Tensor& gate, const Tensor& up, Tensor* y) {
  CheckBinary("SiluMul", gate, up, *y);
  const float* g = gate.data<float>();  // [...]
  const float* u = up.data<float>();    // [...], same shape
  float* yd = y->data<float>();         // [...], same shape
  // y = silu(gate) * up
  // PyTorch: self.act_fn(self.gate_proj(x)) * self.up_proj(x)
  auto silu_mul = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) yd[i] = Silu(g[i]) * u[i];
  };
  ThreadPool::Default().ParallelFor(gate.numel(), kMinChunk, silu_mul);
}

}  // namespace jamba::kernels
