// FastGroupedExpertMlp: the reference grouping (rows by expert, I8 widened
// to f32) over the fast batch-invariant MatMul and SiluMul.
#include "kernels/cpu/ops.h"
#include "kernels/cpu_fast/fast_ops.h"

namespace jamba::kernels {

void FastGroupedExpertMlp(CpuIsa isa, const GroupedExpertMlpParams& p) {
  GroupedExpertMlpByExpert(
      p,
      [isa](const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y) {
        FastMatMul(isa, x, w, bias, y);
      },
      [isa](const Tensor& gate, const Tensor& up, Tensor* y) { FastSiluMul(isa, gate, up, y); });
}

}  // namespace jamba::kernels
