// jamba-gpu-bench --profile: where a decode step's time goes. Times single
// ops at decode shapes against the copy bandwidth (GEMV with one and with
// 8 rows, cuBLAS at 16 rows, the grouped expert MLP with 2 routes in bf16
// and int8) and compares the host's time to enqueue a batch-1 step with
// the device's time to run it (a host-bound step enqueues as slowly as it
// runs).
#include "bench/gpu_profile.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace jamba::bench {
namespace {

// Median seconds of `reps` runs of fn, each timed with CUDA events.
template <typename Fn>
double MedianSeconds(kernels::CudaBackend* b, int reps, Fn fn) {
  cudaStream_t s = static_cast<cudaStream_t>(b->stream());
  std::vector<double> t;
  for (int i = 0; i < reps + 2; ++i) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudaEventRecord(start, s);
    fn(i);
    cudaEventRecord(stop, s);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    if (i >= 2) t.push_back(ms * 1e-3);  // two warm-ups
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

absl::Status RunProfile(kernels::CudaBackend* b, double copy_bw) {
  constexpr int kCopies = 4;  // weights rotated so no run reads from L2
  const int64_t N = 16384, K = 4096, I = 14336, H = 4096;
  std::printf("\n## Op profile (decode shapes; GB/s of the bytes each op must read)\n\n");
  std::printf("| op | time us | GB/s | %% of copy bandwidth |\n|---|---|---|---|\n");
  auto row = [&](const char* name, double seconds, double bytes) {
    std::printf("| %s | %.1f | %.0f | %.0f%% |\n", name, seconds * 1e6, bytes / seconds * 1e-9,
                100 * bytes / seconds / copy_bw);
  };
  std::vector<Tensor> w;
  for (int c = 0; c < kCopies; ++c) {
    ASSIGN_OR_RETURN(Tensor t, b->Allocate(DType::kBF16, {N, K}));
    b->FillRandom(&t, 100 + c, -0.01f, 0.01f);
    w.push_back(t);
  }
  for (const int64_t M : {1, 8, 16}) {
    ASSIGN_OR_RETURN(Tensor x, b->Allocate(DType::kF32, {M, K}));
    ASSIGN_OR_RETURN(Tensor y, b->Allocate(DType::kF32, {M, N}));
    b->FillRandom(&x, 7, -1, 1);
    const double t =
        MedianSeconds(b, 20, [&](int i) { b->MatMul(x, w[i % kCopies], nullptr, &y); });
    const std::string name =
        absl::StrCat("MatMul ", M, "x4096 . 16384x4096 bf16 (",
                     M <= kernels::CudaBackend::kGemvMaxRows ? "GEMV" : "cuBLAS", ")");
    row(name.c_str(), t, static_cast<double>(N) * K * 2);
  }
  for (const DType dtype : {DType::kBF16, DType::kI8}) {
    std::vector<std::vector<kernels::ExpertMlpWeights>> sets(kCopies);
    for (auto& set : sets) {
      for (int e = 0; e < 2; ++e) {
        kernels::ExpertMlpWeights x;
        ASSIGN_OR_RETURN(x.gate, b->Allocate(dtype, {I, H}));
        ASSIGN_OR_RETURN(x.up, b->Allocate(dtype, {I, H}));
        ASSIGN_OR_RETURN(x.down, b->Allocate(dtype, {H, I}));
        if (dtype == DType::kI8) {
          ASSIGN_OR_RETURN(x.gate_scale, b->Allocate(DType::kF32, {I}));
          ASSIGN_OR_RETURN(x.up_scale, b->Allocate(DType::kF32, {I}));
          ASSIGN_OR_RETURN(x.down_scale, b->Allocate(DType::kF32, {H}));
        }
        set.push_back(std::move(x));
      }
    }
    ASSIGN_OR_RETURN(Tensor x, b->Allocate(DType::kF32, {1, H}));
    ASSIGN_OR_RETURN(Tensor rows, b->Allocate(DType::kI32, {2}));
    ASSIGN_OR_RETURN(Tensor experts, b->Allocate(DType::kI32, {2}));
    ASSIGN_OR_RETURN(Tensor y, b->Allocate(DType::kF32, {2, H}));
    const int32_t host_experts[2] = {0, 1};
    cudaMemcpy(experts.raw_data(), host_experts, sizeof(host_experts), cudaMemcpyHostToDevice);
    const double t = MedianSeconds(b, 20, [&](int i) {
      kernels::GroupedExpertMlpParams p{x, rows, experts, &sets[i % kCopies], y};
      b->GroupedExpertMlp(p);
    });
    row(dtype == DType::kI8 ? "GroupedExpertMlp 2 routes, int8 experts"
                            : "GroupedExpertMlp 2 routes, bf16 experts",
        t, 2.0 * 3 * I * H * DTypeSize(dtype));
  }
  return b->Synchronize();
}

}  // namespace jamba::bench
