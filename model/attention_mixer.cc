#include "model/attention_mixer.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace jamba::model {

absl::StatusOr<std::unique_ptr<AttentionMixer>> AttentionMixer::Load(const WeightLoader& loader,
                                                                     int layer) {
  const JambaConfig& c = loader.config();
  const int64_t H = c.hidden_size, hd = c.head_dim();
  const std::string p = absl::StrCat("model.layers.", layer, ".self_attn.");
  std::unique_ptr<AttentionMixer> m(new AttentionMixer());
  m->layer_ = layer;
  m->n_heads_ = c.num_attention_heads;
  m->n_kv_heads_ = c.num_key_value_heads;
  m->head_dim_ = static_cast<int>(hd);
  ASSIGN_OR_RETURN(m->q_proj_,
                   loader.MatMulWeight(p + "q_proj.weight", {c.num_attention_heads * hd, H}));
  ASSIGN_OR_RETURN(m->k_proj_,
                   loader.MatMulWeight(p + "k_proj.weight", {c.num_key_value_heads * hd, H}));
  ASSIGN_OR_RETURN(m->v_proj_,
                   loader.MatMulWeight(p + "v_proj.weight", {c.num_key_value_heads * hd, H}));
  ASSIGN_OR_RETURN(m->o_proj_,
                   loader.MatMulWeight(p + "o_proj.weight", {H, c.num_attention_heads * hd}));
  return m;
}

absl::Status AttentionMixer::Forward(kernels::Backend* b, const Tensor& x,
                                     absl::Span<const SequenceRows> sequences, Tensor* out) const {
  const int64_t T = x.dim(0);
  const int64_t q_width = int64_t{n_heads_} * head_dim_;
  const int64_t kv_width = int64_t{n_kv_heads_} * head_dim_;
  // query_states = q_proj(x): [T, n_heads*hd]; key/value_states: [T, n_kv*hd]
  ASSIGN_OR_RETURN(Tensor q, b->AllocateUninitialized(DType::kF32, {T, q_width}));
  ASSIGN_OR_RETURN(Tensor k, b->AllocateUninitialized(DType::kF32, {T, kv_width}));
  ASSIGN_OR_RETURN(Tensor v, b->AllocateUninitialized(DType::kF32, {T, kv_width}));
  b->MultiMatMul(x, {{&q_proj_, nullptr, &q}, {&k_proj_, nullptr, &k}, {&v_proj_, nullptr, &v}});

  // attn_output = softmax(q kᵀ / sqrt(hd) + causal_mask) v: [T, n_heads*hd]
  ASSIGN_OR_RETURN(Tensor attn, b->AllocateUninitialized(DType::kF32, {T, q_width}));
  for (const SequenceRows& s : sequences) {
    const int64_t past = s.state->length();
    const int64_t L = s.end - s.begin;
    RETURN_IF_ERROR(s.state->ReserveKv(past + L, b));
    KvCache& cache = s.state->layer(layer_).kv;
    // past_key_value.update(k, v): rows [past, past+L) of the cache, in
    // the cache's dtype.
    Tensor k_dst = cache.k.Slice(past, past + L).Reshape({L, kv_width});
    Tensor v_dst = cache.v.Slice(past, past + L).Reshape({L, kv_width});
    b->Convert(k.Slice(s.begin, s.end), &k_dst);
    b->Convert(v.Slice(s.begin, s.end), &v_dst);

    kernels::AttentionParams p;
    p.q = q.Slice(s.begin, s.end);
    p.k_cache = cache.k;
    p.v_cache = cache.v;
    p.past = past;
    p.n_heads = n_heads_;
    p.n_kv_heads = n_kv_heads_;
    p.head_dim = head_dim_;
    p.out = attn.Slice(s.begin, s.end);
    b->Attention(p);
  }
  // o_proj(attn_output): [T, H]
  b->MatMul(attn, o_proj_, nullptr, out);
  return absl::OkStatus();
}

}  // namespace jamba::model
