// Routing: MoE gate output regrouped per expert, in ascending expert id and
// ascending row order — the order in which HF's JambaSparseMoeBlock
// accumulates (index_add_ per expert), so every runner sums identically.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace jamba::model {

struct ExpertGroup {
  int expert = 0;
  std::vector<int32_t> rows;  // batch rows routed to this expert, ascending
  std::vector<float> scales;  // the gate probability of each row (not renormalised)
};

// weights: [T, k] f32, experts: [T, k] i32 (host). Returns non-empty groups only.
std::vector<ExpertGroup> GroupByExpert(const Tensor& weights, const Tensor& experts,
                                       int num_experts);

}  // namespace jamba::model
