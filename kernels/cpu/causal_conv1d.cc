// CpuCausalConv1d: Mamba's depthwise causal conv1d + SiLU, continuing from
// conv_state (the last K-1 inputs of the previous call). Channels are
// independent, so threads own disjoint channel ranges.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {
namespace {

void CheckParams(const CausalConv1dParams& p) {
  const char* op = "CausalConv1d";
  CheckHost(p.x, op, "x");
  CheckHost(p.weight, op, "weight");
  CheckHost(p.conv_state, op, "conv_state");
  CheckHost(p.y, op, "y");
  if (p.bias.defined()) CheckHost(p.bias, op, "bias");
  const bool ranks = p.x.rank() == 2 && p.weight.rank() == 2 && p.conv_state.rank() == 2;
  const int64_t Di = ranks ? p.x.dim(1) : -1;
  const int64_t K = ranks ? p.weight.dim(1) : -1;
  const bool bias_ok = !p.bias.defined() || p.bias.shape() == Shape{Di};
  JAMBA_CHECK(ranks && K >= 1 && p.weight.dim(0) == Di && p.conv_state.dim(0) == K - 1 &&
              p.conv_state.dim(1) == Di && p.y.shape() == p.x.shape() && bias_ok)
      << op << ": x " << p.x.DebugString() << " weight " << p.weight.DebugString() << " bias "
      << (p.bias.defined() ? p.bias.DebugString() : "none") << " conv_state "
      << p.conv_state.DebugString() << " y " << p.y.DebugString()
      << " (want x, y [L,Di], weight [Di,K], bias [Di], "
         "conv_state [K-1,Di])";
  for (const Tensor* t : {&p.x, &p.weight, &p.conv_state, &p.y, &p.bias}) {
    JAMBA_CHECK(!t->defined() || t->dtype() == DType::kF32)
        << op << ": every tensor must be f32, got " << t->DebugString();
  }
}

// Channels [d_begin, d_end) of the conv, and of the conv_state update.
void ConvChannels(const CausalConv1dParams& p, int64_t d_begin, int64_t d_end) {
  const int64_t L = p.x.dim(0);
  const int64_t Di = p.x.dim(1);
  const int64_t K = p.weight.dim(1);
  const int64_t dn = d_end - d_begin;
  const float* x = p.x.data<float>();       // [L, Di]
  const float* w = p.weight.data<float>();  // [Di, K]
  // [Di], or null without bias
  const float* b = p.bias.defined() ? p.bias.data<float>() : nullptr;
  float* state = p.conv_state.data<float>();  // [K-1, Di]
  float* y = p.y.data<float>();               // [L, Di]

  // With xx = concat(conv_state, x) [K-1+L, Di], win holds xx[t + k, d] for
  // k < K-1: the K-1 inputs before token t, oldest first. It starts as
  // conv_state and ends as its new value.  [K-1, dn]
  std::vector<float> win((K - 1) * dn);
  for (int64_t k = 0; k < K - 1; ++k) {
    const float* row = state + k * Di;
    std::copy(row + d_begin, row + d_end, win.begin() + k * dn);
  }
  for (int64_t t = 0; t < L; ++t) {
    for (int64_t d = d_begin; d < d_end; ++d) {
      const int64_t j = d - d_begin;
      const float xt = x[t * Di + d];  // read before y, which may alias x
      // c = b[d] + sum_k w[d, k] * xx[t + k, d]; w[d, K-1] hits token t.
      // PyTorch: self.conv1d(hidden_states)[..., :seq_len], padding K-1
      float c = b != nullptr ? b[d] : 0.0f;
      for (int64_t k = 0; k < K - 1; ++k) c += w[d * K + k] * win[k * dn + j];
      c += w[d * K + K - 1] * xt;
      // PyTorch: hidden_states = self.act(...)
      y[t * Di + d] = Silu(c);
      // Slide the window one token: drop the oldest input, append x[t, d].
      // PyTorch: conv_state = conv_state.roll(shifts=-1, dims=-1)
      //          conv_state[:, :, -1] = hidden_states[:, :, t]
      for (int64_t k = 0; k + 1 < K - 1; ++k) {
        win[k * dn + j] = win[(k + 1) * dn + j];
      }
      if (K > 1) win[(K - 2) * dn + j] = xt;
    }
  }
  // conv_state = xx[L : L+K-1, :], the last K-1 inputs.
  for (int64_t k = 0; k < K - 1; ++k) {
    std::copy(win.begin() + k * dn, win.begin() + (k + 1) * dn, state + k * Di + d_begin);
  }
}

}  // namespace

void CpuCausalConv1d(const CausalConv1dParams& p) {
  CheckParams(p);
  ThreadPool::Default().ParallelFor(
      p.x.dim(1), 64, [&](int64_t d_begin, int64_t d_end) { ConvChannels(p, d_begin, d_end); });
}

}  // namespace jamba::kernels
