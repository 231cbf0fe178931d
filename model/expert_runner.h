// ExpertRunner: computes the expert half of an MoE layer. Implementations:
// LocalExperts (in-process, all experts on this backend) and, in the
// services, a remote dispatcher to expert-worker shards. Both must sum in
// the order of GroupByExpert so that their outputs are identical.
#pragma once

#include "absl/status/status.h"
#include "core/tensor.h"

namespace jamba::model {

class ExpertRunner {
 public:
  virtual ~ExpertRunner() = default;
  // out[t] = Σ_j weights[t,j] · Expert_{experts[t,j]}(x[t]) for MoE layer `layer`.
  // x, out: [T, H] f32 on the backend; weights [T, k] f32 and experts
  // [T, k] i32 on the host. `out` is overwritten.
  virtual absl::Status Run(int layer, const Tensor& x, const Tensor& weights, const Tensor& experts,
                           Tensor* out) = 0;
};

}  // namespace jamba::model
