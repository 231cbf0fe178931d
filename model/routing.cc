#include "model/routing.h"

#include "core/check.h"

namespace jamba::model {

std::vector<ExpertGroup> GroupByExpert(const Tensor& weights, const Tensor& experts,
                                       int num_experts) {
  JAMBA_CHECK(weights.rank() == 2 && experts.shape() == weights.shape())
      << weights.DebugString() << " " << experts.DebugString();
  const int64_t T = weights.dim(0), k = weights.dim(1);
  std::vector<ExpertGroup> by_expert(num_experts);
  for (int e = 0; e < num_experts; ++e) by_expert[e].expert = e;
  const float* w = weights.data<float>();
  const int32_t* ids = experts.data<int32_t>();
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = ids[t * k + j];
      JAMBA_CHECK(e >= 0 && e < num_experts) << "expert " << e;
      by_expert[e].rows.push_back(static_cast<int32_t>(t));
      by_expert[e].scales.push_back(w[t * k + j]);
    }
  }
  std::vector<ExpertGroup> groups;
  for (ExpertGroup& g : by_expert) {
    if (!g.rows.empty()) groups.push_back(std::move(g));
  }
  return groups;
}

}  // namespace jamba::model
