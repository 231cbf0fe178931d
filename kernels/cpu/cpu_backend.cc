// CpuBackend: host allocation (zero-filled, or not for outputs written whole)
// plus one-line dispatch to the free functions of kernels/cpu/ops.h.
#include "kernels/cpu/cpu_backend.h"

#include <cstdint>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {

namespace {

// A host tensor, zero-filled when `zero` (else AllocateUninitializedHostBuffer).
absl::StatusOr<Tensor> AllocateHost(DType dtype, Shape shape, bool zero) {
  const uint64_t max_bytes = std::numeric_limits<int64_t>::max();
  uint64_t bytes = DTypeSize(dtype);
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("Allocate: negative dimension in ", ShapeString(shape)));
    }
    if (d != 0 && bytes > max_bytes / static_cast<uint64_t>(d)) {
      return absl::ResourceExhaustedError(
          absl::StrCat("Allocate: ", ShapeString(shape), " overflows the address space"));
    }
    bytes *= static_cast<uint64_t>(d);
  }
  std::shared_ptr<Buffer> buffer =
      zero ? AllocateHostBuffer(bytes) : AllocateUninitializedHostBuffer(bytes);
  if (buffer == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("Allocate: out of host memory for ",
                                                     DTypeName(dtype), ShapeString(shape), " (",
                                                     bytes, " bytes)"));
  }
  return Tensor(dtype, std::move(shape), std::move(buffer));
}

}  // namespace

absl::StatusOr<Tensor> CpuBackend::Allocate(DType dtype, Shape shape) {
  return AllocateHost(dtype, std::move(shape), /*zero=*/true);
}

absl::StatusOr<Tensor> CpuBackend::AllocateUninitialized(DType dtype, Shape shape) {
  return AllocateHost(dtype, std::move(shape), /*zero=*/false);
}

void CpuBackend::Copy(const Tensor& src, Tensor* dst) { CpuCopy(src, dst); }

void CpuBackend::MatMul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y) {
  CpuMatMul(x, w, bias, y);
}

void CpuBackend::RmsNorm(const Tensor& x, const Tensor& gain, float eps, Tensor* y) {
  CpuRmsNorm(x, gain, eps, y);
}

void CpuBackend::Embedding(const Tensor& table, const Tensor& ids, Tensor* y) {
  CpuEmbedding(table, ids, y);
}

void CpuBackend::Add(const Tensor& a, const Tensor& b, Tensor* y) { CpuAdd(a, b, y); }

void CpuBackend::SiluMul(const Tensor& gate, const Tensor& up, Tensor* y) {
  CpuSiluMul(gate, up, y);
}

void CpuBackend::CausalConv1d(const CausalConv1dParams& p) { CpuCausalConv1d(p); }

void CpuBackend::SelectiveScan(const SelectiveScanParams& p) { CpuSelectiveScan(p); }

void CpuBackend::Attention(const AttentionParams& p) { CpuAttention(p); }

void CpuBackend::MoeGate(const Tensor& logits, int k, Tensor* weights, Tensor* experts) {
  CpuMoeGate(logits, k, weights, experts);
}

void CpuBackend::GatherRows(const Tensor& x, const Tensor& rows, Tensor* y) {
  CpuGatherRows(x, rows, y);
}

void CpuBackend::ScatterAddRows(const Tensor& x, const Tensor& rows, const Tensor& scale,
                                Tensor* y) {
  CpuScatterAddRows(x, rows, scale, y);
}

void CpuBackend::Convert(const Tensor& src, Tensor* dst) { CpuConvert(src, dst); }

void CpuBackend::GroupedExpertMlp(const GroupedExpertMlpParams& p) { CpuGroupedExpertMlp(p); }

absl::Status CpuBackend::Synchronize() { return absl::OkStatus(); }

std::unique_ptr<Backend> CreateCpuBackend() { return std::make_unique<CpuBackend>(); }

}  // namespace jamba::kernels
