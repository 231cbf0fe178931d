// The CUDA kernels' launch API: one params struct of raw device pointers and
// sizes plus one Launch function per op, each implemented in its own .cu
// file. No absl or Tensor here, so nvcc compiles the .cu files quickly; the
// CudaBackend (cuda_backend.cc) checks shapes and fills these structs. All
// activations are f32; `error` points at the backend's device error word,
// where a kernel that meets an out-of-range index ORs its ErrorBit.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace jamba::kernels::cuda {

enum ErrorBit : int {
  kEmbeddingIdOutOfRange = 1,
  kGatherRowOutOfRange = 2,
  kScatterRowOutOfRange = 4,
  kExpertRouteOutOfRange = 8
};

// Element types the kernels read weights in (mirrors jamba::DType).
enum class WeightType : int { kF32, kBF16, kF16, kI8 };

// matmul_util.cu -------------------------------------------------------------
// dst[i] = round(src[i]) to bf16 or f16 (dst_type), n elements.
struct ConvertParams {
  const float* src = nullptr;
  void* dst = nullptr;
  WeightType dst_type = WeightType::kBF16;
  int64_t n = 0;
};
void LaunchConvertFromF32(const ConvertParams& p, cudaStream_t stream);
// dst[i] = f32(src[i]) from bf16 or f16 (src_type), n elements.
struct DequantParams {
  const void* src = nullptr;
  WeightType src_type = WeightType::kBF16;
  float* dst = nullptr;
  int64_t n = 0;
};
void LaunchDequantToF32(const DequantParams& p, cudaStream_t stream);
// y[m, n] += bias[n] for y [rows, cols].
struct BiasAddParams {
  float* y = nullptr;
  const float* bias = nullptr;
  int64_t rows = 0, cols = 0;
};
void LaunchBiasAdd(const BiasAddParams& p, cudaStream_t stream);

// True when a warp may use 16-byte loads on rows of K elements of
// `elem_size` bytes starting at w (see warp_dot.cuh).
inline bool CanVectorize(const void* w, int elem_size, int64_t K) {
  const int64_t V = 16 / elem_size;
  return K % V == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
}

// gemv.cu: y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]) for M <= kGemvMaxRows, f32
// arithmetic on widened weights (any WeightType; I8 without a scale).
constexpr int kGemvMaxRows = 8;
struct GemvParams {
  const float* x = nullptr;  // [M, K]
  const void* w = nullptr;   // [N, K]
  WeightType w_type = WeightType::kBF16;
  const float* bias = nullptr;  // [N] or null
  float* y = nullptr;           // [M, N]
  int64_t M = 0, N = 0, K = 0;
  // Below this many columns, a block per column (spreads a short N over
  // the multiprocessors); 0: never.
  int64_t column_blocks_below = 0;
};
void LaunchGemv(const GemvParams& p, cudaStream_t stream);

// grouped_expert_mlp.cu: see GroupedExpertMlpParams in kernels/params.h.
// Device pointers of one expert; gate == null marks an expert with no
// weights here. Scales only for I8 weights.
struct ExpertPtrs {
  const void* gate = nullptr;  // [I, H]
  const void* up = nullptr;    // [I, H]
  const void* down = nullptr;  // [H, I]
  const float* gate_scale = nullptr;
  const float* up_scale = nullptr;
  const float* down_scale = nullptr;
};
struct GroupedMlpParams {
  const float* x = nullptr;               // [T, H]
  const int32_t* rows = nullptr;          // [n]
  const int32_t* experts = nullptr;       // [n]
  const ExpertPtrs* table = nullptr;      // [E], device memory
  WeightType w_type = WeightType::kBF16;  // every expert's
  float* act = nullptr;                   // [n, I] workspace
  int32_t* order = nullptr;               // [n] workspace
  int32_t* offsets = nullptr;             // [E + 1] workspace
  float* y = nullptr;                     // [n, H]
  int64_t T = 0, n = 0, H = 0, I = 0;
  int E = 0;
  bool vec_h = false, vec_i = false;  // 16-byte loads along H (gate, up) / I (down)
  int* error = nullptr;
};
void LaunchGroupedExpertMlp(const GroupedMlpParams& p, cudaStream_t stream);
// dst[r, c] = bf16(q[r, c] * scale[r]): an I8 expert matrix widened for cuBLAS.
struct DequantI8Params {
  const int8_t* q = nullptr;
  const float* scale = nullptr;
  void* dst = nullptr;  // bf16
  int64_t rows = 0, cols = 0;
};
void LaunchDequantI8(const DequantI8Params& p, cudaStream_t stream);

// rms_norm.cu: y[m,:] = gain * x[m,:] / sqrt(mean(x[m,:]^2) + eps).
struct RmsNormParams {
  const float* x = nullptr;
  const float* gain = nullptr;
  float* y = nullptr;
  int64_t rows = 0, cols = 0;
  float eps = 0;
};
void LaunchRmsNorm(const RmsNormParams& p, cudaStream_t stream);

// embedding.cu: y[l,:] = f32(table[ids[l],:]).
struct EmbeddingParams {
  const void* table = nullptr;
  WeightType table_type = WeightType::kF32;
  const int32_t* ids = nullptr;
  float* y = nullptr;
  int64_t vocab = 0, hidden = 0, tokens = 0;
  int* error = nullptr;
};
void LaunchEmbedding(const EmbeddingParams& p, cudaStream_t stream);

// elementwise.cu: y = a + b, or y = silu(a) * b; n elements.
struct ElementwiseParams {
  const float* a = nullptr;
  const float* b = nullptr;
  float* y = nullptr;
  int64_t n = 0;
};
void LaunchAdd(const ElementwiseParams& p, cudaStream_t stream);
void LaunchSiluMul(const ElementwiseParams& p, cudaStream_t stream);

// causal_conv1d.cu: see CausalConv1dParams in kernels/params.h. x must not
// alias y (the backend copies x to scratch first when it does).
struct Conv1dParams {
  const float* x = nullptr;       // [L, Di]
  const float* weight = nullptr;  // [Di, K]
  const float* bias = nullptr;    // [Di] or null
  float* conv_state = nullptr;    // [K-1, Di]
  float* y = nullptr;             // [L, Di]
  int64_t L = 0, Di = 0;
  int K = 0;
};
void LaunchCausalConv1d(const Conv1dParams& p, cudaStream_t stream);

// selective_scan.cu: see SelectiveScanParams in kernels/params.h. N <= 32.
// Long calls are scanned in chunks; `workspace` then holds
// SelectiveScanWorkspaceFloats() floats.
struct ScanParams {
  const float* u = nullptr;      // [L, Di]
  const float* delta = nullptr;  // [L, Di]
  const float* A = nullptr;      // [Di, N]
  const float* B = nullptr;      // [L, N]
  const float* C = nullptr;      // [L, N]
  const float* D = nullptr;      // [Di]
  const float* z = nullptr;      // [L, Di]
  float* state = nullptr;        // [Di, N]
  float* y = nullptr;            // [L, Di]
  float* workspace = nullptr;    // [2, chunks, Di, N] when chunked
  int64_t L = 0, Di = 0;
  int N = 0;
};
int64_t SelectiveScanWorkspaceFloats(int64_t L, int64_t Di, int N);
void LaunchSelectiveScan(const ScanParams& p, cudaStream_t stream);

// attention.cu: see AttentionParams in kernels/params.h; head_dim <= 256,
// n_heads / n_kv_heads <= 8. `workspace` holds AttentionWorkspaceFloats()
// floats for the split-sequence partial results.
struct AttnParams {
  const float* q = nullptr;       // [L, n_heads * hd]
  const void* k_cache = nullptr;  // [T, n_kv, hd] f32, or bf16 when kv_bf16
  const void* v_cache = nullptr;  // [T, n_kv, hd]
  bool kv_bf16 = false;
  float* out = nullptr;  // [L, n_heads * hd]; may alias q
  float* workspace = nullptr;
  int64_t L = 0, past = 0;
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int num_splits = 1;  // key ranges per query (flash-decoding); 1 = no split
};
// A split count that fills `num_sms` multiprocessors for this shape.
int AttentionNumSplits(int64_t L, int64_t past, int n_kv_heads, int num_sms);
int64_t AttentionWorkspaceFloats(const AttnParams& p);
void LaunchAttention(const AttnParams& p, cudaStream_t stream);

// moe_gate.cu: softmax over logits [L, E], top k descending, ties to the
// lower id, not renormalised.
struct MoeGateParams {
  const float* logits = nullptr;  // [L, E]
  float* weights = nullptr;       // [L, k]
  int32_t* experts = nullptr;     // [L, k]
  int64_t L = 0;
  int E = 0, k = 0;
};
void LaunchMoeGate(const MoeGateParams& p, cudaStream_t stream);

// rows.cu: y[i,:] = x[rows[i],:] (element_size 2 or 4 bytes), and the
// deterministic y[rows[i],:] += scale[i] * x[i,:] in index order.
struct GatherRowsParams {
  const void* x = nullptr;  // [R, D]
  const int32_t* rows = nullptr;
  void* y = nullptr;  // [n, D]
  int64_t R = 0, D = 0, n = 0;
  int element_size = 4;
  int* error = nullptr;
};
void LaunchGatherRows(const GatherRowsParams& p, cudaStream_t stream);
struct ScatterAddRowsParams {
  const float* x = nullptr;  // [n, D]
  const int32_t* rows = nullptr;
  const float* scale = nullptr;  // [n]
  float* y = nullptr;            // [R, D]
  int32_t* link = nullptr;       // [2n] workspace: segment links, head flags
  int64_t R = 0, D = 0, n = 0;
  int* error = nullptr;
};
void LaunchScatterAddRows(const ScatterAddRowsParams& p, cudaStream_t stream);

// fill_random.cu: deterministic pseudo-random fill, uniform in [lo, hi), for
// benchmarks that need weights without a checkpoint.
struct FillRandomParams {
  void* dst = nullptr;
  WeightType type = WeightType::kBF16;
  int64_t n = 0;
  uint64_t seed = 0;
  float lo = -1.0f, hi = 1.0f;
};
void LaunchFillRandom(const FillRandomParams& p, cudaStream_t stream);

}  // namespace jamba::kernels::cuda
