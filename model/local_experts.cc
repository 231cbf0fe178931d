#include "model/local_experts.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "model/routing.h"

namespace jamba::model {
namespace {

template <typename T>
absl::StatusOr<Tensor> Upload(kernels::Backend* backend, const std::vector<T>& values) {
  const int64_t n = static_cast<int64_t>(values.size());
  Tensor host = Tensor::Zeros(DTypeOf<T>::value, {n});
  if (n > 0) std::memcpy(host.raw_data(), values.data(), n * sizeof(T));
  if (backend->device() == Device::kCpu) return host;
  ASSIGN_OR_RETURN(Tensor device, backend->Allocate(DTypeOf<T>::value, {n}));
  backend->Copy(host, &device);
  return device;
}

}  // namespace

absl::StatusOr<Tensor> UploadI32(kernels::Backend* backend, const std::vector<int32_t>& values) {
  return Upload(backend, values);
}

absl::StatusOr<Tensor> UploadF32(kernels::Backend* backend, const std::vector<float>& values) {
  return Upload(backend, values);
}

absl::StatusOr<std::unique_ptr<LocalExperts>> LocalExperts::Load(const WeightLoader& loader,
                                                                 kernels::Backend* backend,
                                                                 const HostPredicate& hosts) {
  const JambaConfig& c = loader.config();
  std::unique_ptr<LocalExperts> local(new LocalExperts(backend, c.num_experts));
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
    if (c.ffn_kind(layer) != FfnKind::kMoe) continue;
    for (int e = 0; e < c.num_experts; ++e) {
      if (hosts && !hosts(layer, e)) continue;
      ASSIGN_OR_RETURN(GatedMlp mlp,
                       GatedMlp::Load(loader, absl::StrCat("model.layers.", layer,
                                                           ".feed_forward.experts.", e)));
      local->experts_.emplace(std::make_pair(layer, e), std::move(mlp));
    }
  }
  return local;
}

absl::Status LocalExperts::RunExpert(int layer, int expert, const Tensor& x, Tensor* out) {
  auto it = experts_.find({layer, expert});
  if (it == experts_.end()) {
    return absl::NotFoundError(
        absl::StrCat("expert ", expert, " of layer ", layer, " is not hosted here"));
  }
  return it->second.Forward(backend_, x, out);
}

absl::Status LocalExperts::Run(int layer, const Tensor& x, const Tensor& weights,
                               const Tensor& experts, Tensor* out) {
  const int64_t H = x.dim(1);
  // final_hidden_states = zeros; for each expert (ascending):
  //   final_hidden_states.index_add_(0, top_x, expert(x[top_x]) * routing_weights)
  ASSIGN_OR_RETURN(Tensor acc, backend_->Allocate(DType::kF32, {x.dim(0), H}));
  for (const ExpertGroup& g : GroupByExpert(weights, experts, num_experts_)) {
    const int64_t n = static_cast<int64_t>(g.rows.size());
    ASSIGN_OR_RETURN(Tensor rows, UploadI32(backend_, g.rows));
    ASSIGN_OR_RETURN(Tensor scales, UploadF32(backend_, g.scales));
    ASSIGN_OR_RETURN(Tensor xe, backend_->Allocate(DType::kF32, {n, H}));  // [n, H]
    ASSIGN_OR_RETURN(Tensor ye, backend_->Allocate(DType::kF32, {n, H}));  // [n, H]
    backend_->GatherRows(x, rows, &xe);
    RETURN_IF_ERROR(RunExpert(layer, g.expert, xe, &ye));
    backend_->ScatterAddRows(ye, rows, scales, &acc);
  }
  backend_->Copy(acc, out);
  return absl::OkStatus();
}

}  // namespace jamba::model
