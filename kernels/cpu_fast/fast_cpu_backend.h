// FastCpuBackend: the default CPU backend. MatMul, SelectiveScan,
// CausalConv1d, MambaStep and SiluMul run the vectorised kernels of
// fast_ops.h for the best CPU tier found at run time (isa.h); every other op
// calls the reference free functions of kernels/cpu/ops.h, which stay the
// numerical truth it is tested against. PrepareMatMulWeight keeps weights in
// weight panels (weight_panels.h), which FastMatMul reads faster and with the
// same results. Like every Backend, an instance is used by one thread at a
// time; ops parallelise internally on ThreadPool::Default().
#pragma once

#include <memory>
#include <string>

#include "kernels/backend.h"
#include "kernels/cpu_fast/isa.h"

namespace jamba::kernels {

class FastCpuBackend final : public Backend {
 public:
  explicit FastCpuBackend(CpuIsa isa);

  CpuIsa isa() const { return isa_; }
  Device device() const override { return Device::kCpu; }
  std::string name() const override;

  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) override;
  absl::StatusOr<Tensor> AllocateUninitialized(DType dtype, Shape shape) override;
  void Copy(const Tensor& src, Tensor* dst) override;
  void Convert(const Tensor& src, Tensor* dst) override;

  // Weight panels (weight_panels.h) for F32/BF16 w that fit them, on every tier
  // but the portable one and AVX512_BF16's bf16 weights (its vdpbf16ps tile
  // reads rows); w itself otherwise.
  absl::StatusOr<Tensor> PrepareMatMulWeight(const Tensor& w) override;
  void MatMul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y) override;
  void MultiMatMul(const Tensor& x, absl::Span<const MatMulOutput> outs) override;
  void RmsNorm(const Tensor& x, const Tensor& gain, float eps, Tensor* y) override;
  void Embedding(const Tensor& table, const Tensor& ids, Tensor* y) override;
  void Add(const Tensor& a, const Tensor& b, Tensor* y) override;
  void SiluMul(const Tensor& gate, const Tensor& up, Tensor* y) override;

  void CausalConv1d(const CausalConv1dParams& p) override;
  void SelectiveScan(const SelectiveScanParams& p) override;
  void Attention(const AttentionParams& p) override;
  absl::Status MambaStep(const MambaStepParams& p) override;

  void MoeGate(const Tensor& logits, int k, Tensor* weights, Tensor* experts) override;
  void GatherRows(const Tensor& x, const Tensor& rows, Tensor* y) override;
  void ScatterAddRows(const Tensor& x, const Tensor& rows, const Tensor& scale, Tensor* y) override;
  void GroupedExpertMlp(const GroupedExpertMlpParams& p) override;

  // CPU ops finish before they return.
  absl::Status Synchronize() override;

 private:
  const CpuIsa isa_;
  const std::unique_ptr<Backend> allocator_;  // a CpuBackend, for Allocate
};

// A FastCpuBackend for DetectCpuIsa().
std::unique_ptr<Backend> CreateFastCpuBackend();

}  // namespace jamba::kernels
