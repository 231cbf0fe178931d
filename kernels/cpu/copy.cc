// CpuCopy: a byte copy between host tensors of equal dtype and size; the
// shapes may differ. The CPU backend's Copy, so host to host only.
#include <cstring>

#include "core/check.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {

void CpuCopy(const Tensor& src, Tensor* dst) {
  CheckHost(src, "Copy", "src");
  CheckHost(*dst, "Copy", "dst");
  JAMBA_CHECK(src.dtype() == dst->dtype() && src.numel() == dst->numel())
      << "Copy: src " << src.DebugString() << " dst " << dst->DebugString();
  // dst[:] = src[:].  PyTorch: dst.copy_(src).  memmove: dst may be src.
  std::memmove(dst->raw_data(), src.raw_data(), src.nbytes());
}

}  // namespace jamba::kernels
