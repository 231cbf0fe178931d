#include "model/gated_mlp.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace jamba::model {

absl::StatusOr<GatedMlp> GatedMlp::Load(const WeightLoader& loader, absl::string_view scope) {
  const JambaConfig& c = loader.config();
  GatedMlp mlp;
  ASSIGN_OR_RETURN(mlp.gate_proj_, loader.MatMulWeight(absl::StrCat(scope, ".gate_proj.weight"),
                                                       {c.intermediate_size, c.hidden_size}));
  ASSIGN_OR_RETURN(mlp.up_proj_, loader.MatMulWeight(absl::StrCat(scope, ".up_proj.weight"),
                                                     {c.intermediate_size, c.hidden_size}));
  ASSIGN_OR_RETURN(mlp.down_proj_, loader.MatMulWeight(absl::StrCat(scope, ".down_proj.weight"),
                                                       {c.hidden_size, c.intermediate_size}));
  return mlp;
}

absl::Status GatedMlp::Forward(kernels::Backend* backend, const Tensor& x, Tensor* out) const {
  const int64_t n = x.dim(0);
  const int64_t inter = gate_proj_.dim(0);
  // g = gate_proj(x), u = up_proj(x): [n, I]
  ASSIGN_OR_RETURN(Tensor g, backend->AllocateUninitialized(DType::kF32, {n, inter}));
  ASSIGN_OR_RETURN(Tensor u, backend->AllocateUninitialized(DType::kF32, {n, inter}));
  backend->MultiMatMul(x, {{&gate_proj_, nullptr, &g}, {&up_proj_, nullptr, &u}});
  // g = act_fn(g) * u: [n, I]
  backend->SiluMul(g, u, &g);
  // out = down_proj(g): [n, H]
  backend->MatMul(g, down_proj_, nullptr, out);
  return absl::OkStatus();
}

}  // namespace jamba::model
