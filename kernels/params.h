// Parameter structs of the Mamba and attention ops. Every backend takes the
// same struct; shapes are documented per field. L = tokens in this call,
// Di = d_inner, N = d_state, K = d_conv.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace jamba::kernels {

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

// Causal multi-head attention with grouped KV heads over a KV cache that
// already holds this call's keys and values at positions [past, past+L).
//   S = q k^T / sqrt(hd), masked to key position <= query position
//   out = softmax(S) v;  query head j reads KV head j / (n_heads / n_kv_heads)
struct AttentionParams {
  Tensor q;        // [L, n_heads * hd] f32
  Tensor k_cache;  // [T, n_kv_heads, hd] f32 with T >= past + L
  Tensor v_cache;  // [T, n_kv_heads, hd] f32
  int64_t past = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  Tensor out;  // [L, n_heads * hd] f32, head-major within a row
};

}  // namespace jamba::kernels
