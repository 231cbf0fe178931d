// Parameter structs of the Mamba and attention ops. Every backend takes the
// same struct; shapes are documented per field. L = tokens in this call,
// Di = d_inner, N = d_state, K = d_conv.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace jamba::kernels {

// One output of Backend::MultiMatMul: y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]).
struct MatMulOutput {
  const Tensor* w;
  const Tensor* bias;  // or nullptr
  Tensor* y;
};

// Depthwise causal conv1d followed by SiLU, continuing from a saved state:
//   c_t[d] = b[d] + sum_k w[d,k] * xx[t + k, d],  xx = concat(conv_state, x)
//   y_t = silu(c_t)
// PyTorch: act(conv1d(x)[..., :L]) with padding K-1, where the left padding
// is the state instead of zeros. L = 1 is the single-step decode update.
struct CausalConv1dParams {
  Tensor x;           // [L, Di] f32, pre-conv input (u_raw)
  Tensor weight;      // [Di, K] f32 (conv1d.weight[:, 0, :])
  Tensor bias;        // [Di] f32, or undefined for no bias
  Tensor conv_state;  // [K-1, Di] f32, in/out: the last K-1 inputs, oldest first
  Tensor y;           // [L, Di] f32, out
};

// Selective scan with D skip and SiLU gate, continuing from ssm_state:
//   dt = softplus(delta);  h = exp(dt*A) * h + (dt*B_t) * u_t
//   y_t = (h . C_t + D * u_t) * silu(z_t)
// Same semantics as mamba_ssm's selective_scan_ref(delta_softplus=True).
struct SelectiveScanParams {
  Tensor u;          // [L, Di] f32, conv output
  Tensor delta;      // [L, Di] f32, dt_proj output including its bias (pre-softplus)
  Tensor A;          // [Di, N] f32, = -exp(A_log)
  Tensor B;          // [L, N] f32
  Tensor C;          // [L, N] f32
  Tensor D;          // [Di] f32
  Tensor z;          // [L, Di] f32, gate
  Tensor ssm_state;  // [Di, N] f32, in/out
  Tensor y;          // [L, Di] f32, out
};

// One decode token (L = 1) for each of S sequences through the middle of
// the Mamba mixer, between in_proj and out_proj:
//   u = CausalConv1d(x), continuing conv_states[s]
//   [dt_low | B | C] = u · x_projᵀ, then each RmsNorm'd when dt_norm is set
//   delta = dt_low · dt_projᵀ + dt_bias
//   y = SelectiveScan(u, delta, A, B, C, D, z), continuing ssm_states[s]
// Row s belongs to sequence s alone. MatMul weight dtypes for x_proj, dt_proj.
struct MambaStepParams {
  Tensor x;                         // [S, Di] f32, pre-conv input (u_raw)
  Tensor z;                         // [S, Di] f32, gate
  Tensor conv_weight;               // [Di, K] f32
  Tensor conv_bias;                 // [Di] f32, or undefined
  Tensor x_proj;                    // [R + 2N, Di]
  Tensor dt_norm;                   // [R] f32, or undefined: no inner norms
  Tensor B_norm;                    // [N] f32, defined with dt_norm
  Tensor C_norm;                    // [N] f32, defined with dt_norm
  float norm_eps = 0;               // of the three RmsNorms
  Tensor dt_proj;                   // [Di, R]
  Tensor dt_bias;                   // [Di] f32
  Tensor A;                         // [Di, N] f32, = -exp(A_log)
  Tensor D;                         // [Di] f32
  std::vector<Tensor> conv_states;  // S of [K-1, Di] f32, in/out
  std::vector<Tensor> ssm_states;   // S of [Di, N] f32, in/out
  Tensor y;                         // [S, Di] f32, out
};

// Causal multi-head attention with grouped KV heads over a KV cache that
// already holds this call's keys and values at positions [past, past+L).
//   S = q k^T / sqrt(hd), masked to key position <= query position
//   out = softmax(S) v;  query head j reads KV head j / (n_heads / n_kv_heads)
struct AttentionParams {
  Tensor q;        // [L, n_heads * hd] f32
  Tensor k_cache;  // [T, n_kv_heads, hd] f32 or bf16, T >= past + L
  Tensor v_cache;  // [T, n_kv_heads, hd], k_cache's dtype
  int64_t past = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  Tensor out;  // [L, n_heads * hd] f32, head-major within a row
};

// One expert's gated MLP: down · (silu(gate · x) ⊙ (up · x)). Weights are
// F32, BF16 or F16, or I8 with one f32 scale per output row (Jamba-1.5's
// ExpertsInt8: w[i,:] = scale[i] * q[i,:], q = round(w / scale),
// scale = max|w[i,:]| / 127). Scales are undefined for float weights.
struct ExpertMlpWeights {
  Tensor gate;        // [I, H]
  Tensor up;          // [I, H]
  Tensor down;        // [H, I]
  Tensor gate_scale;  // [I] f32 (I8 only)
  Tensor up_scale;    // [I] f32 (I8 only)
  Tensor down_scale;  // [H] f32 (I8 only)
};

// The expert MLPs of many routed rows in one call, rows of different
// experts together (an expert worker's whole request, or a batch's MoE
// layer without a host round trip):
//   y[r,:] = Expert_{experts[r]}(x[rows[r],:])
// PyTorch: y[r] = experts[e](x[rows[r]]) for each r
// Each output row depends only on its own input row and expert, so results
// do not depend on how rows are grouped or ordered.
struct GroupedExpertMlpParams {
  Tensor x;        // [T, H] f32
  Tensor rows;     // [n] i32 in [0, T)
  Tensor experts;  // [n] i32 in [0, weights->size()); that entry must be defined
  const std::vector<ExpertMlpWeights>* weights = nullptr;  // indexed by expert id
  Tensor y;                                                // [n, H] f32
};

}  // namespace jamba::kernels
