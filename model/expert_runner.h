// ExpertRunner: computes the expert half of an MoE layer. Implementations:
// LocalExperts (in-process, all experts on this backend) and, in the
// services, a remote dispatcher to expert-worker shards. Both must sum in
// the order of GroupByExpert so that their outputs are identical.
//
// Run computes at once. Submit starts a call and returns a PendingExperts
// whose Wait finishes it; an asynchronous runner (remote) returns before
// the work is done, so the caller can compute something else meanwhile
// (JambaModel overlaps one micro-batch's experts with the other's mixers).
#pragma once

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace jamba::model {

// One submitted expert call. Wait is called once, on the submitting thread.
class PendingExperts {
 public:
  virtual ~PendingExperts() = default;
  // Blocks until *out of the Submit holds the result, or fails.
  virtual absl::Status Wait() = 0;
};

class ExpertRunner {
 public:
  virtual ~ExpertRunner() = default;
  // out[t] = Σ_j weights[t,j] · Expert_{experts[t,j]}(x[t]) for MoE layer `layer`.
  // x, out: [T, H] f32 on the backend; weights [T, k] f32 and experts
  // [T, k] i32 on the host. `out` is overwritten.
  virtual absl::Status Run(int layer, const Tensor& x, const Tensor& weights, const Tensor& experts,
                           Tensor* out) = 0;

  // As Run, split in two: `out` must stay alive until Wait returns. x,
  // weights and experts may change once Submit returns. The default runs
  // the call inside Submit.
  virtual std::unique_ptr<PendingExperts> Submit(int layer, const Tensor& x, const Tensor& weights,
                                                 const Tensor& experts, Tensor* out) {
    return std::make_unique<Done>(Run(layer, x, weights, experts, out));
  }
  // True when Submit returns before the work is done, so that overlapping
  // other work with it pays.
  virtual bool asynchronous() const { return false; }

 private:
  class Done final : public PendingExperts {
   public:
    explicit Done(absl::Status status) : status_(std::move(status)) {}
    absl::Status Wait() override { return status_; }

   private:
    absl::Status status_;
  };
};

}  // namespace jamba::model
