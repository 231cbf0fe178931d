// CpuMoeGate: Jamba's MoE routing. Softmax over all E router logits in f32,
// then the k largest probabilities per token in descending order (ties go to
// the lower expert id). Unlike Mixtral, the k weights are NOT renormalised.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "core/check.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {

void CpuMoeGate(const Tensor& logits, int k, Tensor* weights, Tensor* experts) {
  CheckHost(logits, "MoeGate", "logits");
  CheckHost(*weights, "MoeGate", "weights");
  CheckHost(*experts, "MoeGate", "experts");
  const bool ok = logits.rank() == 2 && k >= 1 && k <= logits.dim(1) &&
                  weights->shape() == Shape{logits.dim(0), k} &&
                  experts->shape() == weights->shape();
  JAMBA_CHECK(ok) << "MoeGate: logits " << logits.DebugString() << " k " << k << " weights "
                  << weights->DebugString() << " experts " << experts->DebugString()
                  << " (want logits [L,E], weights, experts [L,k], 1 <= k <= E)";
  JAMBA_CHECK(logits.dtype() == DType::kF32 && weights->dtype() == DType::kF32 &&
              experts->dtype() == DType::kI32)
      << "MoeGate: logits " << logits.DebugString() << " weights " << weights->DebugString()
      << " experts " << experts->DebugString() << " (want f32, f32, i32)";
  const int64_t L = logits.dim(0);
  const int64_t E = logits.dim(1);
  const float* r = logits.data<float>();  // [L, E]
  float* w = weights->data<float>();      // [L, k]
  int32_t* e = experts->data<int32_t>();  // [L, k]

  std::vector<float> p(E);        // [E] probabilities of one token
  std::vector<int32_t> order(E);  // [E] expert ids, best first
  for (int64_t l = 0; l < L; ++l) {
    const float* rl = r + l * E;  // [E]
    // p = softmax(r) in f32.
    // PyTorch: F.softmax(router_logits, dim=1, dtype=torch.float)
    const float r_max = *std::max_element(rl, rl + E);
    float sum = 0.0f;
    for (int64_t j = 0; j < E; ++j) {
      p[j] = std::exp(rl[j] - r_max);
      sum += p[j];
    }
    for (int64_t j = 0; j < E; ++j) p[j] /= sum;
    // (w, idx) = topk(p, k), descending, ties to the lower id.
    // PyTorch: routing_weights, selected_experts = torch.topk(
    //              routing_weights, top_k, dim=-1)
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    for (int j = 0; j < k; ++j) {
      e[l * k + j] = order[j];
      w[l * k + j] = p[order[j]];
    }
  }
}

}  // namespace jamba::kernels
