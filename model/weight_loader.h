// Loading checkpoint tensors for a backend: matrices keep their on-disk
// dtype (the ops convert on the fly), small vectors are made f32. On the CPU
// backend the tensors stay views of the memory-mapped files, except MatMul
// weights the backend rearranges into fresh memory (MatMulWeight).
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"

namespace jamba::model {

class WeightLoader {
 public:
  WeightLoader(const Checkpoint* checkpoint, kernels::Backend* backend)
      : checkpoint_(checkpoint), backend_(backend) {}

  const JambaConfig& config() const { return checkpoint_->config(); }
  bool Has(absl::string_view name) const { return checkpoint_->Has(name); }

  // A weight matrix (Linear or embedding) in its stored dtype, row-major.
  absl::StatusOr<Tensor> Matrix(absl::string_view name, const Shape& shape) const;
  // A Linear weight read only by MatMul (or GroupedExpertMlp): Matrix, laid
  // out as the backend's MatMul reads it best (Backend::PrepareMatMulWeight),
  // so it can no longer be sliced or passed to other ops.
  absl::StatusOr<Tensor> MatMulWeight(absl::string_view name, const Shape& shape) const;
  // The same for a matrix already loaded, e.g. one part of a fused weight.
  absl::StatusOr<Tensor> ForMatMul(const Tensor& w) const;
  // Any tensor converted to f32 (norm gains, biases, conv weights, A_log, D).
  absl::StatusOr<Tensor> F32(absl::string_view name, const Shape& shape) const;
  // The same on the host, for weights derived at load time (A = -exp(A_log)).
  absl::StatusOr<Tensor> HostF32(absl::string_view name, const Shape& shape) const;
  // Moves a host tensor to the backend's device (no copy on the CPU).
  absl::StatusOr<Tensor> ToDevice(Tensor host) const;

 private:
  const Checkpoint* checkpoint_;
  kernels::Backend* backend_;
};

}  // namespace jamba::model
