// CudaBackend ops other than MatMul: shape and dtype CHECKs (the messages
// follow the CPU reference's), then one Launch from kernels/cuda/ops.h.
#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/ops.h"

namespace jamba::kernels {
namespace {

// True when the byte ranges of a and b overlap.
bool Overlaps(const Tensor& a, const Tensor& b) {
  const char* pa = static_cast<const char*>(a.raw_data());
  const char* pb = static_cast<const char*>(b.raw_data());
  return pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

}  // namespace

#define JAMBA_STREAM static_cast<cudaStream_t>(stream_)

void CudaBackend::RmsNorm(const Tensor& x, const Tensor& gain, float eps, Tensor* y) {
  for (const Tensor* t : {&x, &gain, static_cast<const Tensor*>(y)})
    CheckCuda(*t, "RmsNorm", "arg");
  JAMBA_CHECK(x.rank() == 2 && y->shape() == x.shape() && gain.rank() == 1 &&
              gain.dim(0) == x.dim(1))
      << "RmsNorm: x " << x.DebugString() << " gain " << gain.DebugString() << " y "
      << y->DebugString() << " (want x, y [M,D], gain [D])";
  CheckF32("RmsNorm", {&x, &gain, y});
  SetDevice();
  cuda::LaunchRmsNorm(
      {x.data<float>(), gain.data<float>(), y->data<float>(), x.dim(0), x.dim(1), eps},
      JAMBA_STREAM);
}

void CudaBackend::Embedding(const Tensor& table, const Tensor& ids, Tensor* y) {
  for (const Tensor* t : {&table, &ids, static_cast<const Tensor*>(y)})
    CheckCuda(*t, "Embedding", "arg");
  JAMBA_CHECK(table.rank() == 2 && ids.rank() == 1 && y->rank() == 2 && y->dim(0) == ids.dim(0) &&
              y->dim(1) == table.dim(1) && table.dtype() != DType::kI32 &&
              table.dtype() != DType::kI8 && ids.dtype() == DType::kI32 &&
              y->dtype() == DType::kF32)
      << "Embedding: table " << table.DebugString() << " ids " << ids.DebugString() << " y "
      << y->DebugString() << " (want F32/BF16/F16 table [V,H], I32 ids [L], F32 y [L,H])";
  SetDevice();
  cuda::EmbeddingParams p;
  p.table = table.raw_data();
  p.table_type = ToWeightType(table.dtype());
  p.ids = ids.data<int32_t>();
  p.y = y->data<float>();
  p.vocab = table.dim(0);
  p.hidden = table.dim(1);
  p.tokens = ids.dim(0);
  p.error = static_cast<int*>(error_->data());
  cuda::LaunchEmbedding(p, JAMBA_STREAM);
}

void CudaBackend::Add(const Tensor& a, const Tensor& b, Tensor* y) {
  for (const Tensor* t : {&a, &b, static_cast<const Tensor*>(y)}) CheckCuda(*t, "Add", "arg");
  JAMBA_CHECK(a.shape() == b.shape() && y->shape() == a.shape())
      << "Add: a " << a.DebugString() << " b " << b.DebugString() << " y " << y->DebugString();
  CheckF32("Add", {&a, &b, y});
  SetDevice();
  cuda::LaunchAdd({a.data<float>(), b.data<float>(), y->data<float>(), a.numel()}, JAMBA_STREAM);
}

void CudaBackend::SiluMul(const Tensor& gate, const Tensor& up, Tensor* y) {
  for (const Tensor* t : {&gate, &up, static_cast<const Tensor*>(y)})
    CheckCuda(*t, "SiluMul", "arg");
  JAMBA_CHECK(gate.shape() == up.shape() && y->shape() == gate.shape())
      << "SiluMul: gate " << gate.DebugString() << " up " << up.DebugString() << " y "
      << y->DebugString();
  CheckF32("SiluMul", {&gate, &up, y});
  SetDevice();
  cuda::LaunchSiluMul({gate.data<float>(), up.data<float>(), y->data<float>(), gate.numel()},
                      JAMBA_STREAM);
}

void CudaBackend::CausalConv1d(const CausalConv1dParams& p) {
  const char* op = "CausalConv1d";
  for (const Tensor* t : {&p.x, &p.weight, &p.conv_state, &p.y}) CheckCuda(*t, op, "arg");
  if (p.bias.defined()) CheckCuda(p.bias, op, "bias");
  const bool ranks = p.x.rank() == 2 && p.weight.rank() == 2 && p.conv_state.rank() == 2;
  const int64_t Di = ranks ? p.x.dim(1) : -1, K = ranks ? p.weight.dim(1) : -1;
  JAMBA_CHECK(ranks && K >= 1 && p.weight.dim(0) == Di && p.conv_state.dim(0) == K - 1 &&
              p.conv_state.dim(1) == Di && p.y.shape() == p.x.shape() &&
              (!p.bias.defined() || p.bias.shape() == Shape{Di}))
      << op << ": x " << p.x.DebugString() << " weight " << p.weight.DebugString() << " conv_state "
      << p.conv_state.DebugString() << " y " << p.y.DebugString()
      << " (want x, y [L,Di], weight [Di,K], bias [Di], conv_state [K-1,Di])";
  CheckF32(op, {&p.x, &p.weight, &p.bias, &p.conv_state, &p.y});
  SetDevice();
  cuda::Conv1dParams c;
  c.x = p.x.data<float>();
  if (Overlaps(p.x, p.y)) {  // the kernel reads x[t - k] after y[t - k] is written
    float* copy = static_cast<float*>(ScratchSpace(kScratchConv, p.x.nbytes()));
    CUDA_CHECK(cudaMemcpyAsync(copy, c.x, p.x.nbytes(), cudaMemcpyDeviceToDevice, JAMBA_STREAM));
    c.x = copy;
  }
  c.weight = p.weight.data<float>();
  c.bias = p.bias.defined() ? p.bias.data<float>() : nullptr;
  c.conv_state = p.conv_state.data<float>();
  c.y = p.y.data<float>();
  c.L = p.x.dim(0);
  c.Di = Di;
  c.K = static_cast<int>(K);
  cuda::LaunchCausalConv1d(c, JAMBA_STREAM);
}

void CudaBackend::SelectiveScan(const SelectiveScanParams& p) {
  const char* op = "SelectiveScan";
  for (const Tensor* t : {&p.u, &p.delta, &p.A, &p.B, &p.C, &p.D, &p.z, &p.ssm_state, &p.y}) {
    CheckCuda(*t, op, "arg");
  }
  const bool ranks = p.u.rank() == 2 && p.A.rank() == 2;
  const int64_t L = ranks ? p.u.dim(0) : -1, Di = ranks ? p.u.dim(1) : -1;
  const int64_t N = ranks ? p.A.dim(1) : -1;
  JAMBA_CHECK(ranks && p.A.dim(0) == Di && p.delta.shape() == p.u.shape() &&
              p.z.shape() == p.u.shape() && p.y.shape() == p.u.shape() &&
              (p.B.shape() == Shape{L, N}) && (p.C.shape() == Shape{L, N}) &&
              p.D.shape() == Shape{Di} && (p.ssm_state.shape() == Shape{Di, N}))
      << op << ": u " << p.u.DebugString() << " A " << p.A.DebugString() << " B "
      << p.B.DebugString() << " C " << p.C.DebugString() << " ssm_state "
      << p.ssm_state.DebugString() << " (want u, delta, z, y [L,Di], A, ssm_state [Di,N], "
      << "B, C [L,N], D [Di])";
  JAMBA_CHECK(N >= 1 && N <= 32) << op << ": d_state " << N << " (the CUDA scan takes 1..32)";
  CheckF32(op, {&p.u, &p.delta, &p.A, &p.B, &p.C, &p.D, &p.z, &p.ssm_state, &p.y});
  SetDevice();
  cuda::ScanParams s;
  s.u = p.u.data<float>();
  s.delta = p.delta.data<float>();
  s.A = p.A.data<float>();
  s.B = p.B.data<float>();
  s.C = p.C.data<float>();
  s.D = p.D.data<float>();
  s.z = p.z.data<float>();
  s.state = p.ssm_state.data<float>();
  s.y = p.y.data<float>();
  s.L = L;
  s.Di = Di;
  s.N = static_cast<int>(N);
  const int64_t ws = cuda::SelectiveScanWorkspaceFloats(L, Di, s.N);
  if (ws > 0) s.workspace = static_cast<float*>(ScratchSpace(kScratchScan, ws * sizeof(float)));
  cuda::LaunchSelectiveScan(s, JAMBA_STREAM);
}

void CudaBackend::Attention(const AttentionParams& p) {
  const char* op = "Attention";
  for (const Tensor* t : {&p.q, &p.k_cache, &p.v_cache, &p.out}) CheckCuda(*t, op, "arg");
  JAMBA_CHECK(p.n_heads > 0 && p.n_kv_heads > 0 && p.head_dim > 0 &&
              p.n_heads % p.n_kv_heads == 0 && p.past >= 0)
      << op << ": n_heads " << p.n_heads << " n_kv_heads " << p.n_kv_heads << " head_dim "
      << p.head_dim << " past " << p.past << " (want n_heads a multiple of n_kv_heads)";
  const int64_t qd = static_cast<int64_t>(p.n_heads) * p.head_dim;
  JAMBA_CHECK(p.q.rank() == 2 && p.q.dim(1) == qd && p.out.shape() == p.q.shape() &&
              p.k_cache.rank() == 3 && p.k_cache.dim(1) == p.n_kv_heads &&
              p.k_cache.dim(2) == p.head_dim && p.v_cache.shape() == p.k_cache.shape() &&
              p.k_cache.dim(0) >= p.past + p.q.dim(0))
      << op << ": q " << p.q.DebugString() << " k_cache " << p.k_cache.DebugString() << " v_cache "
      << p.v_cache.DebugString() << " out " << p.out.DebugString() << " past " << p.past
      << " (want q, out [L,n_heads*hd]; caches [T,n_kv_heads,hd] with T >= past+L)";
  JAMBA_CHECK(p.head_dim <= 256 && p.n_heads / p.n_kv_heads <= 8)
      << op << ": head_dim " << p.head_dim << ", " << p.n_heads / p.n_kv_heads
      << " query heads per KV head (the CUDA kernel takes <= 256 and <= 8)";
  CheckF32(op, {&p.q, &p.out});
  JAMBA_CHECK((p.k_cache.dtype() == DType::kF32 || p.k_cache.dtype() == DType::kBF16) &&
              p.v_cache.dtype() == p.k_cache.dtype())
      << op << ": k_cache " << p.k_cache.DebugString() << " v_cache " << p.v_cache.DebugString()
      << " (want both f32 or both bf16)";
  SetDevice();
  cuda::AttnParams a;
  a.q = p.q.data<float>();
  a.k_cache = p.k_cache.raw_data();
  a.v_cache = p.v_cache.raw_data();
  a.kv_bf16 = p.k_cache.dtype() == DType::kBF16;
  a.out = p.out.data<float>();
  a.L = p.q.dim(0);
  a.past = p.past;
  a.n_heads = p.n_heads;
  a.n_kv_heads = p.n_kv_heads;
  a.head_dim = p.head_dim;
  a.num_splits = cuda::AttentionNumSplits(a.L, a.past, a.n_kv_heads, num_sms_);
  const int64_t ws = cuda::AttentionWorkspaceFloats(a);
  if (ws > 0) a.workspace = static_cast<float*>(ScratchSpace(kScratchAttn, ws * sizeof(float)));
  cuda::LaunchAttention(a, JAMBA_STREAM);
}

void CudaBackend::MoeGate(const Tensor& logits, int k, Tensor* weights, Tensor* experts) {
  for (const Tensor* t :
       {&logits, static_cast<const Tensor*>(weights), static_cast<const Tensor*>(experts)}) {
    CheckCuda(*t, "MoeGate", "arg");
  }
  JAMBA_CHECK(logits.rank() == 2 && k >= 1 && k <= logits.dim(1) && logits.dim(1) <= 256 &&
              (weights->shape() == Shape{logits.dim(0), k}) &&
              experts->shape() == weights->shape() && logits.dtype() == DType::kF32 &&
              weights->dtype() == DType::kF32 && experts->dtype() == DType::kI32)
      << "MoeGate: logits " << logits.DebugString() << " k " << k << " weights "
      << weights->DebugString() << " experts " << experts->DebugString()
      << " (want f32 logits [L,E], f32 weights, i32 experts [L,k], 1 <= k <= E <= 256)";
  SetDevice();
  cuda::LaunchMoeGate({logits.data<float>(), weights->data<float>(), experts->data<int32_t>(),
                       logits.dim(0), static_cast<int>(logits.dim(1)), k},
                      JAMBA_STREAM);
}

void CudaBackend::GatherRows(const Tensor& x, const Tensor& rows, Tensor* y) {
  for (const Tensor* t : {&x, &rows, static_cast<const Tensor*>(y)})
    CheckCuda(*t, "GatherRows", "arg");
  JAMBA_CHECK(x.rank() == 2 && rows.rank() == 1 && rows.dtype() == DType::kI32 &&
              (y->shape() == Shape{rows.dim(0), x.dim(1)}) && y->dtype() == x.dtype())
      << "GatherRows: x " << x.DebugString() << " rows " << rows.DebugString() << " y "
      << y->DebugString() << " (want x [R,D], i32 rows [n], y [n,D] of x's dtype)";
  SetDevice();
  cuda::GatherRowsParams g;
  g.x = x.raw_data();
  g.rows = rows.data<int32_t>();
  g.y = y->raw_data();
  g.R = x.dim(0);
  g.D = x.dim(1);
  g.n = rows.dim(0);
  g.element_size = static_cast<int>(DTypeSize(x.dtype()));
  g.error = static_cast<int*>(error_->data());
  cuda::LaunchGatherRows(g, JAMBA_STREAM);
}

void CudaBackend::ScatterAddRows(const Tensor& x, const Tensor& rows, const Tensor& scale,
                                 Tensor* y) {
  for (const Tensor* t : {&x, &rows, &scale, static_cast<const Tensor*>(y)}) {
    CheckCuda(*t, "ScatterAddRows", "arg");
  }
  JAMBA_CHECK(x.rank() == 2 && rows.shape() == Shape{x.dim(0)} && scale.shape() == rows.shape() &&
              y->rank() == 2 && y->dim(1) == x.dim(1) && x.dtype() == DType::kF32 &&
              rows.dtype() == DType::kI32 && scale.dtype() == DType::kF32 &&
              y->dtype() == DType::kF32)
      << "ScatterAddRows: x " << x.DebugString() << " rows " << rows.DebugString() << " scale "
      << scale.DebugString() << " y " << y->DebugString()
      << " (want f32 x [n,D], i32 rows [n], f32 scale [n], f32 y [R,D])";
  SetDevice();
  cuda::ScatterAddRowsParams s;
  s.x = x.data<float>();
  s.rows = rows.data<int32_t>();
  s.scale = scale.data<float>();
  s.y = y->data<float>();
  s.R = y->dim(0);
  s.D = x.dim(1);
  s.n = x.dim(0);
  s.link = static_cast<int32_t*>(ScratchSpace(kScratchLink, 2 * s.n * sizeof(int32_t) + 4));
  s.error = static_cast<int*>(error_->data());
  cuda::LaunchScatterAddRows(s, JAMBA_STREAM);
}

#undef JAMBA_STREAM

}  // namespace jamba::kernels
