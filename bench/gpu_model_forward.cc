// GpuModel's forward pass: the same op sequence as model/mamba_mixer.cc,
// model/attention_mixer.cc, model/gated_mlp.cc and JambaModel's MoE, with
// the bytes each step must move counted for the roofline.
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "bench/gpu_model.h"
#include "core/status_macros.h"

namespace jamba::bench {
namespace {

// Rows [begin, end) of the batch that belong to sequence i.
std::pair<int64_t, int64_t> RowsOf(size_t num_seqs, int64_t T, size_t i) {
  if (num_seqs == 1) return {0, T};
  return {static_cast<int64_t>(i), static_cast<int64_t>(i) + 1};
}

absl::StatusOr<Tensor> Upload(kernels::Backend* b, DType dtype, const void* data, int64_t n) {
  Tensor host = Tensor::Zeros(dtype, {n});
  std::memcpy(host.raw_data(), data, host.nbytes());
  ASSIGN_OR_RETURN(Tensor d, b->Allocate(dtype, {n}));
  b->Copy(host, &d);
  return d;
}

}  // namespace

absl::Status GpuModel::Mamba(const Layer& w, int mi, std::vector<GpuSequence*>& seqs,
                             const Tensor& x, Tensor* out, double* bytes) {
  const int64_t T = x.dim(0), Di = shape_.d_inner, N = shape_.d_state, R = shape_.dt_rank;
  auto alloc = [this](Shape s) { return b_->Allocate(DType::kF32, std::move(s)); };
  ASSIGN_OR_RETURN(Tensor u_raw, alloc({T, Di}));
  ASSIGN_OR_RETURN(Tensor z, alloc({T, Di}));
  ASSIGN_OR_RETURN(Tensor u, alloc({T, Di}));
  b_->MatMul(x, w.in_x, nullptr, &u_raw);
  b_->MatMul(x, w.in_z, nullptr, &z);
  for (const Tensor* t : {&w.in_x, &w.in_z, &w.x_proj, &w.dt_proj, &w.out_proj}) {
    *bytes += t->nbytes();
  }
  // Conv and SSM state read and written once per sequence.
  *bytes += 2.0 * seqs.size() * (seqs[0]->conv[mi].nbytes() + seqs[0]->ssm[mi].nbytes());
  if (static_cast<int64_t>(seqs.size()) == T) {
    // Decode (one token per sequence): the middle as one MambaStep, as the model does.
    kernels::MambaStepParams p;
    p.x = u_raw;
    p.z = z;
    p.conv_weight = w.conv_w;
    p.conv_bias = w.conv_b;
    p.x_proj = w.x_proj;
    p.dt_norm = w.dt_norm;
    p.B_norm = w.B_norm;
    p.C_norm = w.C_norm;
    p.norm_eps = 1e-6f;
    p.dt_proj = w.dt_proj;
    p.dt_bias = w.dt_bias;
    p.A = w.A;
    p.D = w.D;
    for (GpuSequence* seq : seqs) {
      p.conv_states.push_back(seq->conv[mi]);
      p.ssm_states.push_back(seq->ssm[mi]);
    }
    ASSIGN_OR_RETURN(p.y, alloc({T, Di}));
    RETURN_IF_ERROR(b_->MambaStep(p));
    b_->MatMul(p.y, w.out_proj, nullptr, out);
    return absl::OkStatus();
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto [r0, r1] = RowsOf(seqs.size(), T, i);
    kernels::CausalConv1dParams c{u_raw.Slice(r0, r1), w.conv_w, w.conv_b, seqs[i]->conv[mi],
                                  u.Slice(r0, r1)};
    b_->CausalConv1d(c);
  }
  ASSIGN_OR_RETURN(Tensor dt0, alloc({T, R}));
  ASSIGN_OR_RETURN(Tensor B0, alloc({T, N}));
  ASSIGN_OR_RETURN(Tensor C0, alloc({T, N}));
  b_->MatMul(u, w.xp_dt, nullptr, &dt0);
  b_->MatMul(u, w.xp_B, nullptr, &B0);
  b_->MatMul(u, w.xp_C, nullptr, &C0);
  b_->RmsNorm(dt0, w.dt_norm, 1e-6f, &dt0);
  b_->RmsNorm(B0, w.B_norm, 1e-6f, &B0);
  b_->RmsNorm(C0, w.C_norm, 1e-6f, &C0);
  ASSIGN_OR_RETURN(Tensor delta, alloc({T, Di}));
  b_->MatMul(dt0, w.dt_proj, &w.dt_bias, &delta);
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto [r0, r1] = RowsOf(seqs.size(), T, i);
    kernels::SelectiveScanParams p{u.Slice(r0, r1),  delta.Slice(r0, r1), w.A,
                                   B0.Slice(r0, r1), C0.Slice(r0, r1),    w.D,
                                   z.Slice(r0, r1),  seqs[i]->ssm[mi],    z.Slice(r0, r1)};
    b_->SelectiveScan(p);  // y written over z (allowed: y may alias z)
  }
  b_->MatMul(z, w.out_proj, nullptr, out);
  return absl::OkStatus();
}

absl::Status GpuModel::Attention(const Layer& w, int ai, std::vector<GpuSequence*>& seqs,
                                 const Tensor& x, Tensor* out, double* bytes) {
  const GpuModelShape& s = shape_;
  const int64_t T = x.dim(0), qw = s.n_heads * s.head_dim, kw = s.n_kv_heads * s.head_dim;
  ASSIGN_OR_RETURN(Tensor q, b_->Allocate(DType::kF32, {T, qw}));
  ASSIGN_OR_RETURN(Tensor k, b_->Allocate(DType::kF32, {T, kw}));
  ASSIGN_OR_RETURN(Tensor v, b_->Allocate(DType::kF32, {T, kw}));
  ASSIGN_OR_RETURN(Tensor o, b_->Allocate(DType::kF32, {T, qw}));
  b_->MatMul(x, w.wq, nullptr, &q);
  b_->MatMul(x, w.wk, nullptr, &k);
  b_->MatMul(x, w.wv, nullptr, &v);
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto [r0, r1] = RowsOf(seqs.size(), T, i);
    const int64_t past = seqs[i]->length, n = r1 - r0;
    Tensor kd = seqs[i]->k[ai].Slice(past, past + n), vd = seqs[i]->v[ai].Slice(past, past + n);
    b_->Convert(k.Slice(r0, r1).Reshape(kd.shape()), &kd);
    b_->Convert(v.Slice(r0, r1).Reshape(vd.shape()), &vd);
    kernels::AttentionParams p;
    p.q = q.Slice(r0, r1);
    p.k_cache = seqs[i]->k[ai].Slice(0, past + n);
    p.v_cache = seqs[i]->v[ai].Slice(0, past + n);
    p.past = past;
    p.n_heads = s.n_heads;
    p.n_kv_heads = s.n_kv_heads;
    p.head_dim = s.head_dim;
    p.out = o.Slice(r0, r1);
    b_->Attention(p);
    *bytes += 2.0 * (past + n) * kw * DTypeSize(s.kv_dtype);  // K and V read
  }
  b_->MatMul(o, w.wo, nullptr, out);
  for (const Tensor* t : {&w.wq, &w.wk, &w.wv, &w.wo}) *bytes += t->nbytes();
  return absl::OkStatus();
}

absl::Status GpuModel::MlpForward(const Mlp& m, const Tensor& x, Tensor* out) {
  const int64_t n = x.dim(0), I = shape_.intermediate;
  ASSIGN_OR_RETURN(Tensor g, b_->Allocate(DType::kF32, {n, I}));
  ASSIGN_OR_RETURN(Tensor u, b_->Allocate(DType::kF32, {n, I}));
  b_->MatMul(x, m.gate, nullptr, &g);
  b_->MatMul(x, m.up, nullptr, &u);
  b_->SiluMul(g, u, &g);
  b_->MatMul(g, m.down, nullptr, out);
  return absl::OkStatus();
}

// Routing stays on the device: MoeGate, then every (token, slot) route
// through its expert in one GroupedExpertMlp, then the weighted sum.
absl::Status GpuModel::Moe(const Layer& w, const Tensor& x, Tensor* out, double* bytes) {
  const int64_t T = x.dim(0), H = shape_.hidden, k = shape_.top_k, E = shape_.num_experts;
  ASSIGN_OR_RETURN(Tensor logits, b_->Allocate(DType::kF32, {T, E}));
  ASSIGN_OR_RETURN(Tensor weights, b_->Allocate(DType::kF32, {T, k}));
  ASSIGN_OR_RETURN(Tensor experts, b_->Allocate(DType::kI32, {T, k}));
  b_->MatMul(x, w.router, nullptr, &logits);
  b_->MoeGate(logits, static_cast<int>(k), &weights, &experts);
  auto it = route_rows_.find(T);
  if (it == route_rows_.end()) {
    std::vector<int32_t> rows(T * k);
    for (int64_t r = 0; r < T * k; ++r) rows[r] = static_cast<int32_t>(r / k);
    ASSIGN_OR_RETURN(Tensor d, Upload(b_, DType::kI32, rows.data(), T * k));
    it = route_rows_.emplace(T, std::move(d)).first;
  }
  ASSIGN_OR_RETURN(Tensor y, b_->Allocate(DType::kF32, {T * k, H}));
  kernels::GroupedExpertMlpParams p;
  p.x = x;
  p.rows = it->second;
  p.experts = experts.Reshape({T * k});
  p.weights = &w.experts;
  p.y = y;
  b_->GroupedExpertMlp(p);
  ASSIGN_OR_RETURN(Tensor acc, b_->Allocate(DType::kF32, {T, H}));
  b_->ScatterAddRows(y, it->second, weights.Reshape({T * k}), &acc);
  b_->Copy(acc, out);
  routed_.push_back(experts);
  *bytes += w.router.nbytes();
  return absl::OkStatus();
}

absl::StatusOr<double> GpuModel::RoutedExpertBytes() {
  double total = 0;
  int moe = 0;
  for (int l = 0; l < shape_.layers && moe < static_cast<int>(routed_.size()); ++l) {
    if (!shape_.is_moe(l)) continue;
    const Tensor& d = routed_[moe++];
    Tensor h = Tensor::Zeros(DType::kI32, d.shape());
    b_->Copy(d, &h);
    std::set<int32_t> distinct(h.data<int32_t>(), h.data<int32_t>() + h.numel());
    for (int32_t e : distinct) {
      const kernels::ExpertMlpWeights& w = layers_[l].experts[e];
      total += w.gate.nbytes() + w.up.nbytes() + w.down.nbytes();
      if (w.gate_scale.defined()) {
        total += w.gate_scale.nbytes() + w.up_scale.nbytes() + w.down_scale.nbytes();
      }
    }
  }
  RETURN_IF_ERROR(b_->Synchronize());
  return total;
}

absl::Status GpuModel::Layers(std::vector<GpuSequence*> seqs, Tensor* h, double* bytes) {
  const int64_t T = h->dim(0);
  routed_.clear();
  ASSIGN_OR_RETURN(Tensor normed, b_->Allocate(DType::kF32, h->shape()));
  ASSIGN_OR_RETURN(Tensor delta, b_->Allocate(DType::kF32, h->shape()));
  int mi = 0, ai = 0;
  for (int l = 0; l < shape_.layers; ++l) {
    const Layer& w = layers_[l];
    b_->RmsNorm(*h, w.in_norm, 1e-6f, &normed);
    if (shape_.is_attention(l)) {
      RETURN_IF_ERROR(Attention(w, ai++, seqs, normed, &delta, bytes));
    } else {
      RETURN_IF_ERROR(Mamba(w, mi++, seqs, normed, &delta, bytes));
    }
    b_->Add(*h, delta, h);
    b_->RmsNorm(*h, w.ff_norm, 1e-6f, &normed);
    if (shape_.is_moe(l)) {
      RETURN_IF_ERROR(Moe(w, normed, &delta, bytes));
    } else {
      RETURN_IF_ERROR(MlpForward(w.dense, normed, &delta));
      *bytes += 3.0 * w.dense.gate.nbytes();
    }
    b_->Add(*h, delta, h);
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto [r0, r1] = RowsOf(seqs.size(), T, i);
    seqs[i]->length += r1 - r0;
  }
  return absl::OkStatus();
}

absl::Status GpuModel::Head(const Tensor& ids, Tensor* h, int64_t rows, double* bytes) {
  b_->Embedding(embed_, ids, h);
  const Tensor last = h->Slice(h->dim(0) - rows, h->dim(0));
  ASSIGN_OR_RETURN(Tensor normed, b_->Allocate(DType::kF32, last.shape()));
  ASSIGN_OR_RETURN(Tensor logits, b_->Allocate(DType::kF32, {rows, shape_.vocab}));
  b_->RmsNorm(last, final_norm_, 1e-6f, &normed);
  b_->MatMul(normed, lm_head_, nullptr, &logits);
  *bytes += lm_head_.nbytes() + static_cast<double>(ids.dim(0)) * shape_.hidden * 2;
  return absl::OkStatus();
}

}  // namespace jamba::bench
