#include "kernels/expert_mlp_check.h"

#include "core/check.h"

namespace jamba::kernels {
namespace {

bool IsWeightDType(DType d) {
  return d == DType::kF32 || d == DType::kBF16 || d == DType::kF16 || d == DType::kI8;
}

void CheckExpert(const ExpertMlpWeights& w, int64_t H, const char* op, size_t e) {
  JAMBA_CHECK(w.gate.rank() == 2 && w.gate.dim(1) == H && w.up.shape() == w.gate.shape() &&
              w.down.rank() == 2 && w.down.dim(0) == H && w.down.dim(1) == w.gate.dim(0))
      << op << ": expert " << e << " gate " << w.gate.DebugString() << " up " << w.up.DebugString()
      << " down " << w.down.DebugString() << " (want gate, up [I,H], down [H,I] with H = " << H
      << ")";
  JAMBA_CHECK(IsWeightDType(w.gate.dtype()) && w.up.dtype() == w.gate.dtype() &&
              w.down.dtype() == w.gate.dtype())
      << op << ": expert " << e << " weights must share one of F32/BF16/F16/I8, got "
      << DTypeName(w.gate.dtype()) << "/" << DTypeName(w.up.dtype()) << "/"
      << DTypeName(w.down.dtype());
  const bool int8 = w.gate.dtype() == DType::kI8;
  for (const auto& [scale, rows] :
       {std::pair{&w.gate_scale, w.gate.dim(0)}, std::pair{&w.up_scale, w.gate.dim(0)},
        std::pair{&w.down_scale, H}}) {
    if (int8) {
      JAMBA_CHECK(scale->defined() && scale->dtype() == DType::kF32 &&
                  scale->shape() == Shape{rows})
          << op << ": expert " << e << " I8 weights need f32 scales [" << rows << "], got "
          << scale->DebugString();
      JAMBA_CHECK(scale->device() == w.gate.device())
          << op << ": expert " << e << " scales on another device";
    } else {
      JAMBA_CHECK(!scale->defined()) << op << ": expert " << e << " has scales but "
                                     << DTypeName(w.gate.dtype()) << " weights";
    }
  }
}

}  // namespace

int64_t CheckGroupedExpertMlp(const GroupedExpertMlpParams& p, const char* op) {
  JAMBA_CHECK(p.weights != nullptr) << op << ": no expert weights";
  JAMBA_CHECK(p.x.rank() == 2 && p.x.dtype() == DType::kF32)
      << op << ": x " << p.x.DebugString() << " (want f32 [T,H])";
  const int64_t H = p.x.dim(1);
  JAMBA_CHECK(p.rows.rank() == 1 && p.rows.dtype() == DType::kI32 &&
              p.experts.shape() == p.rows.shape() && p.experts.dtype() == DType::kI32 &&
              (p.y.shape() == Shape{p.rows.dim(0), H}) && p.y.dtype() == DType::kF32)
      << op << ": rows " << p.rows.DebugString() << " experts " << p.experts.DebugString() << " y "
      << p.y.DebugString() << " (want i32 rows and experts [n], f32 y [n,H])";
  for (size_t e = 0; e < p.weights->size(); ++e) {
    const ExpertMlpWeights& w = (*p.weights)[e];
    if (w.gate.defined()) CheckExpert(w, H, op, e);
  }
  return H;
}

}  // namespace jamba::kernels
