#include "model/local_experts.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "model/expert_quant.h"
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

// gate_proj, up_proj [I, H] and down_proj [H, I] of one expert.
absl::StatusOr<kernels::ExpertMlpWeights> LoadExpert(const WeightLoader& loader,
                                                     const std::string& scope,
                                                     ExpertWeights weights) {
  const JambaConfig& c = loader.config();
  const Shape in_shape = {c.intermediate_size, c.hidden_size};
  const Shape out_shape = {c.hidden_size, c.intermediate_size};
  kernels::ExpertMlpWeights w;
  struct Part {
    const char* name;
    const Shape* shape;
    Tensor* matrix;
    Tensor* scale;
  };
  for (const Part& part : {Part{".gate_proj.weight", &in_shape, &w.gate, &w.gate_scale},
                           Part{".up_proj.weight", &in_shape, &w.up, &w.up_scale},
                           Part{".down_proj.weight", &out_shape, &w.down, &w.down_scale}}) {
    const std::string name = scope + part.name;
    if (weights == ExpertWeights::kAsStored) {
      ASSIGN_OR_RETURN(*part.matrix, loader.MatMulWeight(name, *part.shape));
      continue;
    }
    ASSIGN_OR_RETURN(Tensor host, loader.HostF32(name, *part.shape));
    QuantizedRows q = QuantizeRowsInt8(host);
    ASSIGN_OR_RETURN(*part.matrix, loader.ToDevice(std::move(q.q)));
    ASSIGN_OR_RETURN(*part.scale, loader.ToDevice(std::move(q.scale)));
  }
  return w;
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
                                                                 const HostPredicate& hosts,
                                                                 ExpertWeights weights) {
  const JambaConfig& c = loader.config();
  std::unique_ptr<LocalExperts> local(
      new LocalExperts(backend, c.num_hidden_layers, c.num_experts));
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
    if (c.ffn_kind(layer) != FfnKind::kMoe) continue;
    local->layers_[layer].resize(c.num_experts);
    for (int e = 0; e < c.num_experts; ++e) {
      if (hosts && !hosts(layer, e)) continue;
      ASSIGN_OR_RETURN(
          local->layers_[layer][e],
          LoadExpert(loader, absl::StrCat("model.layers.", layer, ".feed_forward.experts.", e),
                     weights));
      ++local->num_hosted_;
    }
  }
  return local;
}

bool LocalExperts::Hosts(int layer, int expert) const {
  return layer >= 0 && layer < static_cast<int>(layers_.size()) && expert >= 0 &&
         expert < static_cast<int>(layers_[layer].size()) && layers_[layer][expert].gate.defined();
}

absl::Status LocalExperts::CheckHosted(int layer, int expert) const {
  if (Hosts(layer, expert)) return absl::OkStatus();
  return absl::NotFoundError(
      absl::StrCat("expert ", expert, " of layer ", layer, " is not hosted here"));
}

absl::StatusOr<Tensor> LocalExperts::RunRoutes(int layer, const Tensor& x,
                                               const std::vector<int32_t>& rows,
                                               const std::vector<int32_t>& experts) {
  const int64_t n = static_cast<int64_t>(rows.size());
  kernels::GroupedExpertMlpParams p;
  p.x = x;
  ASSIGN_OR_RETURN(p.rows, UploadI32(backend_, rows));
  ASSIGN_OR_RETURN(p.experts, UploadI32(backend_, experts));
  p.weights = &layers_[layer];
  ASSIGN_OR_RETURN(p.y, backend_->AllocateUninitialized(DType::kF32, {n, x.dim(1)}));  // [n, H]
  backend_->GroupedExpertMlp(p);
  return p.y;
}

absl::Status LocalExperts::RunExpert(int layer, int expert, const Tensor& x, Tensor* out) {
  RETURN_IF_ERROR(CheckHosted(layer, expert));
  const int64_t n = x.dim(0);
  std::vector<int32_t> rows(n);
  for (int64_t r = 0; r < n; ++r) rows[r] = static_cast<int32_t>(r);
  ASSIGN_OR_RETURN(Tensor y, RunRoutes(layer, x, rows, std::vector<int32_t>(n, expert)));
  backend_->Copy(y, out);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Tensor>> LocalExperts::RunGroups(int layer,
                                                            absl::Span<const int> experts,
                                                            absl::Span<const Tensor> xs) {
  int64_t n = 0;
  for (size_t g = 0; g < experts.size(); ++g) {
    RETURN_IF_ERROR(CheckHosted(layer, experts[g]));
    n += xs[g].dim(0);
  }
  if (n == 0) {  // nothing to compute; each group's [0, H] output
    std::vector<Tensor> ys;
    for (const Tensor& xg : xs) ys.push_back(Tensor::Zeros(DType::kF32, {0, xg.dim(1)}));
    return ys;
  }
  const int64_t H = xs[0].dim(1);
  Tensor x = Tensor::Zeros(DType::kF32, {n, H});  // [n, H]: the groups' rows in order
  std::vector<int32_t> rows(n), route_experts(n);
  int64_t r = 0;
  for (size_t g = 0; g < experts.size(); ++g) {
    std::memcpy(x.data<float>() + r * H, xs[g].raw_data(), xs[g].nbytes());
    for (int64_t i = 0; i < xs[g].dim(0); ++i, ++r) {
      rows[r] = static_cast<int32_t>(r);
      route_experts[r] = experts[g];
    }
  }
  Tensor dx = x;
  if (backend_->device() != Device::kCpu) {
    ASSIGN_OR_RETURN(dx, backend_->Allocate(DType::kF32, {n, H}));
    backend_->Copy(x, &dx);
  }
  ASSIGN_OR_RETURN(Tensor dy, RunRoutes(layer, dx, rows, route_experts));
  Tensor y = dy;
  if (backend_->device() != Device::kCpu) {
    y = Tensor::Zeros(DType::kF32, {n, H});
    backend_->Copy(dy, &y);
  }
  RETURN_IF_ERROR(backend_->Synchronize());
  std::vector<Tensor> ys;
  r = 0;
  for (const Tensor& xg : xs) {
    ys.push_back(y.Slice(r, r + xg.dim(0)));
    r += xg.dim(0);
  }
  return ys;
}

absl::Status LocalExperts::Run(int layer, const Tensor& x, const Tensor& weights,
                               const Tensor& experts, Tensor* out) {
  // Routes in GroupByExpert order, the order in which the combine sums:
  // final_hidden_states = zeros; for each expert (ascending):
  //   final_hidden_states.index_add_(0, top_x, expert(x[top_x]) * routing_weights)
  std::vector<int32_t> rows, route_experts;
  std::vector<float> scales;
  for (const ExpertGroup& g : GroupByExpert(weights, experts, num_experts_)) {
    RETURN_IF_ERROR(CheckHosted(layer, g.expert));
    rows.insert(rows.end(), g.rows.begin(), g.rows.end());
    scales.insert(scales.end(), g.scales.begin(), g.scales.end());
    route_experts.insert(route_experts.end(), g.rows.size(), g.expert);
  }
  ASSIGN_OR_RETURN(Tensor y, RunRoutes(layer, x, rows, route_experts));  // [n, H]
  ASSIGN_OR_RETURN(Tensor rows_d, UploadI32(backend_, rows));
  ASSIGN_OR_RETURN(Tensor scales_d, UploadF32(backend_, scales));
  ASSIGN_OR_RETURN(Tensor acc, backend_->Allocate(DType::kF32, {x.dim(0), x.dim(1)}));
  backend_->ScatterAddRows(y, rows_d, scales_d, &acc);
  backend_->Copy(acc, out);
  return absl::OkStatus();
}

}  // namespace jamba::model
