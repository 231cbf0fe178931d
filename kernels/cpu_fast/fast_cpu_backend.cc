// FastCpuBackend: dispatch to the fast kernels or the reference ops.
#include "kernels/cpu_fast/fast_cpu_backend.h"

#include "absl/strings/str_cat.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu_fast/fast_ops.h"
#include "kernels/cpu_fast/weight_panels.h"

namespace jamba::kernels {

std::string FastCpuBackend::name() const { return absl::StrCat("cpu-fast/", CpuIsaName(isa_)); }

FastCpuBackend::FastCpuBackend(CpuIsa isa) : isa_(isa), allocator_(CreateCpuBackend()) {}

absl::StatusOr<Tensor> FastCpuBackend::Allocate(DType dtype, Shape shape) {
  return allocator_->Allocate(dtype, std::move(shape));
}

absl::StatusOr<Tensor> FastCpuBackend::AllocateUninitialized(DType dtype, Shape shape) {
  return allocator_->AllocateUninitialized(dtype, std::move(shape));
}

void FastCpuBackend::Copy(const Tensor& src, Tensor* dst) { CpuCopy(src, dst); }

void FastCpuBackend::Convert(const Tensor& src, Tensor* dst) { CpuConvert(src, dst); }

absl::StatusOr<Tensor> FastCpuBackend::PrepareMatMulWeight(const Tensor& w) {
  const bool dpbf16 = isa_ == CpuIsa::kAvx512Bf16 && w.dtype() == DType::kBF16;
  if (isa_ == CpuIsa::kPortable || dpbf16 || !FitsWeightPanels(w)) return w;
  return ToWeightPanels(w);
}

void FastCpuBackend::MatMul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y) {
  FastMatMul(isa_, x, w, bias, y);
}

void FastCpuBackend::MultiMatMul(const Tensor& x, absl::Span<const MatMulOutput> outs) {
  FastMultiMatMul(isa_, x, outs);
}

void FastCpuBackend::RmsNorm(const Tensor& x, const Tensor& gain, float eps, Tensor* y) {
  CpuRmsNorm(x, gain, eps, y);
}

void FastCpuBackend::Embedding(const Tensor& table, const Tensor& ids, Tensor* y) {
  CpuEmbedding(table, ids, y);
}

void FastCpuBackend::Add(const Tensor& a, const Tensor& b, Tensor* y) { CpuAdd(a, b, y); }

void FastCpuBackend::SiluMul(const Tensor& gate, const Tensor& up, Tensor* y) {
  FastSiluMul(isa_, gate, up, y);
}

void FastCpuBackend::CausalConv1d(const CausalConv1dParams& p) { FastCausalConv1d(isa_, p); }

void FastCpuBackend::SelectiveScan(const SelectiveScanParams& p) { FastSelectiveScan(isa_, p); }

void FastCpuBackend::Attention(const AttentionParams& p) { FastAttention(isa_, p); }

absl::Status FastCpuBackend::MambaStep(const MambaStepParams& p) {
  if (FastMambaStep(isa_, p)) return absl::OkStatus();
  return Backend::MambaStep(p);
}

void FastCpuBackend::MoeGate(const Tensor& logits, int k, Tensor* weights, Tensor* experts) {
  CpuMoeGate(logits, k, weights, experts);
}

void FastCpuBackend::GatherRows(const Tensor& x, const Tensor& rows, Tensor* y) {
  CpuGatherRows(x, rows, y);
}

void FastCpuBackend::ScatterAddRows(const Tensor& x, const Tensor& rows, const Tensor& scale,
                                    Tensor* y) {
  CpuScatterAddRows(x, rows, scale, y);
}

void FastCpuBackend::GroupedExpertMlp(const GroupedExpertMlpParams& p) {
  FastGroupedExpertMlp(isa_, p);
}

absl::Status FastCpuBackend::Synchronize() { return absl::OkStatus(); }

std::unique_ptr<Backend> CreateFastCpuBackend() {
  return std::make_unique<FastCpuBackend>(DetectCpuIsa());
}

}  // namespace jamba::kernels
