// GatedMlp: down(silu(gate(x)) ⊙ up(x)), Jamba's dense MLP and each MoE
// expert. Immutable after Load; Forward is thread-compatible.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "model/weight_loader.h"

namespace jamba::model {

class GatedMlp {
 public:
  // Reads <scope>.gate_proj.weight, .up_proj.weight, .down_proj.weight.
  static absl::StatusOr<GatedMlp> Load(const WeightLoader& loader, absl::string_view scope);

  // x: [n, H] -> out: [n, H].
  absl::Status Forward(kernels::Backend* backend, const Tensor& x, Tensor* out) const;

  const Tensor& gate_proj() const { return gate_proj_; }

 private:
  Tensor gate_proj_;  // [I, H]
  Tensor up_proj_;    // [I, H]
  Tensor down_proj_;  // [H, I]
};

}  // namespace jamba::model
