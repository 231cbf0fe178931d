// LocalExperts: MoE experts computed in this process on one backend. The
// embedded default runner, and the compute core of an expert worker, which
// loads only the (layer, expert) pairs it hosts. Not thread-safe: one
// caller at a time (the backend is single-threaded from the outside).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "model/expert_runner.h"
#include "model/gated_mlp.h"
#include "model/weight_loader.h"

namespace jamba::model {

class LocalExperts final : public ExpertRunner {
 public:
  using HostPredicate = std::function<bool(int layer, int expert)>;

  // Loads every expert of every MoE layer for which `hosts` is true (all of
  // them when `hosts` is empty).
  static absl::StatusOr<std::unique_ptr<LocalExperts>> Load(const WeightLoader& loader,
                                                            kernels::Backend* backend,
                                                            const HostPredicate& hosts = {});

  bool Hosts(int layer, int expert) const { return experts_.count({layer, expert}) > 0; }
  size_t num_hosted() const { return experts_.size(); }

  // out[n, H] = Expert_{layer, expert}(x[n, H]); NotFound when not hosted.
  absl::Status RunExpert(int layer, int expert, const Tensor& x, Tensor* out);

  absl::Status Run(int layer, const Tensor& x, const Tensor& weights, const Tensor& experts,
                   Tensor* out) override;

 private:
  LocalExperts(kernels::Backend* backend, int num_experts)
      : backend_(backend), num_experts_(num_experts) {}

  kernels::Backend* backend_;
  int num_experts_;
  std::map<std::pair<int, int>, GatedMlp> experts_;
};

// Copies host values into a new [n] tensor on `backend`.
absl::StatusOr<Tensor> UploadI32(kernels::Backend* backend, const std::vector<int32_t>& values);
absl::StatusOr<Tensor> UploadF32(kernels::Backend* backend, const std::vector<float>& values);

}  // namespace jamba::model
