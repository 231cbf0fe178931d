// CpuGroupedExpertMlp: the routed rows grouped by expert (ascending), each
// group gathered and run through the expert's MLP with the MatMul and
// SiluMul ops; I8 weights are first widened to w = scale ⊙ q in f32. Every
// output row depends only on its own input row (MatMul is batch invariant).
#include <algorithm>
#include <map>
#include <vector>

#include "core/check.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"
#include "kernels/expert_mlp_check.h"

namespace jamba::kernels {
namespace {

// w[i,:] = scale[i] * q[i,:] as a host f32 matrix.
Tensor Dequantize(const Tensor& q, const Tensor& scale) {
  const int64_t R = q.dim(0), C = q.dim(1);
  Tensor w = Tensor::Zeros(DType::kF32, {R, C});
  for (int64_t r = 0; r < R; ++r) {
    RowToF32(q.data<int8_t>() + r * C, DType::kI8, C, w.data<float>() + r * C);
    const float s = scale.data<float>()[r];
    for (int64_t c = 0; c < C; ++c) w.data<float>()[r * C + c] *= s;
  }
  return w;
}

}  // namespace

void GroupedExpertMlpByExpert(const GroupedExpertMlpParams& p, const CpuMatMulFn& matmul,
                              const CpuSiluMulFn& silu_mul) {
  for (const Tensor* t : {&p.x, &p.rows, &p.experts, &p.y})
    CheckHost(*t, "GroupedExpertMlp", "arg");
  const int64_t H = CheckGroupedExpertMlp(p, "GroupedExpertMlp");
  const int64_t n = p.rows.dim(0), T = p.x.dim(0);
  const int32_t* rows = p.rows.data<int32_t>();
  const int32_t* experts = p.experts.data<int32_t>();
  std::map<int32_t, std::vector<int64_t>> groups;  // expert -> its routes r, ascending
  for (int64_t r = 0; r < n; ++r) {
    JAMBA_CHECK(rows[r] >= 0 && rows[r] < T)
        << "GroupedExpertMlp: rows[" << r << "] = " << rows[r] << " outside [0, " << T << ")";
    const int32_t e = experts[r];
    JAMBA_CHECK(e >= 0 && e < static_cast<int64_t>(p.weights->size()) &&
                (*p.weights)[e].gate.defined())
        << "GroupedExpertMlp: experts[" << r << "] = " << e << " has no weights";
    groups[e].push_back(r);
  }
  for (const auto& [e, routes] : groups) {
    const ExpertMlpWeights& w = (*p.weights)[e];
    CheckHost(w.gate, "GroupedExpertMlp", "expert weights");
    const bool int8 = IsInt8Expert(w);
    const Tensor gate = int8 ? Dequantize(w.gate, w.gate_scale) : w.gate;  // [I, H]
    const Tensor up = int8 ? Dequantize(w.up, w.up_scale) : w.up;          // [I, H]
    const Tensor down = int8 ? Dequantize(w.down, w.down_scale) : w.down;  // [H, I]
    const int64_t m = static_cast<int64_t>(routes.size()), I = gate.dim(0);
    Tensor xe = Tensor::Zeros(DType::kF32, {m, H});  // x[rows of this expert]
    for (int64_t j = 0; j < m; ++j) {
      std::copy_n(p.x.data<float>() + rows[routes[j]] * H, H, xe.data<float>() + j * H);
    }
    // a = silu(gate · x) ⊙ (up · x).  PyTorch: F.silu(self.gate_proj(x)) * self.up_proj(x)
    Tensor g = Tensor::Zeros(DType::kF32, {m, I}), u = Tensor::Zeros(DType::kF32, {m, I});
    matmul(xe, gate, nullptr, &g);
    matmul(xe, up, nullptr, &u);
    silu_mul(g, u, &g);
    // y = down · a.  PyTorch: self.down_proj(a)
    Tensor ye = Tensor::Zeros(DType::kF32, {m, H});
    matmul(g, down, nullptr, &ye);
    for (int64_t j = 0; j < m; ++j) {
      std::copy_n(ye.data<float>() + j * H, H, p.y.data<float>() + routes[j] * H);
    }
  }
}

void CpuGroupedExpertMlp(const GroupedExpertMlpParams& p) {
  GroupedExpertMlpByExpert(p, CpuMatMul, CpuSiluMul);
}

}  // namespace jamba::kernels
