// CpuBackend: the Backend that runs every op on the host, in f32, through
// the free functions of kernels/cpu/ops.h. It is the numerical reference.
// Like every Backend, an instance is used by one thread at a time; the ops
// parallelise internally on ThreadPool::Default().
#pragma once

#include <memory>
#include <string>

#include "kernels/backend.h"

namespace jamba::kernels {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::kCpu; }
  std::string name() const override { return "cpu"; }

  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) override;
  absl::StatusOr<Tensor> AllocateUninitialized(DType dtype, Shape shape) override;
  void Copy(const Tensor& src, Tensor* dst) override;
  void Convert(const Tensor& src, Tensor* dst) override;

  void MatMul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y) override;
  void RmsNorm(const Tensor& x, const Tensor& gain, float eps, Tensor* y) override;
  void Embedding(const Tensor& table, const Tensor& ids, Tensor* y) override;
  void Add(const Tensor& a, const Tensor& b, Tensor* y) override;
  void SiluMul(const Tensor& gate, const Tensor& up, Tensor* y) override;

  void CausalConv1d(const CausalConv1dParams& p) override;
  void SelectiveScan(const SelectiveScanParams& p) override;
  void Attention(const AttentionParams& p) override;

  void MoeGate(const Tensor& logits, int k, Tensor* weights, Tensor* experts) override;
  void GatherRows(const Tensor& x, const Tensor& rows, Tensor* y) override;
  void ScatterAddRows(const Tensor& x, const Tensor& rows, const Tensor& scale, Tensor* y) override;
  void GroupedExpertMlp(const GroupedExpertMlpParams& p) override;

  // CPU ops finish before they return.
  absl::Status Synchronize() override;
};

std::unique_ptr<Backend> CreateCpuBackend();

}  // namespace jamba::kernels
