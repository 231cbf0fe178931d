// GpuModel: the benchmark's Jamba-shaped layer stack on the CUDA backend.
#include "bench/gpu_model.h"

#include <cmath>
#include <utility>

#include "core/status_macros.h"

namespace jamba::bench {
absl::StatusOr<Tensor> GpuModel::Random(DType dtype, Shape shape, float lo, float hi) {
  ASSIGN_OR_RETURN(Tensor t, b_->Allocate(dtype, std::move(shape)));
  b_->FillRandom(&t, seed_++, lo, hi);
  return t;
}

absl::StatusOr<GpuModel> GpuModel::Create(const GpuModelShape& s, kernels::CudaBackend* b) {
  GpuModel m;
  m.shape_ = s;
  m.b_ = b;
  const DType bf = DType::kBF16, f32 = DType::kF32;
  const int64_t H = s.hidden, Di = s.d_inner, N = s.d_state, R = s.dt_rank, I = s.intermediate;
  // Linear weights uniform in +-1/sqrt(fan_in) keep activations O(1).
  auto lin = [&m, bf](int64_t out, int64_t in) {
    const float a = 1.0f / std::sqrt(static_cast<float>(in));
    return m.Random(bf, {out, in}, -a, a);
  };
  auto mlp = [&]() -> absl::StatusOr<Mlp> {
    Mlp x;
    ASSIGN_OR_RETURN(x.gate, lin(I, H));
    ASSIGN_OR_RETURN(x.up, lin(I, H));
    ASSIGN_OR_RETURN(x.down, lin(H, I));
    return x;
  };
  for (int l = 0; l < s.layers; ++l) {
    Layer w;
    ASSIGN_OR_RETURN(w.in_norm, m.Random(f32, {H}, 1.0f, 1.0f));
    ASSIGN_OR_RETURN(w.ff_norm, m.Random(f32, {H}, 1.0f, 1.0f));
    if (s.is_attention(l)) {
      ASSIGN_OR_RETURN(w.wq, lin(s.n_heads * s.head_dim, H));
      ASSIGN_OR_RETURN(w.wk, lin(s.n_kv_heads * s.head_dim, H));
      ASSIGN_OR_RETURN(w.wv, lin(s.n_kv_heads * s.head_dim, H));
      ASSIGN_OR_RETURN(w.wo, lin(H, s.n_heads * s.head_dim));
    } else {
      ASSIGN_OR_RETURN(w.in_x, lin(Di, H));
      ASSIGN_OR_RETURN(w.in_z, lin(Di, H));
      ASSIGN_OR_RETURN(w.conv_w, m.Random(f32, {Di, s.d_conv}, -0.5f, 0.5f));
      ASSIGN_OR_RETURN(w.conv_b, m.Random(f32, {Di}, -0.1f, 0.1f));
      ASSIGN_OR_RETURN(w.x_proj, lin(R + 2 * N, Di));
      w.xp_dt = w.x_proj.Slice(0, R);
      w.xp_B = w.x_proj.Slice(R, R + N);
      w.xp_C = w.x_proj.Slice(R + N, R + 2 * N);
      ASSIGN_OR_RETURN(w.dt_norm, m.Random(f32, {R}, 1.0f, 1.0f));
      ASSIGN_OR_RETURN(w.B_norm, m.Random(f32, {N}, 1.0f, 1.0f));
      ASSIGN_OR_RETURN(w.C_norm, m.Random(f32, {N}, 1.0f, 1.0f));
      ASSIGN_OR_RETURN(w.dt_proj, lin(Di, R));
      ASSIGN_OR_RETURN(w.dt_bias, m.Random(f32, {Di}, -4.0f, -2.0f));
      ASSIGN_OR_RETURN(w.A, m.Random(f32, {Di, N}, -8.0f, -1.0f));
      ASSIGN_OR_RETURN(w.D, m.Random(f32, {Di}, 0.5f, 1.5f));
      ASSIGN_OR_RETURN(w.out_proj, lin(H, Di));
    }
    if (s.is_moe(l)) {
      ASSIGN_OR_RETURN(w.router, lin(s.num_experts, H));
      for (int e = 0; e < s.num_experts; ++e) {
        kernels::ExpertMlpWeights x;
        if (s.expert_dtype == DType::kI8) {
          // Integers in [-127, 127] times a per-row scale of a / 127.
          const float a = 1.0f / std::sqrt(static_cast<float>(H)) / 127.0f;
          const float b = 1.0f / std::sqrt(static_cast<float>(I)) / 127.0f;
          ASSIGN_OR_RETURN(x.gate, m.Random(DType::kI8, {I, H}, -127.0f, 127.0f));
          ASSIGN_OR_RETURN(x.up, m.Random(DType::kI8, {I, H}, -127.0f, 127.0f));
          ASSIGN_OR_RETURN(x.down, m.Random(DType::kI8, {H, I}, -127.0f, 127.0f));
          ASSIGN_OR_RETURN(x.gate_scale, m.Random(f32, {I}, a, a));
          ASSIGN_OR_RETURN(x.up_scale, m.Random(f32, {I}, a, a));
          ASSIGN_OR_RETURN(x.down_scale, m.Random(f32, {H}, b, b));
        } else {
          ASSIGN_OR_RETURN(Mlp d, mlp());
          x.gate = std::move(d.gate);
          x.up = std::move(d.up);
          x.down = std::move(d.down);
        }
        w.experts.push_back(std::move(x));
      }
    } else {
      ASSIGN_OR_RETURN(w.dense, mlp());
    }
    m.layers_.push_back(std::move(w));
  }
  ASSIGN_OR_RETURN(m.embed_, m.Random(bf, {s.vocab, H}, -1.0f, 1.0f));
  ASSIGN_OR_RETURN(m.final_norm_, m.Random(f32, {H}, 1.0f, 1.0f));
  ASSIGN_OR_RETURN(m.lm_head_, lin(s.vocab, H));
  return m;
}

double GpuModel::WeightBytesAllExperts() const {
  double total = 0;
  for (const Layer& w : layers_) {
    for (const Tensor* t :
         {&w.in_x, &w.in_z, &w.xp_dt, &w.xp_B, &w.xp_C, &w.dt_proj, &w.out_proj, &w.wq, &w.wk,
          &w.wv, &w.wo, &w.dense.gate, &w.dense.up, &w.dense.down, &w.router}) {
      if (t->defined()) total += t->nbytes();
    }
    for (const kernels::ExpertMlpWeights& e : w.experts) total += 3.0 * e.gate.nbytes();
  }
  return total;
}

absl::StatusOr<std::vector<GpuSequence>> GpuModel::NewSequences(int count, int64_t max_tokens) {
  const GpuModelShape& s = shape_;
  int n_attn = 0, n_mamba = 0;
  for (int l = 0; l < s.layers; ++l) (s.is_attention(l) ? n_attn : n_mamba)++;
  std::vector<GpuSequence> seqs(count);
  for (int a = 0; a < n_attn; ++a) {
    // One pool per attention layer and K/V; random contents stand in for a
    // prefilled context.
    ASSIGN_OR_RETURN(
        Tensor kp, Random(s.kv_dtype, {count * max_tokens, s.n_kv_heads, s.head_dim}, -1.0f, 1.0f));
    ASSIGN_OR_RETURN(
        Tensor vp, Random(s.kv_dtype, {count * max_tokens, s.n_kv_heads, s.head_dim}, -1.0f, 1.0f));
    for (int i = 0; i < count; ++i) {
      seqs[i].k.push_back(kp.Slice(i * max_tokens, (i + 1) * max_tokens));
      seqs[i].v.push_back(vp.Slice(i * max_tokens, (i + 1) * max_tokens));
    }
  }
  for (GpuSequence& q : seqs) {
    for (int l = 0; l < n_mamba; ++l) {
      ASSIGN_OR_RETURN(Tensor conv, b_->Allocate(DType::kF32, {s.d_conv - 1, s.d_inner}));
      ASSIGN_OR_RETURN(Tensor ssm, b_->Allocate(DType::kF32, {s.d_inner, s.d_state}));
      q.conv.push_back(std::move(conv));
      q.ssm.push_back(std::move(ssm));
    }
  }
  return seqs;
}

}  // namespace jamba::bench
