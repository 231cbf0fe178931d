#include "model/mamba_mixer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace jamba::model {

absl::StatusOr<std::unique_ptr<MambaMixer>> MambaMixer::Load(const WeightLoader& loader,
                                                             int layer) {
  const JambaConfig& c = loader.config();
  const int64_t H = c.hidden_size, Di = c.d_inner(), R = c.mamba_dt_rank, N = c.mamba_d_state,
                K = c.mamba_d_conv;
  const std::string p = absl::StrCat("model.layers.", layer, ".mamba.");
  std::unique_ptr<MambaMixer> m(new MambaMixer());
  m->layer_ = layer;
  m->d_inner_ = Di;
  m->dt_rank_ = R;
  m->d_state_ = N;
  m->eps_ = static_cast<float>(c.rms_norm_eps);

  ASSIGN_OR_RETURN(Tensor in_proj, loader.Matrix(p + "in_proj.weight", {2 * Di, H}));
  ASSIGN_OR_RETURN(m->in_proj_x_, loader.ForMatMul(in_proj.Slice(0, Di)));
  ASSIGN_OR_RETURN(m->in_proj_z_, loader.ForMatMul(in_proj.Slice(Di, 2 * Di)));
  if (c.mamba_proj_bias) {
    ASSIGN_OR_RETURN(Tensor in_bias, loader.F32(p + "in_proj.bias", {2 * Di}));
    m->in_bias_x_ = in_bias.Slice(0, Di);
    m->in_bias_z_ = in_bias.Slice(Di, 2 * Di);
    ASSIGN_OR_RETURN(m->out_bias_, loader.F32(p + "out_proj.bias", {H}));
  }
  ASSIGN_OR_RETURN(Tensor conv_w, loader.F32(p + "conv1d.weight", {Di, 1, K}));
  m->conv_w_ = conv_w.Reshape({Di, K});
  if (c.mamba_conv_bias) {
    ASSIGN_OR_RETURN(m->conv_b_, loader.F32(p + "conv1d.bias", {Di}));
  }
  ASSIGN_OR_RETURN(Tensor x_proj, loader.Matrix(p + "x_proj.weight", {R + 2 * N, Di}));
  m->x_proj_ = x_proj;
  m->x_proj_dt_ = x_proj.Slice(0, R);
  m->x_proj_B_ = x_proj.Slice(R, R + N);
  m->x_proj_C_ = x_proj.Slice(R + N, R + 2 * N);
  if (c.mamba_inner_layernorms) {
    ASSIGN_OR_RETURN(m->dt_norm_, loader.F32(p + "dt_layernorm.weight", {R}));
    ASSIGN_OR_RETURN(m->B_norm_, loader.F32(p + "b_layernorm.weight", {N}));
    ASSIGN_OR_RETURN(m->C_norm_, loader.F32(p + "c_layernorm.weight", {N}));
  }
  ASSIGN_OR_RETURN(m->dt_proj_, loader.Matrix(p + "dt_proj.weight", {Di, R}));
  ASSIGN_OR_RETURN(m->dt_bias_, loader.F32(p + "dt_proj.bias", {Di}));
  // A = -torch.exp(self.A_log.float()): [Di, N]
  ASSIGN_OR_RETURN(Tensor A_log, loader.HostF32(p + "A_log", {Di, N}));
  Tensor A = Tensor::Zeros(DType::kF32, {Di, N});
  for (int64_t i = 0; i < Di * N; ++i) A.data<float>()[i] = -std::exp(A_log.data<float>()[i]);
  ASSIGN_OR_RETURN(m->A_, loader.ToDevice(std::move(A)));
  ASSIGN_OR_RETURN(m->D_, loader.F32(p + "D", {Di}));
  ASSIGN_OR_RETURN(m->out_proj_, loader.MatMulWeight(p + "out_proj.weight", {H, Di}));
  return m;
}

absl::Status MambaMixer::Forward(kernels::Backend* b, const Tensor& x,
                                 absl::Span<const SequenceRows> sequences, Tensor* out) const {
  const int64_t T = x.dim(0), Di = d_inner_, R = dt_rank_, N = d_state_;
  // Every intermediate is an op's whole output.
  auto alloc = [b](Shape shape) { return b->AllocateUninitialized(DType::kF32, std::move(shape)); };
  const Tensor* no_bias = nullptr;

  // 1. [u_raw | z] = in_proj(x): [T, Di] each
  ASSIGN_OR_RETURN(Tensor u_raw, alloc({T, Di}));
  ASSIGN_OR_RETURN(Tensor z, alloc({T, Di}));
  b->MultiMatMul(x, {{&in_proj_x_, in_bias_x_.defined() ? &in_bias_x_ : no_bias, &u_raw},
                     {&in_proj_z_, in_bias_z_.defined() ? &in_bias_z_ : no_bias, &z}});

  // 2-6 as one op when every sequence has one token (decode): [T, Di]
  const bool decode = static_cast<int64_t>(sequences.size()) == T &&
                      std::all_of(sequences.begin(), sequences.end(),
                                  [](const SequenceRows& s) { return s.end - s.begin == 1; });
  if (decode) {
    ASSIGN_OR_RETURN(Tensor y, alloc({T, Di}));
    RETURN_IF_ERROR(DecodeStep(b, u_raw, z, sequences, &y));
    b->MatMul(y, out_proj_, out_bias_.defined() ? &out_bias_ : no_bias, out);
    return absl::OkStatus();
  }

  // 2. u = act(conv1d(u_raw)[..., :L]), continuing conv_state: [T, Di]
  ASSIGN_OR_RETURN(Tensor u, alloc({T, Di}));
  for (const SequenceRows& s : sequences) {
    kernels::CausalConv1dParams conv;
    conv.x = u_raw.Slice(s.begin, s.end);
    conv.weight = conv_w_;
    conv.bias = conv_b_;
    conv.conv_state = s.state->layer(layer_).mamba.conv;
    conv.y = u.Slice(s.begin, s.end);
    b->CausalConv1d(conv);
  }

  // 3. time_step, B, C = split(x_proj(u), [R, N, N]): [T, R], [T, N], [T, N]
  ASSIGN_OR_RETURN(Tensor dt_low, alloc({T, R}));
  ASSIGN_OR_RETURN(Tensor B, alloc({T, N}));
  ASSIGN_OR_RETURN(Tensor C, alloc({T, N}));
  b->MultiMatMul(
      u, {{&x_proj_dt_, no_bias, &dt_low}, {&x_proj_B_, no_bias, &B}, {&x_proj_C_, no_bias, &C}});

  // 4. time_step = dt_layernorm(time_step); B = b_layernorm(B); C = c_layernorm(C)
  if (dt_norm_.defined()) {
    ASSIGN_OR_RETURN(Tensor dt_n, alloc({T, R}));
    ASSIGN_OR_RETURN(Tensor B_n, alloc({T, N}));
    ASSIGN_OR_RETURN(Tensor C_n, alloc({T, N}));
    b->RmsNorm(dt_low, dt_norm_, eps_, &dt_n);
    b->RmsNorm(B, B_norm_, eps_, &B_n);
    b->RmsNorm(C, C_norm_, eps_, &C_n);
    dt_low = std::move(dt_n);
    B = std::move(B_n);
    C = std::move(C_n);
  }

  // 5. discrete_time_step = dt_proj(time_step) (softplus inside the scan): [T, Di]
  ASSIGN_OR_RETURN(Tensor delta, alloc({T, Di}));
  b->MatMul(dt_low, dt_proj_, &dt_bias_, &delta);

  // 6. selective scan from each sequence's ssm_state, with D skip and gate: [T, Di]
  ASSIGN_OR_RETURN(Tensor y, alloc({T, Di}));
  for (const SequenceRows& s : sequences) {
    kernels::SelectiveScanParams scan;
    scan.u = u.Slice(s.begin, s.end);
    scan.delta = delta.Slice(s.begin, s.end);
    scan.A = A_;
    scan.B = B.Slice(s.begin, s.end);
    scan.C = C.Slice(s.begin, s.end);
    scan.D = D_;
    scan.z = z.Slice(s.begin, s.end);
    scan.ssm_state = s.state->layer(layer_).mamba.ssm;
    scan.y = y.Slice(s.begin, s.end);
    b->SelectiveScan(scan);
  }

  // 7. contextualized_states = out_proj(scan_output): [T, H]
  b->MatMul(y, out_proj_, out_bias_.defined() ? &out_bias_ : no_bias, out);
  return absl::OkStatus();
}

absl::Status MambaMixer::DecodeStep(kernels::Backend* b, const Tensor& u_raw, const Tensor& z,
                                    absl::Span<const SequenceRows> sequences, Tensor* y) const {
  kernels::MambaStepParams p;
  p.x = u_raw;
  p.z = z;
  p.conv_weight = conv_w_;
  p.conv_bias = conv_b_;
  p.x_proj = x_proj_;
  p.dt_norm = dt_norm_;
  p.B_norm = B_norm_;
  p.C_norm = C_norm_;
  p.norm_eps = eps_;
  p.dt_proj = dt_proj_;
  p.dt_bias = dt_bias_;
  p.A = A_;
  p.D = D_;
  p.y = *y;
  // Row s.begin is sequence s's token.
  p.conv_states.resize(sequences.size());
  p.ssm_states.resize(sequences.size());
  for (const SequenceRows& s : sequences) {
    p.conv_states[s.begin] = s.state->layer(layer_).mamba.conv;
    p.ssm_states[s.begin] = s.state->layer(layer_).mamba.ssm;
  }
  return b->MambaStep(p);
}

}  // namespace jamba::model
