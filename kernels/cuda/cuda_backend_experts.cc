// CudaBackend::GroupedExpertMlp: the device path (kernels of
// grouped_expert_mlp.cu, no host round trip) for decode-sized batches, and
// a host-grouped cuBLAS path for prefill-sized ones.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "kernels/cuda/cuda_allocator.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/ops.h"
#include "kernels/expert_mlp_check.h"

namespace jamba::kernels {
namespace {

// One per Mamba layer for a decode batch and one per MoE layer: Jamba-v0.1
// needs 44 for a steady batch, so batches can change many times before a
// flush.
constexpr size_t kMaxCachedTables = 512;

size_t AlignUp(size_t n) { return (n + 255) / 256 * 256; }

}  // namespace

const void* CudaBackend::DeviceTable(const std::vector<char>& host_table) {
  auto it = device_tables_.find(host_table);
  if (it != device_tables_.end()) return it->second->data();
  if (device_tables_.size() >= kMaxCachedTables) {
    CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));  // none in use
    device_tables_.clear();
  }
  absl::StatusOr<std::shared_ptr<Buffer>> buffer = allocator_->Allocate(host_table.size());
  JAMBA_CHECK(buffer.ok()) << "CUDA pointer table: " << buffer.status();
  // Pageable source: staged by the runtime before this returns.
  CUDA_CHECK(cudaMemcpyAsync((*buffer)->data(), host_table.data(), host_table.size(),
                             cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream_)));
  const void* data = (*buffer)->data();
  device_tables_.emplace(host_table, *std::move(buffer));
  return data;
}

void CudaBackend::GroupedExpertMlp(const GroupedExpertMlpParams& p) {
  const char* op = "GroupedExpertMlp";
  for (const Tensor* t : {&p.x, &p.rows, &p.experts, &p.y}) CheckCuda(*t, op, "arg");
  const int64_t H = CheckGroupedExpertMlp(p, op);
  const int64_t n = p.rows.dim(0);
  const int E = static_cast<int>(p.weights->size());
  // Every hosted expert shares one dtype and I; the table holds their pointers.
  std::vector<cuda::ExpertPtrs> table(E);
  DType dtype = DType::kF32;
  int64_t I = -1;
  bool aligned = true;
  for (int e = 0; e < E; ++e) {
    const ExpertMlpWeights& w = (*p.weights)[e];
    if (!w.gate.defined()) continue;
    CheckCuda(w.gate, op, "gate");
    CheckCuda(w.up, op, "up");
    CheckCuda(w.down, op, "down");
    JAMBA_CHECK(I < 0 || (w.gate.dim(0) == I && w.gate.dtype() == dtype))
        << op << ": expert " << e << " is " << w.gate.DebugString()
        << "; every expert of one call must share its shape and dtype";
    I = w.gate.dim(0);
    dtype = w.gate.dtype();
    const int es = static_cast<int>(DTypeSize(dtype));
    aligned = aligned && cuda::CanVectorize(w.gate.raw_data(), es, H) &&
              cuda::CanVectorize(w.up.raw_data(), es, H) &&
              cuda::CanVectorize(w.down.raw_data(), es, I);
    const bool int8 = IsInt8Expert(w);
    table[e] = {w.gate.raw_data(),
                w.up.raw_data(),
                w.down.raw_data(),
                int8 ? w.gate_scale.data<float>() : nullptr,
                int8 ? w.up_scale.data<float>() : nullptr,
                int8 ? w.down_scale.data<float>() : nullptr};
  }
  if (n == 0) return;
  SetDevice();
  if (I < 0) I = 0;  // no expert has weights: the sort kernel flags every route
  if (I > 0 && n > (dtype == DType::kI8 ? kGroupedMaxRoutesInt8 : kGroupedMaxRoutes)) {
    return GroupedExpertMlpOnHost(p, H);
  }
  std::vector<char> bytes(sizeof(cuda::ExpertPtrs) * std::max(E, 1));  // never empty
  std::memcpy(bytes.data(), table.data(), table.size() * sizeof(cuda::ExpertPtrs));
  cuda::GroupedMlpParams g;
  g.x = p.x.data<float>();
  g.rows = p.rows.data<int32_t>();
  g.experts = p.experts.data<int32_t>();
  g.table = static_cast<const cuda::ExpertPtrs*>(DeviceTable(bytes));
  g.w_type = ToWeightType(dtype);
  const size_t act_bytes = AlignUp(n * I * sizeof(float));
  const size_t order_bytes = AlignUp(n * sizeof(int32_t));
  char* ws = static_cast<char*>(
      ScratchSpace(kScratchExperts, act_bytes + order_bytes + (E + 1) * sizeof(int32_t)));
  g.act = reinterpret_cast<float*>(ws);
  g.order = reinterpret_cast<int32_t*>(ws + act_bytes);
  g.offsets = reinterpret_cast<int32_t*>(ws + act_bytes + order_bytes);
  g.y = p.y.data<float>();
  g.T = p.x.dim(0);
  g.n = n;
  g.H = H;
  g.I = I;
  g.E = E;
  g.vec_h = aligned && cuda::CanVectorize(g.x, 4, H);
  g.vec_i = aligned && cuda::CanVectorize(g.act, 4, I);
  g.error = static_cast<int*>(error_->data());
  cuda::LaunchGroupedExpertMlp(g, static_cast<cudaStream_t>(stream_));
}

void CudaBackend::GroupedExpertMlpOnHost(const GroupedExpertMlpParams& p, int64_t H) {
  const char* op = "GroupedExpertMlp";
  const int64_t n = p.rows.dim(0), T = p.x.dim(0);
  Tensor rows = Tensor::Zeros(DType::kI32, {n}), experts = Tensor::Zeros(DType::kI32, {n});
  Copy(p.rows, &rows);
  Copy(p.experts, &experts);
  std::map<int32_t, std::vector<int32_t>> groups;  // expert -> routes, ascending
  for (int64_t r = 0; r < n; ++r) {
    const int32_t row = rows.data<int32_t>()[r], e = experts.data<int32_t>()[r];
    const bool ok = row >= 0 && row < T && e >= 0 && e < static_cast<int64_t>(p.weights->size()) &&
                    (*p.weights)[e].gate.defined();
    JAMBA_CHECK(ok) << op << ": route " << r << " (row " << row << ", expert " << e
                    << ") is out of range or has no weights";
    groups[e].push_back(static_cast<int32_t>(r));
  }
  Tensor y = p.y;
  CUDA_CHECK(cudaMemsetAsync(y.raw_data(), 0, y.nbytes(), static_cast<cudaStream_t>(stream_)));
  auto alloc = [this, op](DType d, Shape s) {
    absl::StatusOr<Tensor> t = Allocate(d, std::move(s));
    JAMBA_CHECK(t.ok()) << op << ": " << t.status();
    return *std::move(t);
  };
  for (const auto& [e, routes] : groups) {
    const ExpertMlpWeights& w = (*p.weights)[e];
    const int64_t m = static_cast<int64_t>(routes.size()), I = w.gate.dim(0);
    std::vector<int32_t> src(m);
    for (int64_t j = 0; j < m; ++j) src[j] = rows.data<int32_t>()[routes[j]];
    Tensor src_d = alloc(DType::kI32, {m}), dst_d = alloc(DType::kI32, {m});
    Tensor ones = alloc(DType::kF32, {m});
    CUDA_CHECK(cudaMemcpyAsync(src_d.raw_data(), src.data(), m * 4, cudaMemcpyHostToDevice,
                               static_cast<cudaStream_t>(stream_)));
    CUDA_CHECK(cudaMemcpyAsync(dst_d.raw_data(), routes.data(), m * 4, cudaMemcpyHostToDevice,
                               static_cast<cudaStream_t>(stream_)));
    const std::vector<float> one(m, 1.0f);
    CUDA_CHECK(cudaMemcpyAsync(ones.raw_data(), one.data(), m * 4, cudaMemcpyHostToDevice,
                               static_cast<cudaStream_t>(stream_)));
    Tensor xe = alloc(DType::kF32, {m, H}), g = alloc(DType::kF32, {m, I});
    Tensor u = alloc(DType::kF32, {m, I}), ye = alloc(DType::kF32, {m, H});
    GatherRows(p.x, src_d, &xe);
    const Tensor* mats[3] = {&w.gate, &w.up, &w.down};
    const Tensor* scales[3] = {&w.gate_scale, &w.up_scale, &w.down_scale};
    Tensor widened[3];
    for (int k = 0; k < 3; ++k) {
      if (!IsInt8Expert(w)) {
        widened[k] = *mats[k];
        continue;
      }
      widened[k] = alloc(DType::kBF16, mats[k]->shape());
      cuda::LaunchDequantI8({mats[k]->data<int8_t>(), scales[k]->data<float>(),
                             widened[k].raw_data(), mats[k]->dim(0), mats[k]->dim(1)},
                            static_cast<cudaStream_t>(stream_));
    }
    MatMul(xe, widened[0], nullptr, &g);
    MatMul(xe, widened[1], nullptr, &u);
    SiluMul(g, u, &g);
    MatMul(g, widened[2], nullptr, &ye);
    ScatterAddRows(ye, dst_d, ones, &y);  // distinct routes onto zeros: a copy
  }
}

}  // namespace jamba::kernels
