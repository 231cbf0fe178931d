// FastGroupedExpertMlp: the routes sorted by expert (stable, so ascending
// route order within an expert), each expert's rows gathered and run through
// its MLP: F32/BF16 weights on FastMatMul, I8 weights on Int8MatMul, which
// reads the int8 weights as stored (no widened copy per call). The
// projections are batch-invariant and SiLU ⊙ up elementwise (FastSiluMul's
// every element takes the same path), so every output row depends only on
// its own input row.
#include <algorithm>
#include <numeric>
#include <vector>

#include "core/check.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu_fast/fast_ops.h"
#include "kernels/cpu_fast/int8_matmul.h"
#include "kernels/expert_mlp_check.h"

namespace jamba::kernels {
namespace {

// out[m, N] = x[m, K] · wᵀ for one projection w [N, K] (I8 with scale [N]).
void Project(CpuIsa isa, const Tensor& x, const Tensor& w, const Tensor& scale, Tensor* out) {
  if (w.dtype() == DType::kI8) {
    Int8MatMul(isa, x.data<float>(), x.dim(0), x.dim(1), w.data<int8_t>(), scale.data<float>(),
               w.dim(0), out->data<float>());
  } else {
    FastMatMul(isa, x, w, nullptr, out);
  }
}

// One expert over its m gathered rows: y[m, H] = down · (silu(gate · x) ⊙ (up · x)).
void ExpertForward(CpuIsa isa, const ExpertMlpWeights& w, const Tensor& x, Tensor* y) {
  const int64_t m = x.dim(0), I = w.gate.dim(0);
  Tensor g = Tensor::Uninitialized(DType::kF32, {m, I});  // gate · x, then the activation a
  Tensor u = Tensor::Uninitialized(DType::kF32, {m, I});  // up · x
  // PyTorch: F.silu(self.gate_proj(x)) * self.up_proj(x)
  if (w.gate.dtype() == DType::kI8 || w.up.dtype() == DType::kI8) {
    Project(isa, x, w.gate, w.gate_scale, &g);
    Project(isa, x, w.up, w.up_scale, &u);
  } else {
    FastMultiMatMul(isa, x, {{&w.gate, nullptr, &g}, {&w.up, nullptr, &u}});
  }
  FastSiluMul(isa, g, u, &g);
  // PyTorch: self.down_proj(a)
  Project(isa, g, w.down, w.down_scale, y);
}

}  // namespace

void FastGroupedExpertMlp(CpuIsa isa, const GroupedExpertMlpParams& p) {
  for (const Tensor* t : {&p.x, &p.rows, &p.experts, &p.y})
    CheckHost(*t, "GroupedExpertMlp", "arg");
  const int64_t H = CheckGroupedExpertMlp(p, "GroupedExpertMlp");
  const int64_t n = p.rows.dim(0), T = p.x.dim(0);
  const int32_t* rows = p.rows.data<int32_t>();        // [n]
  const int32_t* experts = p.experts.data<int32_t>();  // [n]
  const int64_t num_experts = static_cast<int64_t>(p.weights->size());
  for (int64_t r = 0; r < n; ++r) {
    JAMBA_CHECK(rows[r] >= 0 && rows[r] < T)
        << "GroupedExpertMlp: rows[" << r << "] = " << rows[r] << " outside [0, " << T << ")";
    JAMBA_CHECK(experts[r] >= 0 && experts[r] < num_experts &&
                (*p.weights)[experts[r]].gate.defined())
        << "GroupedExpertMlp: experts[" << r << "] = " << experts[r] << " has no weights";
  }
  std::vector<int64_t> order(n);  // routes by expert
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [experts](int64_t a, int64_t b) { return experts[a] < experts[b]; });
  const float* x = p.x.data<float>();  // [T, H]
  float* y = p.y.data<float>();        // [n, H]
  for (int64_t begin = 0; begin < n;) {
    const int32_t e = experts[order[begin]];
    int64_t end = begin;
    while (end < n && experts[order[end]] == e) ++end;
    const ExpertMlpWeights& w = (*p.weights)[e];
    // In weight panels when prepared for FastMatMul, which CheckHost refuses.
    JAMBA_CHECK(w.gate.device() == Device::kCpu)
        << "GroupedExpertMlp: expert " << e << " weights are not in host memory";
    const int64_t m = end - begin;
    Tensor xe = Tensor::Uninitialized(DType::kF32, {m, H});  // x[rows of this expert]
    for (int64_t j = 0; j < m; ++j) {
      std::copy_n(x + rows[order[begin + j]] * H, H, xe.data<float>() + j * H);
    }
    Tensor ye = Tensor::Uninitialized(DType::kF32, {m, H});
    ExpertForward(isa, w, xe, &ye);
    for (int64_t j = 0; j < m; ++j) {
      std::copy_n(ye.data<float>() + j * H, H, y + order[begin + j] * H);
    }
    begin = end;
  }
}

}  // namespace jamba::kernels
