// A Jamba-v0.1-shaped layer stack for the GPU benchmark: random bf16
// weights generated on the device (no checkpoint), run through the Backend
// ops exactly as model/ does (Mamba mixer, GQA attention over a KV cache,
// dense and top-k MoE FFNs). It also counts the bytes each step must move,
// for the memory-bandwidth roofline.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cuda/cuda_backend.h"

namespace jamba::bench {

struct GpuModelShape {
  int64_t hidden = 4096, d_inner = 8192, d_state = 16, d_conv = 4, dt_rank = 256;
  int n_heads = 32, n_kv_heads = 8, head_dim = 128;
  int num_experts = 16, top_k = 2;
  int64_t intermediate = 14336, vocab = 65536;
  int layers = 8;                     // one Jamba-v0.1 period: attention at 4, MoE at odd layers
  DType expert_dtype = DType::kBF16;  // or kI8 (per-row scales)
  DType kv_dtype = DType::kF32;       // or kBF16
  bool is_attention(int l) const { return l % 8 == 4; }
  bool is_moe(int l) const { return l % 2 == 1; }
};

// Per-sequence decode state: Mamba conv/ssm state per Mamba layer, one KV
// cache per attention layer (views of a shared pool).
struct GpuSequence {
  std::vector<Tensor> conv, ssm, k, v;
  int64_t length = 0;  // tokens already in the state
};

class GpuModel {
 public:
  static absl::StatusOr<GpuModel> Create(const GpuModelShape& shape, kernels::CudaBackend* backend);

  // Sequences of capacity `max_tokens` each (KV caches allocated in one pool).
  absl::StatusOr<std::vector<GpuSequence>> NewSequences(int count, int64_t max_tokens);

  // Runs the layer stack on h [T, H] in place. With one sequence, T tokens
  // of it (prefill); else one token per sequence (decode). Adds the bytes
  // the step must move to *bytes, except the routed experts' weights: those
  // are known only on the device, and RoutedExpertBytes() adds them up.
  absl::Status Layers(std::vector<GpuSequence*> seqs, Tensor* h, double* bytes);
  // Bytes of the distinct experts each MoE layer of the last Layers() call
  // routed to (synchronises).
  absl::StatusOr<double> RoutedExpertBytes();
  // Embedding of ids [T] and lm_head over `rows` rows of the normed output.
  absl::Status Head(const Tensor& ids, Tensor* h, int64_t rows, double* bytes);

  const GpuModelShape& shape() const { return shape_; }
  const Tensor& embed_table() const { return embed_; }
  double WeightBytesAllExperts() const;

 private:
  struct Mlp {
    Tensor gate, up, down;  // [I, H], [I, H], [H, I] bf16
  };
  struct Layer {
    Tensor in_norm, ff_norm;
    Tensor in_x, in_z, x_proj, xp_dt, xp_B, xp_C;  // xp_*: rows of x_proj
    Tensor dt_norm, B_norm, C_norm, dt_proj, dt_bias;
    Tensor conv_w, conv_b, A, D, out_proj;  // Mamba
    Tensor wq, wk, wv, wo;                  // attention
    Mlp dense;
    Tensor router;
    std::vector<kernels::ExpertMlpWeights> experts;
  };
  absl::StatusOr<Tensor> Random(DType dtype, Shape shape, float lo, float hi);
  absl::Status Mamba(const Layer& w, int mamba_index, std::vector<GpuSequence*>& seqs,
                     const Tensor& x, Tensor* out, double* bytes);
  absl::Status Attention(const Layer& w, int attn_index, std::vector<GpuSequence*>& seqs,
                         const Tensor& x, Tensor* out, double* bytes);
  absl::Status MlpForward(const Mlp& m, const Tensor& x, Tensor* out);
  absl::Status Moe(const Layer& w, const Tensor& x, Tensor* out, double* bytes);

  GpuModelShape shape_;
  kernels::CudaBackend* b_ = nullptr;
  std::vector<Layer> layers_;
  Tensor embed_, final_norm_, lm_head_;
  std::vector<Tensor> routed_;            // [T, k] experts of each MoE layer of the last step
  std::map<int64_t, Tensor> route_rows_;  // T -> [T*k] i32: route (t, j) reads row t
  uint64_t seed_ = 1;
};

}  // namespace jamba::bench
