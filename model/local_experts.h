// LocalExperts: MoE experts computed in this process on one backend. The
// embedded default runner, and the compute core of an expert worker, which
// loads only the (layer, expert) pairs it hosts. Every call runs all of its
// rows, whatever their experts, through one Backend::GroupedExpertMlp. Not
// thread-safe: one caller at a time (the backend is single-threaded from
// the outside).
#pragma once

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/backend.h"
#include "model/expert_runner.h"
#include "model/weight_loader.h"

namespace jamba::model {

enum class ExpertWeights {
  kAsStored,  // the checkpoint's dtype (F32/BF16/F16)
  kInt8,      // quantised at load: I8 with one f32 scale per output row
};

class LocalExperts final : public ExpertRunner {
 public:
  using HostPredicate = std::function<bool(int layer, int expert)>;

  // Loads every expert of every MoE layer for which `hosts` is true (all of
  // them when `hosts` is empty).
  static absl::StatusOr<std::unique_ptr<LocalExperts>> Load(
      const WeightLoader& loader, kernels::Backend* backend, const HostPredicate& hosts = {},
      ExpertWeights weights = ExpertWeights::kAsStored);

  bool Hosts(int layer, int expert) const;
  size_t num_hosted() const { return num_hosted_; }

  // out[n, H] = Expert_{layer, expert}(x[n, H]) on the backend; NotFound
  // when not hosted.
  absl::Status RunExpert(int layer, int expert, const Tensor& x, Tensor* out);

  // ys[g] = Expert_{layer, experts[g]}(xs[g]) for host f32 xs[g] [n_g, H],
  // all groups in one pass; NotFound when an expert is not hosted.
  absl::StatusOr<std::vector<Tensor>> RunGroups(int layer, absl::Span<const int> experts,
                                                absl::Span<const Tensor> xs);

  absl::Status Run(int layer, const Tensor& x, const Tensor& weights, const Tensor& experts,
                   Tensor* out) override;

 private:
  LocalExperts(kernels::Backend* backend, int num_layers, int num_experts)
      : backend_(backend), num_experts_(num_experts), layers_(num_layers) {}

  absl::Status CheckHosted(int layer, int expert) const;
  // y[r] = Expert_{layer, experts[r]}(x[rows[r]]); rows, experts host i32.
  absl::StatusOr<Tensor> RunRoutes(int layer, const Tensor& x, const std::vector<int32_t>& rows,
                                   const std::vector<int32_t>& experts);

  kernels::Backend* backend_;
  int num_experts_;
  size_t num_hosted_ = 0;
  // layers_[layer][expert]; undefined weights where not hosted.
  std::vector<std::vector<kernels::ExpertMlpWeights>> layers_;
};

// Copies host values into a new [n] tensor on `backend`.
absl::StatusOr<Tensor> UploadI32(kernels::Backend* backend, const std::vector<int32_t>& values);
absl::StatusOr<Tensor> UploadF32(kernels::Backend* backend, const std::vector<float>& values);

}  // namespace jamba::model
