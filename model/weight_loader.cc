#include "model/weight_loader.h"

#include <utility>

#include "core/status_macros.h"

namespace jamba::model {

absl::StatusOr<Tensor> WeightLoader::Matrix(absl::string_view name, const Shape& shape) const {
  ASSIGN_OR_RETURN(Tensor host, checkpoint_->Get(name, shape));
  return ToDevice(std::move(host));
}

absl::StatusOr<Tensor> WeightLoader::MatMulWeight(absl::string_view name,
                                                  const Shape& shape) const {
  ASSIGN_OR_RETURN(Tensor w, Matrix(name, shape));
  return ForMatMul(w);
}

absl::StatusOr<Tensor> WeightLoader::ForMatMul(const Tensor& w) const {
  ASSIGN_OR_RETURN(Tensor prepared, backend_->PrepareMatMulWeight(w));
  // A copy in another layout: the file's pages of w are not needed again.
  if (prepared.raw_data() != w.raw_data()) checkpoint_->DropPages(w);
  return prepared;
}

absl::StatusOr<Tensor> WeightLoader::F32(absl::string_view name, const Shape& shape) const {
  ASSIGN_OR_RETURN(Tensor host, checkpoint_->GetF32(name, shape));
  return ToDevice(std::move(host));
}

absl::StatusOr<Tensor> WeightLoader::HostF32(absl::string_view name, const Shape& shape) const {
  return checkpoint_->GetF32(name, shape);
}

absl::StatusOr<Tensor> WeightLoader::ToDevice(Tensor host) const {
  if (backend_->device() == Device::kCpu) return host;
  ASSIGN_OR_RETURN(Tensor device, backend_->Allocate(host.dtype(), host.shape()));
  backend_->Copy(host, &device);
  checkpoint_->DropPages(host);  // read again from the file if ever needed
  return device;
}

}  // namespace jamba::model
